"""An overall deadline per request. Socket timeouts are per read, so a server trickling one byte every few seconds
never trips them; here every read of the socket is also cut at a deadline kept per thread. The deadline counts from
the last byte sent (an upload of any length never eats into it) and is renewed after each MiB of a blob received,
so a slow but moving transfer goes on while a stalled or trickling one ends."""

from __future__ import annotations

import contextlib
import math
import threading
import time
from collections.abc import Generator, Iterable, Iterator

MESSAGE = "no complete answer within the deadline"
RENEW_BYTES = 1 << 20

TYPE_CHECKING = False  # as typing's, which the short commands do not import (docs/benchmarks.md, S5)
if TYPE_CHECKING:
    from typing import TypeVar

    _Piece = TypeVar("_Piece", bytes, memoryview)


class _State(threading.local):
    seconds: float | None = None
    at: float = math.inf


_STATE = _State()


def renew() -> None:
    """Progress was made: the other side has a whole deadline again."""
    if _STATE.seconds is not None:
        _STATE.at = time.monotonic() + _STATE.seconds


@contextlib.contextmanager
def deadline(seconds: float | None) -> Iterator[None]:
    """Reads on this thread inside the block end once `seconds` pass without progress (None: no deadline)."""
    previous = _STATE.seconds, _STATE.at
    _STATE.seconds, _STATE.at = seconds, math.inf
    renew()
    try:
        yield
    finally:
        _STATE.seconds, _STATE.at = previous


def paced(chunks: Iterable[_Piece], seconds: float | None) -> Generator[_Piece, None, None]:
    """A blob's bytes under `deadline(seconds)`, renewed after each MiB received. The deadline holds for the
    thread while the generator is suspended: close it when done reading early."""
    with deadline(seconds):
        received = 0
        for chunk in chunks:
            received += len(chunk)
            if received >= RENEW_BYTES:
                received = 0
                renew()
            yield chunk


def read_timeout(timeout: float) -> float:
    """How long the next read may wait: the per-read `timeout`, cut at the deadline (0 or less: it has passed)."""
    return min(timeout, _STATE.at - time.monotonic())


def timeout_message() -> str:
    """Why a read that waited its whole time gave up: the deadline, or the per-read timeout."""
    return MESSAGE if _STATE.at <= time.monotonic() else "timed out"
