"""Image references (`host/repo:tag@digest`) with Docker Hub normalisation, and source/target locations
(`oci:PATH[:tag]`, `docker-archive:FILE[:ref]`, `docker://REF` or a bare reference)."""

from __future__ import annotations

import re
from dataclasses import dataclass

from ocipush.digest import is_digest
from ocipush.errors import InvalidReferenceError
from ocipush.lazy import Pattern

TYPE_CHECKING = False  # as typing's, which the short commands do not import (docs/benchmarks.md, S5)
if TYPE_CHECKING:
    from ocipush.locations import Location

DOCKER_HUB = "docker.io"
DOCKER_HUB_API = "registry-1.docker.io"
_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_REPO_RE = Pattern(rf"^{_COMPONENT}(?:/{_COMPONENT})*$")
_TAG_RE = Pattern(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")
_HOST_RE = Pattern(
    r"^(?:[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)*"
    r"|\[[0-9A-Fa-f:.]+\])(?::[0-9]+)?$"
)


@dataclass(frozen=True)
class Reference:
    """A normalised registry reference. `tag` and `digest` may both be set; the digest wins when pulling."""

    registry: str
    repository: str
    tag: str | None = None
    digest: str | None = None

    @property
    def identifier(self) -> str:
        """What to put after `/manifests/`: the digest if known, else the tag (default `latest`)."""
        return self.digest or self.tag or "latest"

    @property
    def api_host(self) -> str:
        return DOCKER_HUB_API if self.registry == DOCKER_HUB else self.registry

    def with_tag(self, tag: str) -> Reference:
        return Reference(self.registry, self.repository, tag, None)

    def with_digest(self, digest: str) -> Reference:
        return Reference(self.registry, self.repository, None, digest)

    def __str__(self) -> str:
        text = f"{self.registry}/{self.repository}"
        if self.tag:
            text += f":{self.tag}"
        if self.digest:
            text += f"@{self.digest}"
        return text


def parse_reference(text: str, default_tag: str | None = "latest") -> Reference:
    """Parse `[host[:port]/]repo[:tag][@digest]` the way docker does (docker.io, `library/` for one component)."""
    original = text
    if not text or text != text.strip():
        raise InvalidReferenceError(f"invalid reference {original!r}: empty or surrounded by spaces")
    digest = None
    if "@" in text:
        text, digest = text.rsplit("@", 1)
        if not is_digest(digest):
            raise InvalidReferenceError(f"invalid reference {original!r}: bad digest {digest!r}")
    first, _, rest = text.partition("/")
    if rest and ("." in first or ":" in first or first == "localhost" or first.startswith("[")):
        registry, remainder = first, rest
        if not _HOST_RE.match(registry):
            raise InvalidReferenceError(f"invalid reference {original!r}: bad registry host {registry!r}")
        port = registry.rsplit(":", 1)[1] if registry.rfind(":") > registry.rfind("]") else None
        if port is not None and not 0 < int(port) < 65536:
            raise InvalidReferenceError(f"invalid reference {original!r}: port {port} is not in 1-65535")
    else:
        registry, remainder = DOCKER_HUB, text
    tag = None
    last = remainder.rsplit("/", 1)[-1]
    if ":" in last:
        remainder, tag = remainder.rsplit(":", 1)
        if not _TAG_RE.match(tag):
            raise InvalidReferenceError(f"invalid reference {original!r}: bad tag {tag!r}")
    if registry in (DOCKER_HUB, "index.docker.io"):
        registry = DOCKER_HUB
        if "/" not in remainder:
            remainder = f"library/{remainder}"
    if not _REPO_RE.match(remainder):
        raise InvalidReferenceError(
            f"invalid reference {original!r}: repository {remainder!r} must be lowercase letters, digits "
            "and separators (. _ __ -), components joined by /"
        )
    if len(registry) + 1 + len(remainder) > 255:
        raise InvalidReferenceError(f"invalid reference {original!r}: name longer than 255 characters")
    if tag is None and digest is None:
        tag = default_tag
    return Reference(registry, remainder, tag, digest)


def is_valid_tag(tag: str) -> bool:
    return bool(_TAG_RE.match(tag))


# The location prefixes ocipush reads and writes, and those of other tools (skopeo, podman) it does not, so that
# `dir:x` is refused instead of being read as a Docker Hub name or a path.
_LOCAL_PREFIXES = ("oci:", "oci-archive:", "docker-archive:")  # what ocipush.locations' classes stand for
PREFIXES = (*_LOCAL_PREFIXES, "docker://")
_FOREIGN_TRANSPORTS = frozenset(
    {"dir", "docker-daemon", "containers-storage", "ostree", "sif", "tarball"}  # not `docker:` (an image name)
)
_PREFIX_RE = Pattern(r"^([a-z][a-z0-9+-]*):(.*)$", re.DOTALL)
_PORT_PATH_RE = Pattern(r"^[0-9]+(?:/|$)")


def has_prefix(text: str) -> bool:
    """Whether `text` starts with a `word:` location prefix, supported or not (`host:5000/repo` and
    `name:tag` are references, not prefixes)."""
    match = _PREFIX_RE.match(text)
    if not match:
        return False
    word, rest = match.groups()
    if text.startswith(PREFIXES) or word in _FOREIGN_TRANSPORTS:
        return True
    return not _PORT_PATH_RE.match(rest) and not _TAG_RE.match(rest)


def _refuse_unknown_prefix(text: str) -> None:
    if has_prefix(text) and not text.startswith(PREFIXES):
        word = text.split(":", 1)[0]
        supported = ", ".join(p + ("REF" if p.endswith("//") else "PATH") for p in PREFIXES)
        raise InvalidReferenceError(f"unsupported location prefix {word + ':'!r} in {text!r} (supported: {supported})")


def _split_path_suffix(body: str, prefix: str) -> tuple[str, str | None, str | None]:
    if not body:
        raise InvalidReferenceError(f"invalid location {prefix}{body!r}: a path is required")
    if "@" in body:
        path, digest = body.rsplit("@", 1)
        if is_digest(digest):
            return path, None, digest
    if ":" in body:
        path, suffix = body.rsplit(":", 1)
        if path and "/" not in suffix and suffix:
            return path, suffix, None
    return body, None, None


def parse_location(text: str, default_tag: str | None = "latest") -> Location:
    """Parse a source or target: `oci:PATH[:tag]`, `oci-archive:FILE[:tag]`, `docker-archive:FILE[:ref]`,
    `docker://REF` or `REF`. Another `word:` prefix is refused with the list of supported ones."""
    _refuse_unknown_prefix(text)
    if text.startswith(_LOCAL_PREFIXES):
        return _parse_local(text)
    if text.startswith("docker://"):
        text = text[len("docker://") :]
    return parse_reference(text, default_tag)


def _parse_local(text: str) -> Location:
    """An `oci:`, `oci-archive:` or `docker-archive:` location."""
    from ocipush.locations import ArchiveLocation, LayoutLocation, OciArchiveLocation  # here: references need none

    if text.startswith("oci-archive:"):
        path, tag, digest = _split_path_suffix(text[len("oci-archive:") :], "oci-archive:")
        if digest is not None or (tag is not None and not _TAG_RE.match(tag)):
            raise InvalidReferenceError(f"invalid location {text!r}: an oci-archive image is named by a tag")
        return OciArchiveLocation(path, tag)
    if text.startswith("oci:"):
        path, tag, digest = _split_path_suffix(text[4:], "oci:")
        if tag is not None and not _TAG_RE.match(tag):
            raise InvalidReferenceError(f"invalid location {text!r}: bad tag {tag!r}")
        return LayoutLocation(path, tag, digest)
    body = text[len("docker-archive:") :]
    # The reference after the file may itself contain ':' (a tag or a port): split at the first ':'.
    path, sep, ref = body.partition(":")
    if not path:
        raise InvalidReferenceError(f"invalid location {text!r}: a file path is required")
    return ArchiveLocation(path, parse_reference(ref) if sep and ref else None)
