"""Referrers of a manifest: the manifests whose `subject` names it (signatures, SBOMs, attestations), and cosign's
tag-scheme objects.

A registry knows referrers in one of two ways: the OCI 1.1 referrers API (`GET /v2/<name>/referrers/<digest>`,
ECR among others), or, where it lacks the API (distribution 2.8 and other older registries), an image index that
its clients keep under the referrers tag `sha256-<hex>` (distribution-spec "Referrers Tag Schema"). cosign also
stores signatures, attestations and SBOMs under tags of their own: `sha256-<hex>.sig`, `.att`, `.sbom`.

The tag index is updated by read, merge, write. The distribution API has no conditional manifest PUT, so two
clients updating the same index at the same moment can lose one entry (the last writer wins). After writing, the
index is read back and the merge repeated when an entry of ours is missing; a concurrent writer that read before
our write and writes after our read-back can still drop ours. The referrer manifest itself is never lost: running
the same `attach` or `sign` again adds it back. A registry with the referrers API has no such race."""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ocipush import mediatypes as mt
from ocipush.document import ManifestDocument
from ocipush.errors import AuthError, NotFoundError, RegistryError
from ocipush.layout import REF_NAME, OCILayout
from ocipush.log import get_logger
from ocipush.registry.client import RegistryClient

if TYPE_CHECKING:  # the models load where a document is first parsed or built (not for `tags`)
    from ocipush.models import Descriptor, Index

log = get_logger("ocipush.referrers")

COSIGN_SUFFIXES = (".sig", ".att", ".sbom")
# cosign objects holding one layer per entry: merged with what a destination holds, never replaced.
APPENDED_SUFFIXES = (".sig", ".att")
INDEX_UPDATE_TRIES = 3
_NOT_TAG_CHARS = re.compile(r"[^A-Za-z0-9_.-]")


def referrers_tag(digest: str) -> str:
    """The referrers tag of a digest: algorithm (≤ 32 chars) `-` encoded part (≤ 64), other characters as `-`."""
    algorithm, _, encoded = digest.partition(":")
    return _NOT_TAG_CHARS.sub("-", f"{algorithm[:32]}-{encoded[:64]}")


def cosign_tag(digest: str, suffix: str = ".sig") -> str:
    """cosign's tag for the signatures (`.sig`), attestations (`.att`) or SBOMs (`.sbom`) of `digest`."""
    return digest.replace(":", "-") + suffix


def artifact_type(document: ManifestDocument) -> str | None:
    """What a referrer is: its `artifactType`, else (for an image manifest) its config's media type."""
    from ocipush.models import Manifest

    parsed = document.parsed
    if parsed.artifact_type:
        return parsed.artifact_type
    return parsed.config.media_type if isinstance(parsed, Manifest) else None


def referrer_descriptor(document: ManifestDocument) -> Descriptor:
    """The descriptor the referrers API (or a tag index) lists for `document`: artifact type and annotations."""
    return document.descriptor(artifact_type=artifact_type(document), annotations=document.parsed.annotations or None)


@dataclass(frozen=True)
class Referrer:
    """A manifest attached to a subject; `via` says how it was found: `api`, `tag-schema`, `cosign-tag` or
    `layout`; `tag` is the cosign tag it lives under; `children` its own referrers (for a tree)."""

    descriptor: Descriptor
    via: str
    tag: str | None = None
    children: list[Referrer] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = json.loads(self.descriptor.to_json_bytes())
        data["via"] = self.via
        if self.tag:
            data["tag"] = self.tag
        if self.children:
            data["referrers"] = [child.to_dict() for child in self.children]
        return data


def _wanted(descriptor: Descriptor, wanted_type: str | None) -> bool:
    return wanted_type is None or descriptor.artifact_type == wanted_type


class RegistryReferrers:
    """Referrers of manifests in one repository. It remembers whether the registry serves the referrers API and
    the repository's tags, so that a walk over a graph costs one tag listing plus one request a manifest."""

    def __init__(self, client: RegistryClient) -> None:
        self.client = client
        self.api: bool | None = None  # unknown until asked
        self._tags: set[str] | None = None  # None: not listed (yet, or the registry refuses to list them)
        self._listed = False
        self._lock = threading.Lock()

    def find(self, digest: str, wanted_type: str | None = None) -> list[Referrer]:
        """Referrers of `digest` (API or tag schema), then cosign's tag-scheme objects (not filtered by type)."""
        if wanted_type is None:
            self.tags()  # first: without the API, the listing tells whether a tag index exists at all
            return self.referrers(digest) + self.cosign_objects(digest)
        return self.referrers(digest, wanted_type)

    def referrers(self, digest: str, wanted_type: str | None = None) -> list[Referrer]:
        if self.api is not False:
            listed = self.client.list_referrers(digest, wanted_type)
            if listed is not None:
                self.api = True
                # Filtering is a SHOULD for the registry: filter again, it costs nothing.
                return [Referrer(d, "api") for d in listed if _wanted(d, wanted_type)]
            self.api = False
        index = self._tag_index(digest)
        if index is None or not index.is_index:
            return []  # the spec: no valid index under the tag means no referrers
        return [Referrer(d, "tag-schema") for d in index.index.manifests if _wanted(d, wanted_type)]

    def has_api(self, digest: str) -> bool:
        """Whether the registry serves the referrers API (asked once, about `digest`)."""
        if self.api is None:
            self.api = self.client.list_referrers(digest) is not None
        return self.api

    def tags(self) -> set[str] | None:
        """The repository's tags, listed once; None when the registry refuses to list them (a pull-only role, such
        as ECR without ecr:ListImages): then each tag is asked for by name."""
        with self._lock:
            if not self._listed:
                try:
                    self._tags = set(self.client.list_tags())
                except NotFoundError:  # no repository, no tags
                    self._tags = set()
                except AuthError as exc:
                    log.info("%s; asking for cosign and referrers tags by name instead", exc)
                self._listed = True
            return self._tags

    def cosign_objects(self, digest: str) -> list[Referrer]:
        from ocipush.models import Descriptor

        tags = self.tags()
        found: list[Referrer] = []
        for suffix in COSIGN_SUFFIXES:
            tag = cosign_tag(digest, suffix)
            if tags is not None and tag not in tags:
                continue
            head = self.client.manifest_digest(tag)
            if head is not None:
                found.append(Referrer(Descriptor(media_type=head[1], digest=head[0], size=head[2]), "cosign-tag", tag))
        return found

    def _tag_index(self, digest: str) -> ManifestDocument | None:
        tag = referrers_tag(digest)
        if self._tags is not None and tag not in self._tags:
            return None  # the listing we already have says there is none: spare the GET
        try:
            return self.client.get_manifest(tag)
        except NotFoundError:
            return None

    def add_to_index(self, subject: str, documents: Iterable[ManifestDocument]) -> bool:
        """Make the referrers tag index of `subject` list `documents` (read, merge, write, read back).
        Returns whether it had to be written."""
        from ocipush.models import Index

        wanted = {d.digest: referrer_descriptor(d) for d in documents}
        tag = referrers_tag(subject)
        wrote = False
        for _ in range(INDEX_UPDATE_TRIES):
            current = self._tag_index_for_update(tag)
            listed = {d.digest for d in current.manifests}
            missing = [d for digest, d in wanted.items() if digest not in listed]
            if not missing:
                return wrote
            merged = Index(manifests=[*current.manifests, *missing], media_type=mt.OCI_INDEX)
            self.client.put_manifest(tag, ManifestDocument.from_model(merged))
            wrote = True
            log.debug("referrers index %s of %s now lists %d manifests", tag, self.client.name, len(merged.manifests))
            if self._tags is not None:
                self._tags.add(tag)
        raise RegistryError(
            f"{self.client.name}:{tag}: other clients kept rewriting this referrers index; "
            "run the command again (or use a registry with the referrers API)"
        )

    def _tag_index_for_update(self, tag: str) -> Index:
        from ocipush.models import Index

        try:
            document = self.client.get_manifest(tag)
        except NotFoundError:
            return Index(manifests=[])
        if not document.is_index:
            raise RegistryError(
                f"{self.client.name}:{tag} is a {document.media_type}, not the referrers index the tag schema "
                "expects: not changing it"
            )
        return document.index


class LayoutReferrers:
    """Referrers in an OCI layout: the manifests listed in its index.json whose subject names a digest (oras and
    skopeo keep them so), and cosign objects under their tags."""

    def __init__(self, layout: OCILayout) -> None:
        self.layout = layout
        self._subjects: dict[str, list[Descriptor]] | None = None

    def find(self, digest: str, wanted_type: str | None = None) -> list[Referrer]:
        from ocipush.models import Descriptor

        found = [Referrer(d, "layout") for d in self._by_subject().get(digest, []) if _wanted(d, wanted_type)]
        if wanted_type is None:
            tags = {cosign_tag(digest, suffix) for suffix in COSIGN_SUFFIXES}
            for entry in self.layout.read_index().manifests:
                tag = (entry.annotations or {}).get(REF_NAME)
                if tag in tags:
                    plain = Descriptor(media_type=entry.media_type, digest=entry.digest, size=entry.size)
                    found.append(Referrer(plain, "cosign-tag", tag))
        return found

    def _by_subject(self) -> dict[str, list[Descriptor]]:
        if self._subjects is None:
            self._subjects = {}
            seen: set[str] = set()
            for entry in self.layout.read_index().manifests:
                if entry.digest in seen or entry.media_type not in mt.MANIFESTS:
                    continue
                seen.add(entry.digest)
                document = self.layout.read_manifest(entry)
                subject = document.parsed.subject
                if subject is not None:
                    self._subjects.setdefault(subject.digest, []).append(referrer_descriptor(document))
        return self._subjects


def explain_refusal(error: RegistryError, document: ManifestDocument, where: str) -> RegistryError:
    """ECR refuses (405) a referrer whose subject is an image index: say so instead of a bare 405."""
    subject = document.parsed.subject if document.media_type in mt.MANIFESTS else None
    if error.status != 405 or subject is None or subject.media_type not in mt.INDEXES:
        return error
    return RegistryError(
        f"{where} refused referrer {document.digest[:19]} because its subject {subject.digest[:19]} is an image "
        "index (Amazon ECR accepts referrers of image manifests only): attach it to one platform's manifest, "
        "whose digest `ocipush inspect --platform OS/ARCH REF` shows, or use the cosign tag scheme",
        status=405,
        code=error.code,
    )
