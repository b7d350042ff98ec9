"""The sync file: which repositories and tags to mirror from where, and into which registries under which names.

The YAML shape follows what skopeo-sync and regsync users write: per source registry an `images` map of repository
to tags (an empty list: every tag), or a repository list, or the whole catalog with filters; tag filters; platforms;
and destinations with a repository name template. A skopeo-sync file (registry names as top-level keys) is read
too, with the destinations given separately. PyYAML is imported only when a file is read."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from ocipush.errors import UsageError


def _hyphens(name: str) -> str:
    return name.replace("_", "-")


class _Spec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, alias_generator=_hyphens, populate_by_name=True)


def _check_regexes(patterns: Sequence[str]) -> Sequence[str]:
    for pattern in patterns:
        try:
            re.compile(pattern)
        except re.error as exc:
            raise ValueError(f"bad regular expression {pattern!r}: {exc}") from None
    return patterns


class NameFilter(_Spec):
    """Regular expressions (Python `re.search`: anchor with ^ and $); a name passes when it matches an `include`
    (or there is none) and no `exclude`."""

    include: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()

    _regexes = field_validator("include", "exclude")(_check_regexes)

    def accepts(self, name: str) -> bool:
        if self.include and not any(re.search(p, name) for p in self.include):
            return False
        return not any(re.search(p, name) for p in self.exclude)


class TagFilter(NameFilter):
    """Tag selection, applied in this order: regexes, `semver` range, then the `newest` N (by semver, or by push
    time: ECR's imagePushedAt on ECR, the image config's `created` elsewhere)."""

    semver: str | None = None
    newest: int | None = Field(default=None, ge=1)
    newest_by: Literal["semver", "pushed"] = "semver"

    @field_validator("semver")
    @classmethod
    def _range(cls, value: str | None) -> str | None:
        if value is not None:
            from ocipush.sync.semver import parse_range

            parse_range(value)
        return value


class RepositorySettings(_Spec):
    """Settings of ECR repositories that `create-repo` makes (the options of `ocipush ecr create-repository`)."""

    scan_on_push: bool = False
    tag_mutability: Literal["MUTABLE", "IMMUTABLE", "MUTABLE_WITH_EXCLUSION", "IMMUTABLE_WITH_EXCLUSION"] = "MUTABLE"
    mutability_exclusions: tuple[str, ...] = ()
    encryption: Literal["AES256", "KMS", "KMS_DSSE"] = "AES256"
    kms_key: str | None = None
    tags: dict[str, str] = {}


class Source(_Spec):
    registry: str
    # skopeo's `images`: repository -> tags, digests or `tag@sha256:…` pins; an empty list means every tag.
    images: dict[str, tuple[str, ...]] = {}
    repositories: tuple[str, ...] = ()
    catalog: bool | NameFilter = False
    tags: TagFilter | None = None
    platforms: tuple[str, ...] = ()

    @field_validator("images", mode="before")
    @classmethod
    def _none_is_all(cls, value: Any) -> Any:
        return {k: (v or []) for k, v in value.items()} if isinstance(value, dict) else value

    @model_validator(mode="after")
    def _names_something(self) -> Source:
        if not (self.images or self.repositories or self.catalog):
            raise ValueError(f"source {self.registry} names no repositories (images, repositories or catalog)")
        return self

    @field_validator("platforms")
    @classmethod
    def _platforms(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        from ocipush.models import parse_platform

        for text in value:
            parse_platform(text)
        return value


class Destination(_Spec):
    """Where images go. The repository name is `template` with `{repo}` (the source repository without `strip`),
    `{name}` (its last component) and `{registry}` (the source registry) filled in, after `prefix`."""

    registry: str
    prefix: str = ""
    strip: str = ""
    template: str = "{repo}"
    create_repo: bool = False
    repository_settings: RepositorySettings = RepositorySettings()

    @field_validator("template")
    @classmethod
    def _template(cls, value: str) -> str:
        try:
            value.format(repo="r", name="n", registry="h")
        except (KeyError, IndexError, ValueError) as exc:
            raise ValueError(f"bad template {value!r}: use {{repo}}, {{name}} or {{registry}} ({exc})") from None
        return value

    def repository_for(self, source_registry: str, repository: str) -> str:
        stripped = repository[len(self.strip) :] if self.strip and repository.startswith(self.strip) else repository
        name = self.template.format(repo=stripped, name=stripped.rsplit("/", 1)[-1], registry=source_registry)
        return (self.prefix + name).strip("/")


class RateLimits(_Spec):
    """Docker Hub's `ratelimit-remaining`: below `floor` pulls left, `pause` (wait for the window to refill, at
    most `max-pause` seconds at a time) or `stop` (the images not yet copied are reported failed)."""

    floor: int = Field(default=10, ge=0)
    action: Literal["pause", "stop"] = "pause"
    max_pause: float = Field(default=900.0, ge=0)
    # ECR's PutImage default quota is 10 per second per Region; pace manifest pushes to ECR under it.
    ecr_put_image_per_second: float = Field(default=10.0, gt=0)


class SyncSpec(_Spec):
    sources: tuple[Source, ...] = Field(min_length=1)
    destinations: tuple[Destination, ...] = Field(min_length=1)
    # Defaults for sources that set none of their own.
    tags: TagFilter | None = None
    platforms: tuple[str, ...] = ()
    rate_limits: RateLimits = RateLimits()
    # Carry what is attached to each copied image (OCI referrers, cosign signatures and attestations).
    referrers: bool = True


def parse_spec(data: Any, destinations: Sequence[Destination] = ()) -> SyncSpec:
    """A SyncSpec from parsed YAML/JSON: the ocipush shape (`sources`, `destinations`), or skopeo-sync's (registry
    names as keys) with `destinations` given here. Raises UsageError with the first problem found."""
    if not isinstance(data, dict):
        raise UsageError("sync file: expected a mapping at the top level")
    if "sources" not in data:
        data = {"sources": [source for registry, entry in data.items() for source in _from_skopeo(registry, entry)]}
    if destinations:
        data = {**data, "destinations": [d.model_dump(by_alias=True) for d in destinations]}
    try:
        return SyncSpec.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"]) or "top level"
        raise UsageError(f"sync file: {where}: {first['msg']}") from None


def _from_skopeo(registry: str, entry: Any) -> list[dict[str, Any]]:
    """skopeo-sync's per-registry entry (`images`, `images-by-tag-regex`, `images-by-semver`) as ocipush sources."""
    if not isinstance(entry, dict):
        raise UsageError(f"sync file: {registry}: expected a mapping")
    unknown = set(entry) - {"images", "images-by-tag-regex", "images-by-semver", "tls-verify"}
    if unknown:
        raise UsageError(f"sync file: {registry}: unsupported key {sorted(unknown)[0]!r}")
    if entry.get("tls-verify") is False:
        raise UsageError(f"sync file: {registry}: tls-verify: false: pass --insecure {registry} instead")
    sources: list[dict[str, Any]] = []
    if entry.get("images"):
        sources.append({"registry": registry, "images": entry["images"]})
    for repo, regex in (entry.get("images-by-tag-regex") or {}).items():
        sources.append({"registry": registry, "repositories": [repo], "tags": {"include": [regex]}})
    for repo, semver in (entry.get("images-by-semver") or {}).items():
        sources.append({"registry": registry, "repositories": [repo], "tags": {"semver": semver}})
    return sources


def load_spec(path: str, destinations: Sequence[Destination] = ()) -> SyncSpec:
    import yaml

    try:
        with open(path, encoding="utf-8") as handle:
            data = yaml.safe_load(handle)
    except yaml.YAMLError as exc:
        raise UsageError(f"sync file {path}: not valid YAML ({str(exc).splitlines()[0]})") from None
    return parse_spec(data, destinations)
