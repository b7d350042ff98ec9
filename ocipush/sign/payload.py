"""cosign's simple-signing payload (cosign SIGNATURE_SPEC, "Simple Signing") and where signatures live in a
manifest: one layer per signature, the payload as the blob, the signature in a layer annotation."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

SIMPLE_SIGNING = "application/vnd.dev.cosign.simplesigning.v1+json"
SIGNATURE_ANNOTATION = "dev.cosignproject.cosign/signature"
SIGNATURE_TYPE = "cosign container image signature"
# cosign's artifact type for a signature stored as an OCI 1.1 referrer.
SIGNATURE_ARTIFACT_TYPE = "application/vnd.dev.cosign.artifact.sig.v1+json"


def simple_signing_payload(repository: str, digest: str, annotations: dict[str, str] | None = None) -> bytes:
    """The payload cosign signs for image `digest` in `repository` (host/name), keys in cosign's order."""
    document = {
        "critical": {
            "identity": {"docker-reference": repository},
            "image": {"docker-manifest-digest": digest},
            "type": SIGNATURE_TYPE,
        },
        "optional": annotations or None,
    }
    return json.dumps(document, separators=(",", ":")).encode()


@dataclass(frozen=True)
class Claims:
    """What a payload says: the image digest, the repository and the optional annotations."""

    digest: str
    reference: str
    kind: str
    annotations: dict[str, Any]


def read_payload(data: bytes) -> Claims:
    """Parse a simple-signing payload; ValueError when it is not one."""
    document = json.loads(data)
    critical = document.get("critical") if isinstance(document, dict) else None
    if not isinstance(critical, dict):
        raise ValueError("no 'critical' section")
    image = critical.get("image") or {}
    identity = critical.get("identity") or {}
    # The containers/image spec capitalises the key; cosign writes it lower-case.
    digest = image.get("docker-manifest-digest") or image.get("Docker-manifest-digest")
    if not isinstance(digest, str):
        raise ValueError("no docker-manifest-digest")
    optional = document.get("optional")
    return Claims(
        digest, str(identity.get("docker-reference") or ""), str(critical.get("type") or ""),
        optional if isinstance(optional, dict) else {},
    )  # fmt: skip
