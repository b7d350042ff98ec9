"""Where signatures are kept: cosign's tag scheme (one manifest under `sha256-<hex>.sig`, one layer per signature,
appended to), or an OCI 1.1 referrer per signature (`artifactType` cosign's signature type)."""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass

from ocipush import mediatypes as mt
from ocipush.artifact import add_bytes, artifact_manifest, push_artifact
from ocipush.blobsource import BlobSource, RegistryBlobSource
from ocipush.errors import NotFoundError, RegistryError
from ocipush.log import get_logger
from ocipush.models import Descriptor, Manifest, ManifestDocument
from ocipush.reference import Reference
from ocipush.referrers import RegistryReferrers, cosign_tag
from ocipush.registry.client import RegistryClient
from ocipush.registry.session import RegistrySession
from ocipush.sign.payload import SIGNATURE_ANNOTATION, SIGNATURE_ARTIFACT_TYPE, SIMPLE_SIGNING

log = get_logger("ocipush.sign")
APPEND_TRIES = 3


@dataclass(frozen=True)
class StoredSignature:
    """A signature layer and where it was found: `tag sha256-….sig` or `referrer sha256:…`."""

    where: str
    layer: Descriptor


def signature_layer(blobs: dict[str, BlobSource], payload: bytes, signature: bytes) -> Descriptor:
    return add_bytes(blobs, payload, SIMPLE_SIGNING, annotations={SIGNATURE_ANNOTATION: base64.b64encode(signature)
                                                                    .decode()})  # fmt: skip


def _same_layer(a: Descriptor, b: Descriptor) -> bool:
    """The same entry: one payload with the same signature (and certificate, bundle… for keyless ones)."""
    return a.digest == b.digest and (a.annotations or {}) == (b.annotations or {})


def _signature_config(layers: list[Descriptor]) -> bytes:
    """A config like cosign's for a signature manifest: no platform, one diff_id per payload layer."""
    config = {
        "architecture": "", "os": "", "config": {}, "created": "0001-01-01T00:00:00Z",
        "history": [{"created": "0001-01-01T00:00:00Z"}],
        "rootfs": {"type": "layers", "diff_ids": [layer.digest for layer in layers]},
    }  # fmt: skip
    return json.dumps(config, sort_keys=True, separators=(",", ":")).encode()


def signature_manifest(layers: list[Descriptor], blobs: dict[str, BlobSource]) -> ManifestDocument:
    """A `.sig` manifest holding `layers` (its config blob goes into `blobs`)."""
    config = add_bytes(blobs, _signature_config(layers), mt.OCI_CONFIG)
    return ManifestDocument.from_model(Manifest(media_type=mt.OCI_MANIFEST, config=config, layers=layers))


def merge_signature_manifests(
    existing: ManifestDocument, incoming: ManifestDocument, blobs: dict[str, BlobSource]
) -> ManifestDocument:
    """What a `.sig` (or `.att`) tag should name when `incoming` arrives where `existing` is: existing's layers,
    then incoming's that are not there yet (`existing` itself when it already holds them all)."""
    old = existing.manifest.layers
    new = [layer for layer in incoming.manifest.layers if not any(_same_layer(layer, o) for o in old)]
    return signature_manifest([*old, *new], blobs) if new else existing


def _current(client: RegistryClient, tag: str) -> ManifestDocument | None:
    try:
        return client.get_manifest(tag)
    except NotFoundError:
        return None


def store_in_tag(
    session: RegistrySession, reference: Reference, subject: str, layer: Descriptor, blobs: dict[str, BlobSource]
) -> ManifestDocument:
    """Append a signature layer to the `.sig` manifest of `subject` (read, merge, write, read back: a concurrent
    signer's layer is merged in, not dropped, unless both write within the same instant)."""
    client = session.client(reference)
    tag = cosign_tag(subject)
    for _ in range(APPEND_TRIES):
        current = _current(client, tag)
        old = current.manifest.layers if current is not None and not current.is_index else []
        if current is not None and any(_same_layer(existing, layer) for existing in old):
            return current
        document = signature_manifest([*old, layer], blobs)
        # Earlier signatures' payloads are in the repository already: found there, never read.
        fallback: dict[str, BlobSource] = {d.digest: RegistryBlobSource(client, d.digest, d.size) for d in old}
        push_artifact(session, reference, document, blobs, tags=[tag], fallback=fallback)
        after = _current(client, tag)
        if after is not None and any(_same_layer(x, layer) for x in after.manifest.layers):
            return after
        log.info("%s:%s changed while signing; merging again", client.name, tag)
    raise RegistryError(f"{client.name}:{tag}: other signers kept rewriting it; run the command again")


def store_as_referrer(
    session: RegistrySession, reference: Reference, subject: Descriptor, layer: Descriptor,
    blobs: dict[str, BlobSource],
) -> ManifestDocument:  # fmt: skip
    document = artifact_manifest(SIGNATURE_ARTIFACT_TYPE, [layer], subject, blobs=blobs)
    push_artifact(session, reference, document, blobs)
    return document


def find_signatures(client: RegistryClient, finder: RegistryReferrers, digest: str) -> list[StoredSignature]:
    """Every simple-signing layer attached to `digest`: in its `.sig` tag and in signature referrers."""
    found: list[StoredSignature] = []
    tag = cosign_tag(digest)
    tagged = _current(client, tag)
    if tagged is not None and not tagged.is_index:
        found += [StoredSignature(f"tag {tag}", x) for x in tagged.manifest.layers if x.media_type == SIMPLE_SIGNING]
    for referrer in finder.referrers(digest):
        if referrer.descriptor.artifact_type not in (SIGNATURE_ARTIFACT_TYPE, SIMPLE_SIGNING):
            continue
        document = client.get_manifest(referrer.descriptor.digest)
        if document.is_index:
            continue
        where = f"referrer {document.digest}"
        found += [StoredSignature(where, x) for x in document.manifest.layers if x.media_type == SIMPLE_SIGNING]
    return found
