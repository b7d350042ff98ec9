"""Appending a download to its file: through the page cache, or past it (O_DIRECT) where the page cache proves the
costlier and the disk keeps pace.

Through the page cache every byte is copied once more, into pages the kernel must first find and clear, and on a
VM that returns free memory to its host (virtio-balloon free page reporting) those pages can also cost the host a
fault. How much differs by machine, and neither way wins on both of the benchmark's:
- on the first (1.7 GB/s disk), writing 1 GiB through the page cache in 1 MiB pieces took 2.0-2.6 s of system
  CPU, against 0.45 s with O_DIRECT, and a 1 GiB pull took 0.84 s direct;
- on the second (direct writes at ~650 MB/s, kernel 6.18), page-cache writes in 256 KiB pieces took 0.3-0.4 s of
  CPU per GiB, under half of what hashing the bytes takes, and a 1 GiB pull took 1.02 s through the page cache
  against 1.47 s with direct writes for its first 32 MiB per blob (6 paired runs).
So each file starts in the page cache, and once its first 8 MiB are written the thread's CPU time inside those
writes is compared with its CPU time between them (receiving and hashing the next piece): where the writes cost
more, the rest goes with O_DIRECT. Direct I/O needs the memory, the length and the file offset aligned; the first
piece that is not (a blob's last, a resumed file of odd length), or a file system that refuses the flag or the
write, sends the rest through the page cache. Nothing is lost either way: an O_DIRECT write that the kernel refuses
for alignment (EINVAL) writes nothing.

A direct write returns when the disk has the bytes; a buffered one when the page cache has them, the disk taking
them later while the download goes on. So direct I/O is kept only while the disk keeps pace: once a file's direct
writes have taken more than four times the wall time between them (judged after 32 MiB of them), the rest goes
through the page cache for good. The margin is wide because eight downloads starting together queue on the disk
at first: judged after 8 MiB at twice, pulls on the first machine's disk gave up O_DIRECT in one of three runs. A
network-attached volume (125 MB/s for a default EBS gp3) would otherwise bound a pull by the disk where the page
cache lets it run at the network's speed."""

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
PAGE_CACHE_PROBE = 8 << 20  # page-cache writes timed before their cost is judged
COSTLIER = 1.0  # the page cache is the costlier when its writes take this many times the CPU time between them
DIRECT_PROBE = 32 << 20  # direct writes timed before the disk's pace is judged
SLOWER = 4.0  # the disk is behind when direct writes take this many times the time between them
# Page-cache writes go in pieces of at most this size: on the second machine a 1 GiB pull spent 0.78 x the CPU and
# 0.89 x the wall time with them as with whole 1 MiB pieces (12 paired runs; 64 KiB and 256 KiB measured the same).
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
    """Appends to `fd` (opened with O_APPEND, holding `size` bytes): through the page cache until that proves the
    costlier, then with O_DIRECT while every piece keeps the file's length aligned and the disk keeps pace.
    `clock` times direct writes (wall time: the disk's), `cpu_clock` page-cache ones (this thread's CPU time)."""

    def __init__(
        self, fd: int, size: int, clock: Callable[[], float] = time.monotonic,
        cpu_clock: Callable[[], float] = time.thread_time,
    ) -> None:  # fmt: skip
        self.fd = fd
        self.direct = False
        self._length = size
        self._settled = False  # no more judging: the mode stays as it is
        self._clock = cpu_clock  # the current mode's
        self._wall_clock = clock
        self._writing = 0.0  # seconds inside writes of the current mode
        self._between = 0.0  # seconds between them: receiving and hashing the next piece
        self._timed = 0  # bytes written in the current mode
        self._last_end: float | None = None

    def append(self, data: bytes | memoryview) -> None:
        if self._settled:
            self._write(data)
            return
        start = self._clock()
        if self._last_end is not None:
            self._between += start - self._last_end
        self._write(data)
        self._last_end = end = self._clock()
        self._writing += end - start
        self._timed += len(data)
        if self._settled:
            return  # the write itself fell back to the page cache
        if self.direct:
            if self._timed >= DIRECT_PROBE and self._writing > SLOWER * self._between:
                _log.debug("the disk is slower than the download: the rest of it goes through the page cache")
                self._buffered()
        elif self._timed >= PAGE_CACHE_PROBE:
            if self._writing > COSTLIER * self._between and self._length % ALIGN == 0 and _set_direct(self.fd, True):
                _log.debug("the page cache costs more than the download: the rest of it goes with O_DIRECT")
                self._go_direct()
            else:
                self._settled = True

    def _go_direct(self) -> None:
        self.direct = True
        self._clock = self._wall_clock
        self._writing = self._between = 0.0
        self._timed = 0
        self._last_end = None

    def _write(self, data: bytes | memoryview) -> None:
        view = memoryview(data)
        self._length += len(view)
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
        """Through the page cache for the rest of the file."""
        self.direct = False
        self._settled = True
        _set_direct(self.fd, False)
