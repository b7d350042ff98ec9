"""Blob download into an OCI layout: resumed with Range from a partial file, verified by size and digest."""

from __future__ import annotations

import os

import httpx

from ocipush.errors import DigestMismatchError, LayoutError, TransportError
from ocipush.layout import OCILayout
from ocipush.models import Descriptor
from ocipush.progress import ProgressCallback, ProgressEvent, ignore_progress
from ocipush.registry.client import RegistryClient

READ_SIZE = 1 << 20
PROGRESS_STEP = 8 << 20


def download_blob(
    client: RegistryClient,
    descriptor: Descriptor,
    layout: OCILayout,
    progress: ProgressCallback = ignore_progress,
) -> bool:
    """Fetch a blob into `layout` unless it is there. Returns True when bytes were downloaded."""
    digest, size = descriptor.digest, descriptor.size
    if layout.has_blob(digest, size):
        progress(ProgressEvent("skip", digest, size, size, "exists"))
        return False
    partial = layout.ingest_path(digest)
    budget = client.transport.budget()
    progress(ProgressEvent("start", digest, size, 0))
    while True:
        have = os.path.getsize(partial) if os.path.exists(partial) else 0
        if have > size:
            os.unlink(partial)
            have = 0
        if have:
            progress(ProgressEvent("resume", digest, size, have))
        try:
            if have < size:
                _fetch_into(client, descriptor, partial, have, progress)
            break
        except (TransportError, httpx.HTTPError) as exc:
            if not budget.sleep():
                raise TransportError(f"download of {digest[:19]} from {client.name} failed: {exc}") from None
            progress(ProgressEvent("retry", digest, size, have, str(exc) or exc.__class__.__name__))
    try:
        layout.commit_ingest(digest, size)
    except (DigestMismatchError, LayoutError) as exc:
        raise DigestMismatchError(f"{exc} (from {client.name}); the partial download was removed") from None
    progress(ProgressEvent("done", digest, size, size))
    return True


def _fetch_into(
    client: RegistryClient, descriptor: Descriptor, partial: str, have: int, progress: ProgressCallback
) -> None:
    with client.open_blob(descriptor.digest, start=have) as response:
        mode = "ab" if response.status_code == 206 else "wb"  # a 200 means the server ignored Range
        written = have if mode == "ab" else 0
        last_report = written
        with open(partial, mode) as out:
            for data in response.iter_bytes(READ_SIZE):
                out.write(data)
                written += len(data)
                if written > descriptor.size:
                    break
                if written - last_report >= PROGRESS_STEP:
                    progress(ProgressEvent("progress", descriptor.digest, descriptor.size, written))
                    last_report = written
    if written < descriptor.size:
        raise TransportError(f"connection closed after {written} of {descriptor.size} bytes")
