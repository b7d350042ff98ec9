"""Artifacts made here (attached files, signatures, SBOMs): an image manifest with the empty config, an
`artifactType` and a `subject`, pushed by the same graph walk as any image (it is an `ImageSource`)."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from ocipush import mediatypes as mt
from ocipush.blobsource import BlobSource, BytesBlobSource, FileBlobSource
from ocipush.digest import digest_file, sha256_of
from ocipush.errors import NotFoundError, UsageError
from ocipush.models import Descriptor, Manifest, ManifestDocument
from ocipush.referrers import Referrer

if TYPE_CHECKING:
    from ocipush.reference import Reference
    from ocipush.registry.session import RegistrySession
    from ocipush.transfer import TransferResult

EMPTY_JSON = b"{}"
TITLE = "org.opencontainers.image.title"
DEFAULT_FILE_TYPE = "application/octet-stream"


def empty_descriptor() -> Descriptor:
    """The image-spec's empty descriptor (`{}`), for a config an artifact does not need."""
    return Descriptor(media_type=mt.OCI_EMPTY, digest=sha256_of(EMPTY_JSON), size=len(EMPTY_JSON))


@dataclass
class ArtifactSource:
    """One manifest we created plus the sources of its blobs; blobs it does not have come from `fallback`
    (layers of an earlier signature manifest, already in the target repository)."""

    document: ManifestDocument
    blobs: dict[str, BlobSource] = field(default_factory=dict)
    fallback: dict[str, BlobSource] = field(default_factory=dict)
    name: str = "artifact"

    def root(self) -> ManifestDocument:
        return self.document

    def manifest(self, descriptor: Descriptor) -> ManifestDocument:
        raise NotFoundError(f"{self.name} has no manifest {descriptor.digest}")

    def blob(self, descriptor: Descriptor) -> BlobSource:
        found = self.blobs.get(descriptor.digest) or self.fallback.get(descriptor.digest)
        if found is None:
            raise NotFoundError(f"{self.name} has no blob {descriptor.digest}")
        return found

    def mount_from(self, descriptor: Descriptor, host: str) -> list[str]:
        return []

    def attached(self, digest: str) -> list[Referrer]:
        return []


def add_bytes(
    blobs: dict[str, BlobSource], data: bytes, media_type: str, annotations: dict[str, str] | None = None
) -> Descriptor:
    """Register an in-memory blob; returns its descriptor."""
    digest = sha256_of(data)
    blobs[digest] = BytesBlobSource(data, digest, len(data))
    return Descriptor(media_type=media_type, digest=digest, size=len(data), annotations=annotations)


def add_file(blobs: dict[str, BlobSource], path: str, media_type: str | None = None) -> Descriptor:
    """Register a file as a blob (hashed now, streamed when uploaded), titled with its base name as oras does."""
    if not os.path.isfile(path):
        raise UsageError(f"{path}: no such file")
    digest, size = digest_file(path)
    blobs[digest] = FileBlobSource(path, digest, size)
    return Descriptor(
        media_type=media_type or DEFAULT_FILE_TYPE, digest=digest, size=size,
        annotations={TITLE: os.path.basename(path)},
    )  # fmt: skip


def parse_file_argument(text: str) -> tuple[str, str | None]:
    """`FILE[:MEDIATYPE]`: a media type is recognised by its `/` (a path with `:` and no type stays whole)."""
    path, sep, media_type = text.rpartition(":")
    if sep and path and "/" in media_type and not os.path.exists(text):
        return path, media_type
    return text, None


def artifact_manifest(
    artifact_type: str,
    layers: list[Descriptor],
    subject: Descriptor | None,
    annotations: dict[str, str] | None = None,
    blobs: dict[str, BlobSource] | None = None,
) -> ManifestDocument:
    """An artifact manifest by the image-spec's guidance: empty config, `artifactType`, the layers (the empty
    descriptor when there are none) and `subject`."""
    config = empty_descriptor()
    if blobs is not None:
        blobs[config.digest] = BytesBlobSource(EMPTY_JSON, config.digest, config.size)
    plain_subject = None
    if subject is not None:
        plain_subject = Descriptor(media_type=subject.media_type, digest=subject.digest, size=subject.size)
    manifest = Manifest(
        media_type=mt.OCI_MANIFEST,
        artifact_type=artifact_type,
        config=config,
        layers=layers or [config],
        subject=plain_subject,
        annotations=annotations or None,
    )
    return ManifestDocument.from_model(manifest)


def push_artifact(
    session: RegistrySession,
    reference: Reference,
    document: ManifestDocument,
    blobs: dict[str, BlobSource],
    tags: list[str] | None = None,
    fallback: dict[str, BlobSource] | None = None,
) -> TransferResult:
    """Push a manifest made here and its blobs into `reference`'s repository through the graph walk (which also
    keeps the referrers tag index when the manifest has a subject and the registry lacks the API)."""
    from ocipush.progress import ignore_progress
    from ocipush.transfer import RegistryTarget, transfer

    source = ArtifactSource(document, blobs, fallback or {}, name=f"artifact for {reference}")
    return transfer(source, RegistryTarget(session, reference, ignore_progress), tags or [], jobs=session.options.jobs)
