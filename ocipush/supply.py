"""The supply-chain calls of the library: list referrers, attach artifacts (and, in `ocipush.sign`, sign and
verify). Locations are strings as on the command line or parsed references."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ocipush import arguments as check
from ocipush import mediatypes as mt
from ocipush.api import LocationLike
from ocipush.artifact import TITLE, add_bytes, add_file, artifact_manifest, push_artifact
from ocipush.blobsource import BlobSource
from ocipush.errors import NotFoundError, UsageError, VerificationError
from ocipush.layout import OCILayout
from ocipush.models import Descriptor, ManifestDocument, Platform
from ocipush.reference import Reference
from ocipush.referrers import Referrer, RegistryReferrers, cosign_tag
from ocipush.registry.options import RegistryOptions
from ocipush.registry.session import RegistrySession
from ocipush.sign.keys import PasswordSource, env_password
from ocipush.transfer import RegistrySource, TransferResult, select_platform

if TYPE_CHECKING:
    from ocipush.build.image import BuildResult
    from ocipush.sign.verify import Verification


def subject_descriptor(session: RegistrySession, reference: Reference, platform: Platform | None = None) -> Descriptor:
    """The manifest `reference` names (with `platform`, that platform's manifest from an index), as a descriptor."""
    source = RegistrySource(session, reference)
    root = source.root()
    if platform is not None and root.is_index:
        root = select_platform(source, root, platform)
    return root.descriptor()


def list_referrers(
    location: LocationLike,
    *,
    artifact_type: str | None = None,
    recursive: bool = False,
    options: RegistryOptions | None = None,
) -> list[Referrer]:
    """What is attached to the manifest at `location`: OCI referrers (the referrers API, or the referrers tag
    schema where the registry lacks it) and, without `artifact_type`, cosign's `.sig`/`.att`/`.sbom` objects.
    With `recursive`, each referrer's own referrers are in its `children`."""
    reference = check.reference(location, "location")
    with RegistrySession(options) as session:
        subject = subject_descriptor(session, reference)
        finder = RegistryReferrers(session.client(reference))

        # Each manifest's referrers are listed once: one reached again (a cycle through cosign tags, or shared
        # by two parents) appears without its children, so the walk is linear in the manifests, never exponential.
        expanded = {subject.digest}

        def walk(digest: str) -> list[Referrer]:
            found = finder.find(digest, artifact_type if digest == subject.digest else None)
            if not recursive:
                return found
            tree = []
            for r in found:
                first = r.descriptor.digest not in expanded
                expanded.add(r.descriptor.digest)
                tree.append(Referrer(r.descriptor, r.via, r.tag, walk(r.descriptor.digest)) if first else r)
            return tree

        return walk(subject.digest)


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
    reference = check.reference(location, "location")
    blobs: dict[str, BlobSource] = {}
    layers = [add_file(blobs, *((item, None) if isinstance(item, str) else item)) for item in files]
    with RegistrySession(options) as session:
        try:
            subject = subject_descriptor(session, reference, check.platform(platform))
        except NotFoundError:
            raise NotFoundError(f"{reference}: no such manifest to attach to") from None
        return push_artifact(session, reference, artifact_manifest(artifact_type, layers, subject, annotations, blobs),
                             blobs)  # fmt: skip


@dataclass(frozen=True)
class SignResult:
    """What was signed (`digest`), the payload blob, and the manifest that now holds the signature."""

    digest: str
    payload: str
    signature_manifest: str
    tag: str | None


def sign_image(
    location: LocationLike,
    key: str,
    *,
    annotations: dict[str, str] | None = None,
    referrer: bool = False,
    password: PasswordSource = env_password,
    options: RegistryOptions | None = None,
) -> SignResult:
    """Sign the manifest digest `location` names (never the tag) with `key` (a cosign key file, a PEM private key
    or `awskms://…`), stored as cosign stores it: appended to the `sha256-<hex>.sig` manifest, or, with
    `referrer`, as an OCI 1.1 referrer of the image."""
    from ocipush.sign.payload import simple_signing_payload
    from ocipush.sign.signer import open_signer
    from ocipush.sign.store import signature_layer, store_as_referrer, store_in_tag

    reference = check.reference(location, "location")
    options = options or RegistryOptions.from_env()
    signer = open_signer(key, password, options.aws_profile)
    with RegistrySession(options) as session:
        subject = subject_descriptor(session, reference)
        payload = simple_signing_payload(f"{reference.registry}/{reference.repository}", subject.digest, annotations)
        blobs: dict[str, BlobSource] = {}
        layer = signature_layer(blobs, payload, signer.sign(payload))
        if referrer:
            document = store_as_referrer(session, reference, subject, layer, blobs)
            return SignResult(subject.digest, layer.digest, document.digest, None)
        document = store_in_tag(session, reference, subject.digest, layer, blobs)
        return SignResult(subject.digest, layer.digest, document.digest, cosign_tag(subject.digest))


def verify_image(
    location: LocationLike,
    key: str,
    *,
    annotations: dict[str, str] | None = None,
    allow_other_repository: bool = False,
    password: PasswordSource = env_password,
    options: RegistryOptions | None = None,
) -> Verification:
    """Check every signature of the manifest `location` names (cosign's tag and signature referrers) against
    `key` (a public key file, a private key file or `awskms://…`) and the payload's claims. Raises
    VerificationError (carrying the report) unless at least one is valid."""
    from ocipush.sign.signer import open_public_key
    from ocipush.sign.store import find_signatures
    from ocipush.sign.verify import Verification, check_signature, repository_names

    reference = check.reference(location, "location")
    options = options or RegistryOptions.from_env()
    public_key = open_public_key(key, password, options.aws_profile)
    with RegistrySession(options) as session:
        digest = subject_descriptor(session, reference).digest
        client = session.client(reference)
        found = find_signatures(client, RegistryReferrers(client), digest)
        repositories = None if allow_other_repository else repository_names(reference)
        checks = [check_signature(client, public_key, s, digest, repositories, annotations or {}) for s in found]
    report = Verification(str(reference), digest, checks)
    if not found:
        raise VerificationError(f"{reference}: no signatures found for {digest}", report)
    if not report.valid:
        reasons = "; ".join(sorted({check.reason for check in checks}))
        raise VerificationError(f"{reference}: none of {len(checks)} signature(s) verified: {reasons}", report)
    return report


def generate_key_pair(directory: str = ".", password: PasswordSource = env_password) -> tuple[str, str]:
    """Write `cosign.key` (ECDSA P-256, encrypted as cosign does) and `cosign.pub` into `directory`."""
    from ocipush.sign.keys import generate_key_pair as write_pair

    return write_pair(directory, password())


def build_sboms(
    store: OCILayout, built: BuildResult, created: int | None, open_missing: Callable[[Descriptor], Any] | None = None
) -> list[tuple[Descriptor, bytes]]:
    """An SPDX document for each image manifest a build made (subject, document): the layers the build added,
    not the base's; `created` is the build's SOURCE_DATE_EPOCH. Blobs not in `store` (layers reused from the
    target's current image) come from `open_missing`."""
    from ocipush.build.sbom import inventory_of, spdx_document

    built_digests = {layer.digest for layer in built.layers}
    found = []
    for descriptor in built.manifests:
        manifest = store.read_manifest(descriptor).manifest

        def streams(layers: list[Descriptor]) -> Iterator[tuple[str, str, Any]]:
            for layer in layers:
                if store.has_blob(layer.digest):
                    with store.open_blob(layer.digest) as stream:
                        yield layer.digest, mt.layer_compression(layer.media_type), stream
                elif open_missing is not None:
                    yield layer.digest, mt.layer_compression(layer.media_type), open_missing(layer)
                else:
                    raise NotFoundError(f"layer {layer.digest} is not in {store.path}: cannot describe it")

        mine = [layer for layer in manifest.layers if layer.digest in built_digests]
        found.append((descriptor, spdx_document(descriptor.digest, inventory_of(streams(mine)), created)))
    return found


def sbom_manifest(subject: Descriptor, document: bytes, blobs: dict[str, BlobSource]) -> ManifestDocument:
    from ocipush.build.sbom import SPDX_JSON

    layer = add_bytes(blobs, document, SPDX_JSON, annotations={TITLE: "sbom.spdx.json"})
    return artifact_manifest(SPDX_JSON, [layer], subject, blobs=blobs)


def add_sboms_to_layout(store: OCILayout, built: BuildResult, created: int | None) -> list[str]:
    """Generate the build's SBOMs and keep them in its layout as referrers (`push --referrers` takes them on)."""
    digests = []
    for subject, document in build_sboms(store, built, created):
        blobs: dict[str, BlobSource] = {}
        manifest = sbom_manifest(subject, document, blobs)
        for blob in blobs.values():
            store.write_blob(b"".join(blob.read_range(0, blob.size)), blob.digest)
        store.add_manifest(manifest)
        digests.append(manifest.digest)
    return digests


def push_sboms(
    session: RegistrySession, reference: Reference, store: OCILayout, built: BuildResult, created: int | None
) -> list[str]:
    """Generate the build's SBOMs and attach them to what was pushed to `reference`."""
    from ocipush.blobsource import RegistryBlobSource
    from ocipush.extract import ChunkReader

    client = session.client(reference)

    def from_registry(layer: Descriptor) -> ChunkReader:
        return ChunkReader(RegistryBlobSource(client, layer.digest, layer.size).read_range(0, layer.size))

    digests = []
    for subject, document in build_sboms(store, built, created, from_registry):
        blobs: dict[str, BlobSource] = {}
        digests.append(push_artifact(session, reference, sbom_manifest(subject, document, blobs), blobs).digest)
    return digests


def sbom(
    location: LocationLike, *, platform: Platform | str | None = None, options: RegistryOptions | None = None
) -> bytes:
    """The SPDX SBOM attached to the manifest at `location` (the latest listed; with `platform`, of that
    platform's manifest), or cosign's `.sbom` object."""
    from ocipush.build.sbom import SPDX_JSON

    reference = check.reference(location, "location")
    with RegistrySession(options) as session:
        subject = subject_descriptor(session, reference, check.platform(platform))
        client = session.client(reference)
        finder = RegistryReferrers(client)
        found = finder.referrers(subject.digest, SPDX_JSON)
        if found:
            manifest = client.get_manifest(found[-1].descriptor.digest).manifest
        else:
            cosign = [r for r in finder.cosign_objects(subject.digest) if r.tag and r.tag.endswith(".sbom")]
            if not cosign:
                raise NotFoundError(f"{reference}: no SBOM attached to {subject.digest}")
            manifest = client.get_manifest(cosign[0].descriptor.digest).manifest
        # The document is the first layer that is not the empty descriptor an artifact without files holds.
        layer = next((x for x in manifest.layers if x.media_type != mt.OCI_EMPTY), None)
        if layer is None:
            raise NotFoundError(f"{reference}: the SBOM attached to {subject.digest} holds no document")
        return client.fetch_blob_bytes(layer.digest, limit=max(layer.size, 1))
