"""Appending a download to its file: through the page cache, or past it (O_DIRECT) where that is measured to be
faster.

Through the page cache every byte is copied once more, into pages the kernel must first find and clear, and on a
VM that returns free memory to its host (virtio-balloon free page reporting) those pages can also cost the host a
fault; past it, the download waits for the disk. Which is faster depends on the machine and on the state of its
memory, and neither won on both of the benchmark's machines:
- on the first (a 1.7 GB/s disk), writing 1 GiB through the page cache in 1 MiB pieces took 2.0-2.6 s of system
  CPU, against 0.45 s with O_DIRECT; a 1 GiB pull took 0.84 s direct, 1.40 s through the page cache;
- on the second (direct writes at ~650 MB/s), a 1 GiB pull took 0.99 s through the page cache against 1.47 s when
  each blob's first 32 MiB went direct (6 paired runs), and the page cache's cost for the same writes varied
  fivefold between runs.
So each file measures both: its first 8 MiB go through the page cache, its next 8 MiB past it, and the rest goes
the way whose pieces came faster (the time inside the writes and between them: receiving and hashing the next
piece). Both probes run while the pull's other downloads do the same, so each sees the machine as loaded as the
rest will. Direct writes go on only while their time per byte stays within twice the page cache's: a disk that
falls behind later (a volume out of burst credit) sends the rest through the page cache for good.

The downloads of a process take turns at the direct probe, and one that finds the page cache faster spares the
others theirs for a while: on a slow volume (125 MB/s, a gp3 volume's baseline) eight blobs each probing, four at
once, took a 1 GiB pull from 1.7 s (page cache only) to 2.5 s. A blob whose turn has not come writes through the
page cache meanwhile.

Direct I/O needs the memory, the length and the file offset aligned; the first piece that is not (a blob's last, a
resumed file of odd length), or a file system that refuses the flag or the write, sends the rest through the page
cache. Nothing is lost either way: an O_DIRECT write that the kernel refuses for alignment (EINVAL) writes
nothing."""

from __future__ import annotations

import errno
import fcntl
import mmap
import os
import threading
import time
from collections.abc import Callable

from ocipush.fsutil import write_all
from ocipush.log import get_logger

ALIGN = 4096  # a multiple of every logical block size in use (512 and 4096 bytes)
PROBE_BYTES = 8 << 20  # bytes timed in each way before the faster is chosen
VERDICT_SECONDS = 300.0  # how long "the page cache won" spares other downloads their direct probe
SLOWER = 2.0  # direct writes stop once their time per byte exceeds the page cache's this many times
# Page-cache writes go in pieces of at most this size: on the second machine a 1 GiB pull spent 0.78 x the CPU and
# 0.89 x the wall time with them as with whole 1 MiB pieces (12 paired runs; 64 KiB and 256 KiB measured the same,
# 16 KiB pieces took twice as long inside the writes).
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


class DirectProbes:
    """Shared by a process's downloads: one direct probe at a time, and when the last one found the page cache
    faster (less than VERDICT_SECONDS ago), none."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._turn = threading.Lock()
        self._clock = clock
        self._page_cache_won_at: float | None = None

    def worth_trying(self) -> bool:
        won = self._page_cache_won_at
        return won is None or self._clock() - won >= VERDICT_SECONDS

    def take_turn(self) -> bool:
        """The turn to probe, when no other file holds it (ask `worth_trying` first)."""
        return self._turn.acquire(blocking=False)

    def end_turn(self, page_cache_won: bool) -> None:
        if page_cache_won:
            self._page_cache_won_at = self._clock()
        self._turn.release()


PROBES = DirectProbes()


class Appender:
    """Appends to `fd` (opened with O_APPEND, holding `size` bytes): through the page cache, then with O_DIRECT for
    a probe when `probes` gives this file its turn, then the faster way; direct only while every piece keeps the
    file's length aligned. `close` ends a probe cut short."""

    def __init__(
        self, fd: int, size: int, clock: Callable[[], float] = time.monotonic, probes: DirectProbes | None = None
    ) -> None:
        self.fd = fd
        self.direct = False
        self._length = size  # the file's length while undecided, for the alignment direct writes need
        self._settled = False  # no more timing: the way stays as it is
        self._clock = clock
        self._probes = probes or PROBES
        self._has_turn = False
        self._page_cache_cost: float | None = None  # seconds per byte through the page cache, once probed
        self._chose_direct = False  # the direct probe came out the faster
        self._seconds = 0.0  # inside the current way's writes and between them
        self._timed = 0  # bytes written the current way
        self._last_end: float | None = None

    def append(self, data: bytes | memoryview) -> None:
        if self._settled:
            self._write(data)
            return
        start = self._clock()
        if self._last_end is not None:
            self._seconds += start - self._last_end
        self._write(data)
        self._last_end = self._clock()
        self._seconds += self._last_end - start
        self._timed += len(data)
        self._length += len(data)  # _write wrote it all, one way or the other
        if self._settled:
            return
        if self._page_cache_cost is None:
            if self._timed >= PROBE_BYTES:  # the page cache's probe is over
                self._page_cache_cost = self._seconds / self._timed
                self._start_direct_probe()
        elif not self.direct:
            self._start_direct_probe()  # another file's probe was running: try again
        elif self._timed >= PROBE_BYTES:
            self._judge(self._seconds / self._timed)

    def close(self) -> None:
        """Ends a probe cut short (a failed download) and leaves `fd` without O_DIRECT."""
        if self.direct or self._has_turn:
            self._buffered()

    def _start_direct_probe(self) -> None:
        if self._length % ALIGN or not self._probes.worth_trying():
            self._settled = True
        elif self._probes.take_turn():
            self._has_turn = True
            if not _set_direct(self.fd, True):
                self._end_turn(page_cache_won=False)
                self._settled = True
                return
            self.direct = True
            self._seconds, self._timed, self._last_end = 0.0, 0, None

    def _judge(self, cost: float) -> None:
        """Called after each direct piece once PROBE_BYTES went direct; `cost` is their seconds per byte."""
        assert self._page_cache_cost is not None
        if cost > (SLOWER if self._chose_direct else 1.0) * self._page_cache_cost:
            _log.debug("direct writes are slower than the page cache: the rest goes through the page cache")
            if self._has_turn:
                self._end_turn(page_cache_won=True)
            self._buffered()
        elif not self._chose_direct:
            self._chose_direct = True
            self._end_turn(page_cache_won=False)

    def _end_turn(self, page_cache_won: bool) -> None:
        self._has_turn = False
        self._probes.end_turn(page_cache_won)

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
        """Through the page cache for the rest of the file."""
        if self._has_turn:
            self._end_turn(page_cache_won=False)  # cut short (a short piece, a refusal): no verdict
        self.direct = False
        self._settled = True
        _set_direct(self.fd, False)
