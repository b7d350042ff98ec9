"""An overall deadline per request. httpx's timeouts are per read, so a server trickling one byte every few seconds
never trips them; here every read of the socket is also cut at a deadline kept per thread. The deadline counts from
the last byte sent (an upload of any length never eats into it) and is renewed after each MiB of a blob received,
so a slow but moving transfer goes on while a stalled or trickling one ends."""

from __future__ import annotations

import contextlib
import math
import threading
import time
from collections.abc import Iterable, Iterator
from typing import Any

import httpcore

MESSAGE = "no complete answer within the deadline"
RENEW_BYTES = 1 << 20


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


def paced(chunks: Iterable[bytes], seconds: float | None) -> Iterator[bytes]:
    """A blob's bytes under `deadline(seconds)`, renewed after each MiB received."""
    with deadline(seconds):
        received = 0
        for chunk in chunks:
            received += len(chunk)
            if received >= RENEW_BYTES:
                received = 0
                renew()
            yield chunk


class _Stream(httpcore.NetworkStream):
    def __init__(self, inner: httpcore.NetworkStream) -> None:
        self._inner = inner

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        left = _STATE.at - time.monotonic()
        if left <= 0:
            raise httpcore.ReadTimeout(MESSAGE)
        try:
            return self._inner.read(max_bytes, left if timeout is None else min(timeout, left))
        except httpcore.ReadTimeout:
            if _STATE.at <= time.monotonic():
                raise httpcore.ReadTimeout(MESSAGE) from None
            raise

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self._inner.write(buffer, timeout)
        renew()

    def close(self) -> None:
        self._inner.close()

    def start_tls(self, *args: Any, **kwargs: Any) -> httpcore.NetworkStream:
        return _Stream(self._inner.start_tls(*args, **kwargs))

    def get_extra_info(self, info: str) -> Any:
        return self._inner.get_extra_info(info)


class _Backend(httpcore.SyncBackend):
    def connect_tcp(self, *args: Any, **kwargs: Any) -> httpcore.NetworkStream:
        return _Stream(super().connect_tcp(*args, **kwargs))


def install(transport: Any) -> None:
    """Make an httpx.HTTPTransport's connections honour the deadline. httpx has no setting for the network
    backend; `_pool._network_backend` is the attribute httpcore's pool reads when it opens a connection."""
    transport._pool._network_backend = _Backend()
