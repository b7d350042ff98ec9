"""One pass over a layer's tar bytes: diff_id hash, compression, compressed hash and size, written to the store.

The producer (the tar writer) hands over fixed-size chunks. Two threads consume them: one hashes the
uncompressed bytes (the diff_id), the other compresses, hashes the compressed bytes and writes them to a temporary
file in the layout. hashlib, isal and zstandard release the GIL, so on two cores the tar writer, the diff_id hash
and the compressor run side by side. The blob is renamed into place only when everything succeeded."""

from __future__ import annotations

import contextlib
import hashlib
import os
import queue
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal, Protocol

from ocipush.fsutil import new_file_in
from ocipush.layout import OCILayout
from ocipush.spool import GrowingBlob

# Told about each blob as it starts, e.g. to upload it while it is still being written.
BlobWatcher = Callable[[GrowingBlob], None]

Compression = Literal["gzip", "zstd", "none"]
DEFAULT_LEVELS: dict[str, int] = {"gzip": 1, "zstd": 1, "none": 0}
# Chunks in flight per consumer: enough to ride out jitter, small enough for a 128 MB Lambda.
_QUEUE_DEPTH = 8


class _Compressor(Protocol):
    def compress(self, data: bytes | bytearray | memoryview) -> bytes: ...

    def flush(self) -> bytes: ...


def new_compressor(compression: Compression, level: int | None) -> _Compressor | None:
    """A deterministic streaming compressor (gzip header with mtime 0 and no file name), None for 'none'."""
    level = DEFAULT_LEVELS[compression] if level is None else level
    if compression == "gzip":
        from isal import isal_zlib

        return isal_zlib.compressobj(level, isal_zlib.DEFLATED, 31)
    if compression == "zstd":
        import zstandard

        # Single-threaded zstd: its frames differ from multi-threaded ones, and digests must not depend on cores.
        return zstandard.ZstdCompressor(level=level).compressobj()
    return None


class _Stage:
    """A consumer thread applying `work` to each chunk, in order. An error stops the work and is re-raised."""

    def __init__(self, work: Callable[[bytes | bytearray], None], name: str) -> None:
        self._work = work
        self._queue: queue.Queue[bytes | bytearray | None] = queue.Queue(_QUEUE_DEPTH)
        self.error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while (chunk := self._queue.get()) is not None:
            if self.error is None:
                try:
                    self._work(chunk)
                except BaseException as exc:
                    self.error = exc

    def put(self, chunk: bytes | bytearray) -> None:
        if self.error is not None:
            raise self.error
        self._queue.put(chunk)

    def finish(self) -> None:
        self._queue.put(None)
        self._thread.join()
        if self.error is not None:
            raise self.error


@dataclass(frozen=True)
class BlobResult:
    """A layer blob written to the store: its compressed digest and size, and its diff ID and size."""

    diff_id: str
    digest: str
    size: int
    uncompressed_size: int


class DiffIdHasher:
    """Computes only the diff_id (the sha256 of the uncompressed tar), hashing in a second thread."""

    def __init__(self) -> None:
        self._hash = hashlib.sha256()
        self.size = 0
        self._stage = _Stage(self._hash.update, "diff-id")

    def write(self, chunk: bytes | bytearray) -> None:
        self.size += len(chunk)
        self._stage.put(chunk)

    def finish(self) -> str:
        self._stage.finish()
        return "sha256:" + self._hash.hexdigest()

    def abort(self) -> None:
        with contextlib.suppress(BaseException):
            self._stage.finish()


class BlobPipeline:
    """Receives tar chunks (`write`), and on `finish` returns the diff_id and the stored blob's digest and size.

    Use as a context manager: leaving the block with an exception removes the temporary file."""

    def __init__(
        self, store: OCILayout, compression: Compression, level: int | None = None, watch: BlobWatcher | None = None
    ) -> None:
        self._store = store
        self._compressor = new_compressor(compression, level)
        blobs = os.path.join(store.path, "blobs", "sha256")
        os.makedirs(blobs, exist_ok=True)
        fd, self._tmp = new_file_in(blobs, ".build-")
        self._file = os.fdopen(fd, "wb")
        self._diff = DiffIdHasher()
        self._blob_hash = hashlib.sha256()
        self._blob_size = 0
        self._growing: GrowingBlob | None = None
        if watch is not None:
            self._growing = GrowingBlob(self._tmp)
            watch(self._growing)
        self._stage = _Stage(self._store_chunk, "compress")

    def _store_chunk(self, chunk: bytes | bytearray) -> None:
        data = self._compressor.compress(chunk) if self._compressor else chunk
        self._emit(data)

    def _emit(self, data: bytes | bytearray) -> None:
        if data:
            self._blob_hash.update(data)
            self._blob_size += len(data)
            self._file.write(data)
            if self._growing is not None:
                self._file.flush()  # a reader of the growing blob sees only what is on disk
                self._growing.grew(self._blob_size)

    def write(self, chunk: bytes | bytearray) -> None:
        self._diff.write(chunk)
        self._stage.put(chunk)

    def finish(self) -> BlobResult:
        self._stage.finish()
        diff_id = self._diff.finish()
        if self._compressor:
            self._emit(self._compressor.flush())
        self._file.close()  # not fsynced: a blob cut short by a power cut is a wrong size (see ocipush.layout)
        digest = "sha256:" + self._blob_hash.hexdigest()
        os.chmod(self._tmp, 0o644)
        os.replace(self._tmp, self._store.blob_path(digest))
        if self._growing is not None:
            self._growing.finish(digest)
        return BlobResult(diff_id, digest, self._blob_size, self._diff.size)

    def __enter__(self) -> BlobPipeline:
        return self

    def __exit__(self, exc_type: object, *_: object) -> None:
        if exc_type is not None:
            if self._growing is not None:
                self._growing.abandon()
            self._diff.abort()
            with contextlib.suppress(BaseException):
                self._stage.finish()
            self._file.close()
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self._tmp)
