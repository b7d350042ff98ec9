"""Appending a download to its file past the page cache (O_DIRECT), where the file system takes it.

Why: a pull writes each blob once and hashes it from its own receive buffer; nothing reads it back soon. Through
the page cache every byte is copied once more, into pages the kernel must first find and clear, and on a VM that
returns free memory to its host (virtio-balloon free page reporting, as on the benchmark's machine) each of those
pages also costs the host a fault: writing 1 GiB in 1 MiB pieces took 2.0-2.6 s of system CPU there, against
0.45 s with O_DIRECT (the disk takes 1 GiB in ~0.6 s). Direct I/O needs the memory, the length and the file offset
aligned; the first piece that is not (a blob's last, a resumed file of odd length), or a file system that refuses
the flag or the write, sends the rest of the file through the page cache. Nothing is lost either way: an O_DIRECT
write that the kernel refuses for alignment (EINVAL) writes nothing.

A direct write returns when the disk has the bytes; a buffered one when the page cache has them, the disk taking
them later while the download goes on. So direct I/O is kept only while the disk keeps pace: once a file's direct
writes have taken more than four times the time spent receiving and hashing between them (judged after its
first 32 MiB), the rest goes through the page cache. The margin is wide because eight downloads starting together
queue on the disk at first: judged after 8 MiB at twice, pulls on the benchmark's 1.7 GB/s disk gave up O_DIRECT
in one of three runs. A network-attached volume (125 MB/s for a default EBS gp3) would otherwise bound a pull by
the disk where the page cache lets it run at the network's speed."""

from __future__ import annotations

import errno
import fcntl
import mmap
import os
import time
from collections.abc import Callable

from ocipush.fsutil import write_all
from ocipush.log import get_logger

ALIGN = 4096  # a multiple of every logical block size in use (512 and 4096 bytes)
PROBE_BYTES = 32 << 20  # direct writes timed before the disk's pace is judged
SLOWER = 4.0  # the disk is behind when direct writes take this many times the time between them
# Page-cache writes go in pieces of at most this size: on the benchmark's second machine (kernel 6.18, ext4) a
# 1 GiB pull spent 0.78 x the CPU and 0.89 x the wall time with them as with whole 1 MiB pieces (12 paired runs;
# 64 KiB and 256 KiB measured the same).
PAGE_CACHE_PIECE = 256 << 10

_log = get_logger(__name__)


def aligned_buffer(size: int) -> mmap.mmap:
    """`size` bytes of anonymous memory that start on a page boundary, as direct I/O needs them."""
    return mmap.mmap(-1, size)


def _set_direct(fd: int, on: bool) -> bool:
    """Turn O_DIRECT on or off; False when refused (a file system without direct I/O says EINVAL)."""
    flags = fcntl.fcntl(fd, fcntl.F_GETFL)
    try:
        fcntl.fcntl(fd, fcntl.F_SETFL, flags | os.O_DIRECT if on else flags & ~os.O_DIRECT)
    except OSError:
        return False
    return True


class Appender:
    """Appends to `fd` (opened with O_APPEND, holding `size` bytes): with O_DIRECT while every piece keeps the
    file's length aligned and the disk keeps pace, through the page cache from the first piece that does not."""

    def __init__(self, fd: int, size: int, clock: Callable[[], float] = time.monotonic) -> None:
        self.fd = fd
        self.direct = size % ALIGN == 0 and _set_direct(fd, True)
        self._clock = clock
        self._writing = 0.0  # seconds inside direct writes
        self._between = 0.0  # seconds between them: receiving and hashing the next piece
        self._timed = 0  # bytes written directly
        self._last_end: float | None = None

    def append(self, data: bytes | memoryview) -> None:
        if not self.direct:
            self._write(data)
            return
        start = self._clock()
        if self._last_end is not None:
            self._between += start - self._last_end
        self._write(data)
        self._last_end = end = self._clock()
        self._writing += end - start
        self._timed += len(data)
        if self.direct and self._timed >= PROBE_BYTES and self._writing > SLOWER * self._between:
            _log.debug("the disk is slower than the download: the rest of it goes through the page cache")
            self._buffered()

    def _write(self, data: bytes | memoryview) -> None:
        view = memoryview(data)
        while view and self.direct:
            if len(view) % ALIGN:
                self._buffered()
                break
            try:
                view = view[os.write(self.fd, view) :]
            except OSError as exc:
                if exc.errno != errno.EINVAL:
                    raise
                self._buffered()  # memory not aligned, or a file system that took the flag but not this write
        for start in range(0, len(view), PAGE_CACHE_PIECE):
            write_all(self.fd, view[start : start + PAGE_CACHE_PIECE])

    def _buffered(self) -> None:
        self.direct = False
        _set_direct(self.fd, False)
