"""Turn a registry's error answer (status + OCI error JSON) into one ocipush exception with a useful message."""

from __future__ import annotations

import json

from ocipush.errors import AuthError, NotFoundError, OcipushError, RegistryError
from ocipush.registry.wire import WireError

TYPE_CHECKING = False  # as typing's, which the short commands do not import (docs/benchmarks.md, S5)
if TYPE_CHECKING:
    from ocipush.registry.wire import Response

_NOT_FOUND_CODES = {"NAME_UNKNOWN", "MANIFEST_UNKNOWN", "BLOB_UNKNOWN", "BLOB_UPLOAD_UNKNOWN"}
_AUTH_CODES = {"UNAUTHORIZED", "DENIED"}


def error_codes(response: Response) -> list[tuple[str, str]]:
    """(code, message) pairs of an OCI error body; empty when the body is not one."""
    try:
        data = json.loads(response.content or b"{}")
    except (ValueError, WireError):
        return []
    errors = data.get("errors") if isinstance(data, dict) else None
    if not isinstance(errors, list):
        return []
    return [(str(e.get("code", "")), str(e.get("message", ""))) for e in errors if isinstance(e, dict)]


def registry_error(response: Response, what: str, reference: str | None = None) -> OcipushError:
    """The exception for a failed `what` (e.g. "push manifest to host/repo:tag") on `reference`, carrying the
    status, the registry's error code and the reference, so that callers can tell a missing repository
    (NAME_UNKNOWN) from a missing tag (MANIFEST_UNKNOWN) without reading the message."""
    status = response.status_code
    codes = error_codes(response)
    code, message = codes[0] if codes else ("", "")
    detail = f"{code}: {message}" if code else f"HTTP {status}"
    if not code and response.content and len(response.content) < 200:
        text = response.content.decode(errors="replace").strip().splitlines()
        if text:
            detail = f"HTTP {status}: {text[0]}"
    if code in _NOT_FOUND_CODES or (status == 404 and not code):
        return NotFoundError(f"{what}: not found ({detail})", status, code or None, reference)
    if code in _AUTH_CODES or status in (401, 403):
        return AuthError(f"{what}: access denied ({detail})", status=status, code=code or None, reference=reference)
    return RegistryError(f"{what}: {detail}", status, code or None, reference)
