"""How much may be read into memory from a registry or an archive, enforced while reading (a 500 MB answer is
refused after 4 MiB, never buffered first)."""

from __future__ import annotations

from collections.abc import Iterable
from urllib.parse import urlsplit

from ocipush.errors import OcipushError, RegistryError

TYPE_CHECKING = False  # as typing's, which the short commands do not import (docs/benchmarks.md, S5)
if TYPE_CHECKING:
    from ocipush.registry.wire import Response

MAX_MANIFEST_BYTES = 4 << 20  # what distribution and containerd accept
MAX_LISTING_BYTES = 16 << 20  # one page of tags or repositories
MAX_TOKEN_BYTES = 1 << 20
MAX_ERROR_BYTES = 64 << 10  # an error answer: enough for any OCI error body, the rest is not read
MAX_ARCHIVE_MANIFEST_BYTES = 1 << 20  # a docker archive's manifest.json


def read_limited(
    chunks: Iterable[bytes], limit: int, what: str, error: type[OcipushError] = RegistryError
) -> bytes:
    """All of `chunks` joined, raising `error` as soon as they pass `limit` bytes."""
    data = bytearray()
    for chunk in chunks:
        data += chunk
        if len(data) > limit:
            raise error(f"{what} is larger than {_size(limit)}: refusing to read more")
    return bytes(data)


def read_prefix(chunks: Iterable[bytes], limit: int) -> bytes:
    """At most `limit` bytes of `chunks` (the rest is never read)."""
    data = bytearray()
    for chunk in chunks:
        data += chunk
        if len(data) >= limit:
            break
    return bytes(data[:limit])


def buffered(response: Response, limit: int) -> Response:
    """The response with its body read, never more than `limit` bytes of it (MAX_ERROR_BYTES of an error)."""
    try:
        if response.status_code >= 400:
            data = read_prefix(response.iter_raw(), MAX_ERROR_BYTES)
        else:
            parts = urlsplit(response.url)
            what = f"the answer of {parts.netloc} to {response.method} {parts.path or '/'}"
            data = read_limited(response.iter_raw(), limit, what)
    finally:
        response.close()
    return response.with_content(data)


def _size(n: int) -> str:
    return f"{n >> 20} MiB" if n >= 1 << 20 else f"{n >> 10} KiB"
