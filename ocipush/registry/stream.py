"""Upload a blob while the builder is still writing it: parts go out as they fill, the digest closes the session
once the writer knows it. Opportunistic: on any failure it gives up quietly, and the regular push that follows
uploads the finished blob from the store, with its retries and resume."""

from __future__ import annotations

import functools

from ocipush.registry.client import RegistryClient
from ocipush.spool import GrowingBlob


def upload_growing(client: RegistryClient, blob: GrowingBlob, part: int) -> str | None:
    """The blob's digest once the registry has it whole, or None when streaming gave up."""
    session: str | None = None
    try:
        session, _ = client.start_upload()
        offset = 0
        while session is not None:
            size, digest = blob.wait(offset + part)
            # Parts of exactly `part` bytes while it grows (ECR wants >= 5 MiB); the rest in one last part.
            length = size - offset if digest is not None else part
            if length:
                body = functools.partial(blob.read_range, offset, length)
                session, answer = client.patch_chunk(session, offset, length, body)
                if answer.status_code not in (201, 202):
                    break
                offset += length
            if digest is not None:
                client.finish_upload(session, digest)
                return digest
    except Exception:  # any failure: the regular push that follows uploads the finished blob
        pass
    finally:
        blob.close()
    if session is not None:
        client.cancel_upload(session)
    return None
