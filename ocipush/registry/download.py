"""Blob download into an OCI layout: resumed with Range from a partial file, hashed as it is written, verified
by size and digest before it becomes visible."""

from __future__ import annotations

import contextlib
import functools
import os
import threading
from typing import TYPE_CHECKING

from ocipush.digest import new_hasher
from ocipush.directio import Appender, aligned_buffer
from ocipush.errors import DigestMismatchError, LayoutError, TransferStopped, TransportError
from ocipush.fsutil import locked_file, open_regular
from ocipush.layout import OCILayout
from ocipush.log import get_logger
from ocipush.progress import ProgressCallback, ProgressEvent, ignore_progress
from ocipush.registry.client import RegistryClient, range_start
from ocipush.registry.wire import WireError

if TYPE_CHECKING:
    from ocipush.models import Descriptor

READ_SIZE = 1 << 20
PROGRESS_STEP = 8 << 20

_log = get_logger(__name__)


def _announce_retry(progress: ProgressCallback, digest: str, size: int, done: int, message: str) -> None:
    progress(ProgressEvent("retry", digest, size, done, message))


class _Partial:
    """The partial file of one download and the running hash of what it holds. Created with O_EXCL, reopened
    with O_NOFOLLOW: a symlink or FIFO planted in `.ingest` is refused, never written through."""

    def __init__(self, path: str, digest: str) -> None:
        self.path = path
        self.algorithm = digest.split(":", 1)[0]
        self.hasher = new_hasher(digest)
        self.size = 0
        # One receive buffer for the whole download: each piece is written and hashed before the next is read.
        # Page-aligned, so that whole pieces can go to the file with O_DIRECT (directio.py).
        self.buffer = memoryview(aligned_buffer(READ_SIZE))
        flags = os.O_RDWR | os.O_APPEND
        try:
            self.fd = open_regular(path, flags | os.O_CREAT | os.O_EXCL, follow=False)
        except FileExistsError:
            self.fd = open_regular(path, flags, follow=False)
            # A download resumed from an earlier attempt or run: hash what is already there, once.
            while got := os.readv(self.fd, [self.buffer]):
                self.hasher.update(self.buffer[:got])
                self.size += got
        self.appender = Appender(self.fd, self.size)

    def restart(self) -> None:
        self.hasher = new_hasher(f"{self.algorithm}:")
        if self.size:
            # Only a file with bytes in it: ext4 takes a truncation to 0 as "about to be rewritten" and starts
            # writing the whole file back in close() (auto_da_alloc), 40-80 ms of a 128 MiB layer's pull.
            os.ftruncate(self.fd, 0)
        self.size = 0
        self.appender.close()
        self.appender = Appender(self.fd, 0)

    def append(self, data: bytes | memoryview) -> None:
        self.appender.append(data)
        self.hasher.update(data)
        self.size += len(data)

    def close(self) -> None:
        self.appender.close()
        os.close(self.fd)

    @property
    def digest(self) -> str:
        return f"{self.algorithm}:{self.hasher.hexdigest()}"


def download_blob(
    client: RegistryClient,
    descriptor: Descriptor,
    layout: OCILayout,
    progress: ProgressCallback = ignore_progress,
    stop: threading.Event | None = None,
) -> bool:
    """Fetch a blob into `layout` unless it is there. Returns True when bytes were downloaded. Setting `stop`
    ends the download between two pieces (the partial file stays for a later resume)."""
    if layout.has_blob(descriptor.digest, descriptor.size):
        progress(ProgressEvent("skip", descriptor.digest, descriptor.size, descriptor.size, "exists"))
        return False
    # Two pulls into one layout must not append to the same partial file: one downloads, the other waits and
    # then finds the blob there.
    lock_path = layout.ingest_path(descriptor.digest) + ".lock"
    with locked_file(lock_path):
        try:
            if layout.has_blob(descriptor.digest, descriptor.size):
                progress(ProgressEvent("skip", descriptor.digest, descriptor.size, descriptor.size, "exists"))
                return False
            _download(client, descriptor, layout, progress, stop or threading.Event())
            return True
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(lock_path)


def _download(
    client: RegistryClient, descriptor: Descriptor, layout: OCILayout, progress: ProgressCallback, stop: threading.Event
) -> None:
    digest, size = descriptor.digest, descriptor.size
    partial = _Partial(layout.ingest_path(digest), digest)
    try:
        _fill(client, descriptor, partial, progress, stop)
    finally:
        partial.close()
    try:
        layout.commit_ingest(digest, size, partial.digest, partial.size)
    except (DigestMismatchError, LayoutError) as exc:
        raise DigestMismatchError(f"{exc} (from {client.name}); the partial download was removed") from None
    progress(ProgressEvent("done", digest, size, size))


def _fill(
    client: RegistryClient, descriptor: Descriptor, partial: _Partial, progress: ProgressCallback, stop: threading.Event
) -> None:
    """Fetch into the partial file until it holds `descriptor.size` bytes, retrying and resuming with Range."""
    digest, size = descriptor.digest, descriptor.size
    if partial.size > size:
        partial.restart()
    budget = client.transport.budget()
    progress(ProgressEvent("start", digest, size, 0))
    while partial.size < size:
        if partial.size:
            _log.info("resuming the download of %s from %s at byte %d", digest[:19], client.name, partial.size)
            progress(ProgressEvent("resume", digest, size, partial.size))
        before = partial.size
        try:
            _fetch_into(client, descriptor, partial, progress, stop)
        except (TransportError, WireError) as exc:
            if partial.size > before:
                budget = client.transport.budget()  # the retry limits count from the last progress
            announce = functools.partial(_announce_retry, progress, digest, size, partial.size)
            if not budget.sleep(why=str(exc) or exc.__class__.__name__, announce=announce):
                raise TransportError(f"download of {digest[:19]} from {client.name} failed: {exc}") from None


def _fetch_into(
    client: RegistryClient, descriptor: Descriptor, partial: _Partial, progress: ProgressCallback, stop: threading.Event
) -> None:
    asked = partial.size
    with client.open_blob(descriptor.digest, start=asked) as response:
        if response.status_code == 206 and range_start(response) != asked:
            partial.restart()  # an answer for another range: start over from byte 0 on the retry
            raise TransportError(f"asked for bytes from {asked}, the server answered another range")
        if response.status_code != 206:
            partial.restart()  # the server ignored Range and sends the whole blob
        last_report = partial.size
        for data in client.blob_views(response, partial.buffer):
            if stop.is_set():
                raise TransferStopped
            partial.append(data)
            if partial.size > descriptor.size:
                return  # too long: the digest check after it fails and removes the file
            if partial.size - last_report >= PROGRESS_STEP:
                progress(ProgressEvent("progress", descriptor.digest, descriptor.size, partial.size))
                last_report = partial.size
    if partial.size < descriptor.size:
        raise TransportError(f"connection closed after {partial.size} of {descriptor.size} bytes")
