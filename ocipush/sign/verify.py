"""Verify an image's signatures offline, as `cosign verify --key` does for key-based signatures: each signature
found (cosign's tag and signature referrers) is checked against the payload's exact bytes, then the payload's
claims: the image digest, the repository (`docker-reference`) and the annotations asked for."""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass, field
from typing import Any

from cryptography.hazmat.primitives.asymmetric.types import PublicKeyTypes

from ocipush.errors import OcipushError
from ocipush.reference import DOCKER_HUB, Reference
from ocipush.registry.client import RegistryClient
from ocipush.sign.keys import signature_valid
from ocipush.sign.payload import SIGNATURE_ANNOTATION, SIGNATURE_TYPE, read_payload
from ocipush.sign.store import StoredSignature

PAYLOAD_LIMIT = 1 << 20


@dataclass
class SignatureCheck:
    """One signature of an image, and whether it verified."""

    where: str
    payload: str
    valid: bool
    reason: str
    annotations: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"where": self.where, "payload": self.payload, "valid": self.valid, "reason": self.reason,
                "annotations": self.annotations}  # fmt: skip


@dataclass
class Verification:
    """The signatures found for an image, each checked."""

    reference: str
    digest: str
    checks: list[SignatureCheck]

    @property
    def valid(self) -> list[SignatureCheck]:
        return [check for check in self.checks if check.valid]

    def to_dict(self) -> dict[str, Any]:
        return {"reference": self.reference, "digest": self.digest, "verified": bool(self.valid),
                "signatures": [check.to_dict() for check in self.checks]}  # fmt: skip


def repository_names(reference: Reference) -> set[str]:
    """The names a payload may give the repository: ours, and cosign's spelling of Docker Hub."""
    name = f"{reference.registry}/{reference.repository}"
    return {name, f"index.docker.io/{reference.repository}"} if reference.registry == DOCKER_HUB else {name}


def check_signature(
    client: RegistryClient,
    key: PublicKeyTypes,
    found: StoredSignature,
    digest: str,
    repositories: set[str] | None,
    wanted: dict[str, str],
) -> SignatureCheck:
    """One signature against `key` and the claims: `repositories` None accepts any repository."""
    layer = found.layer
    check = SignatureCheck(found.where, layer.digest, False, "")
    encoded = (layer.annotations or {}).get(SIGNATURE_ANNOTATION)
    if not encoded:
        check.reason = "no signature annotation on the layer"
        return check
    try:
        signature = base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError):
        check.reason = "the signature annotation is not base64"
        return check
    try:
        payload = client.fetch_blob_bytes(layer.digest, limit=PAYLOAD_LIMIT)
    except OcipushError as exc:
        check.reason = f"payload unavailable: {exc}"
        return check
    if not signature_valid(key, signature, payload):
        check.reason = "the signature does not match the payload with this key"
        return check
    try:
        claims = read_payload(payload)
    except ValueError as exc:
        check.reason = f"the payload is not a simple-signing document ({exc})"
        return check
    check.annotations = claims.annotations
    if claims.kind != SIGNATURE_TYPE:
        check.reason = f"the payload's type is {claims.kind!r}, not {SIGNATURE_TYPE!r}"
    elif claims.digest != digest:
        check.reason = f"the payload signs {claims.digest}, not this image"
    elif repositories is not None and claims.reference not in repositories:
        check.reason = f"the payload names repository {claims.reference!r} (allow it with --allow-other-repository)"
    elif missing := [k for k, v in wanted.items() if k not in claims.annotations or str(claims.annotations[k]) != v]:
        check.reason = "annotation(s) not as asked: " + ", ".join(missing)
    else:
        check.valid, check.reason = True, "ok"
    return check
