"""The supply-chain calls of the library: list referrers, attach artifacts (and, in `ocipush.sign`, sign and
verify). Locations are strings as on the command line or parsed references."""

from __future__ import annotations

from collections.abc import Iterable

from ocipush.api import LocationLike, _platform, _reference
from ocipush.artifact import ArtifactSource, add_file, artifact_manifest
from ocipush.blobsource import BlobSource
from ocipush.errors import NotFoundError, UsageError
from ocipush.models import Descriptor, ManifestDocument, Platform
from ocipush.progress import ignore_progress
from ocipush.reference import Reference
from ocipush.referrers import Referrer, RegistryReferrers
from ocipush.registry.options import RegistryOptions
from ocipush.registry.session import RegistrySession
from ocipush.transfer import RegistrySource, RegistryTarget, TransferResult, select_platform, transfer


def subject_descriptor(session: RegistrySession, reference: Reference, platform: Platform | None = None) -> Descriptor:
    """The manifest `reference` names (with `platform`, that platform's manifest from an index), as a descriptor."""
    source = RegistrySource(session, reference)
    root = source.root()
    if platform is not None and root.is_index:
        root = select_platform(source, root, platform)
    return root.descriptor()


def referrers(
    location: LocationLike,
    *,
    artifact_type: str | None = None,
    recursive: bool = False,
    options: RegistryOptions | None = None,
) -> list[Referrer]:
    """What is attached to the manifest at `location`: OCI referrers (the referrers API, or the referrers tag
    schema where the registry lacks it) and, without `artifact_type`, cosign's `.sig`/`.att`/`.sbom` objects.
    With `recursive`, each referrer's own referrers are in its `children`."""
    reference = _reference(location)
    with RegistrySession(options) as session:
        subject = subject_descriptor(session, reference)
        finder = RegistryReferrers(session.client(reference))

        def walk(digest: str, seen: frozenset[str]) -> list[Referrer]:
            found = finder.find(digest, artifact_type if digest == subject.digest else None)
            if not recursive:
                return found
            return [
                Referrer(r.descriptor, r.via, r.tag, walk(r.descriptor.digest, seen | {digest}))
                if r.descriptor.digest not in seen else r
                for r in found
            ]  # fmt: skip

        return walk(subject.digest, frozenset())


def attach(
    location: LocationLike,
    artifact_type: str,
    files: Iterable[str | tuple[str, str | None]],
    *,
    annotations: dict[str, str] | None = None,
    platform: Platform | str | None = None,
    options: RegistryOptions | None = None,
) -> TransferResult:
    """Push an artifact (`files`, each a path or (path, media type)) as a referrer of the manifest at `location`:
    empty config, `artifactType`, `subject`. A registry without the referrers API gets the referrers tag index
    updated (read, merge, write). Returns the artifact manifest's digest and blob outcomes."""
    if not artifact_type or "/" not in artifact_type:
        raise UsageError(f"artifact type {artifact_type!r} is not a media type (type/subtype)")
    reference = _reference(location)
    blobs: dict[str, BlobSource] = {}
    layers = [add_file(blobs, *((item, None) if isinstance(item, str) else item)) for item in files]
    with RegistrySession(options) as session:
        try:
            subject = subject_descriptor(session, reference, _platform(platform))
        except NotFoundError:
            raise NotFoundError(f"{reference}: no such manifest to attach to") from None
        return push_artifact(session, reference, artifact_manifest(artifact_type, layers, subject, annotations, blobs),
                             blobs)  # fmt: skip


def push_artifact(
    session: RegistrySession,
    reference: Reference,
    document: ManifestDocument,
    blobs: dict[str, BlobSource],
    tags: list[str] | None = None,
    fallback: dict[str, BlobSource] | None = None,
) -> TransferResult:
    """Push a manifest made here and its blobs into `reference`'s repository through the graph walk."""
    source = ArtifactSource(document, blobs, fallback or {}, name=f"artifact for {reference}")
    return transfer(source, RegistryTarget(session, reference, ignore_progress), tags or [], jobs=session.options.jobs)
