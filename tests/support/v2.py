"""Minimal distribution-spec calls with plain httpx, so the fixtures are proven without ocipush's client."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable

import httpx


def digest_of(data: bytes) -> str:
    return f"sha256:{hashlib.sha256(data).hexdigest()}"


def with_digest(location: str, digest: str) -> str:
    return f"{location}{'&' if '?' in location else '?'}digest={digest}"


def start_upload(client: httpx.Client, base: str, repo: str) -> str:
    """POST a new upload session; returns its absolute Location."""
    resp = client.post(f"{base}/v2/{repo}/blobs/uploads/")
    assert resp.status_code == 202, resp.text
    return str(httpx.URL(base).join(resp.headers["Location"]))


def push_blob(client: httpx.Client, base: str, repo: str, data: bytes | Iterable[bytes], digest: str) -> str:
    """Monolithic POST + PUT (an iterable body goes out chunked); returns the blob's Location."""
    location = start_upload(client, base, repo)
    resp = client.put(with_digest(location, digest), content=data)
    assert resp.status_code == 201, resp.text
    return str(resp.headers["Location"])
