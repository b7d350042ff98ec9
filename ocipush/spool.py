"""A blob that is still being written while another thread already reads it.

The builder spools each compressed layer into the local store; `build-push` uploads it as it grows. The finished
file stays in the store, so a retry or a resumed push reads it from there like any other blob."""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator

from ocipush.fsutil import pread_range


class BlobAbandoned(Exception):
    """The writer gave up: the blob will never be complete."""


class GrowingBlob:
    """Opened at once, by the writer's thread: the reader keeps the file even after it is renamed into the store."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._fd = os.open(path, os.O_RDONLY)
        self._cond = threading.Condition()
        self._size = 0
        self._digest: str | None = None
        self._abandoned = False

    def grew(self, size: int) -> None:
        """`size` bytes are now on disk (flushed)."""
        with self._cond:
            self._size = size
            self._cond.notify_all()

    def finish(self, digest: str) -> None:
        with self._cond:
            self._digest = digest
            self._cond.notify_all()

    def abandon(self) -> None:
        with self._cond:
            self._abandoned = True
            self._cond.notify_all()

    def wait(self, at_least: int) -> tuple[int, str | None]:
        """Block until `at_least` bytes are on disk or the blob is finished; (bytes on disk, digest if finished)."""
        with self._cond:
            self._cond.wait_for(lambda: self._abandoned or self._digest is not None or self._size >= at_least)
            if self._abandoned:
                raise BlobAbandoned(self.path)
            return self._size, self._digest

    def read_range(self, offset: int, length: int) -> Iterator[bytes]:
        """Bytes [offset, offset + length) of what is on disk (wait() for them first)."""
        try:
            yield from pread_range(self._fd, offset, length)
        except EOFError:
            raise BlobAbandoned(f"{self.path} is shorter than announced") from None

    def close(self) -> None:
        os.close(self._fd)
