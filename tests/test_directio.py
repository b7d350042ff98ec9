"""Downloads written past the page cache (ocipush.directio): whole aligned pieces go with O_DIRECT, anything else
through the page cache, and the file always holds exactly what was appended. Residency in the page cache is read
with util-linux's fincore."""

from __future__ import annotations

import errno
import fcntl
import hashlib
import os
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from transferhelpers import make_image, options

from ocipush import api
from ocipush.directio import ALIGN, PAGE_CACHE_PIECE, PROBE_BYTES, Appender, aligned_buffer
from ocipush.layout import OCILayout
from ocipush.localregistry import LocalRegistry

KiB = 1 << 10


def _resident_bytes(path: Path) -> int:
    out = subprocess.run(["fincore", "--bytes", "--noheadings", "-o", "RES", str(path)], check=True,
                         capture_output=True, text=True).stdout  # fmt: skip
    return int(out.strip())


def _direct(fd: int) -> bool:
    return bool(fcntl.fcntl(fd, fcntl.F_GETFL) & os.O_DIRECT)


def _new_file(path: Path) -> int:
    return os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_EXCL, 0o600)


def test_whole_aligned_pieces_go_past_the_page_cache_and_the_short_last_one_through_it(tmp_path: Path) -> None:
    data = os.urandom(128 * KiB + 1000)
    buffer = memoryview(aligned_buffer(64 * KiB))
    fd = _new_file(tmp_path / "blob")
    try:
        appender = Appender(fd, 0)
        assert appender.direct and _direct(fd)
        for start in range(0, 128 * KiB, 64 * KiB):
            buffer[: 64 * KiB] = data[start : start + 64 * KiB]
            appender.append(buffer[: 64 * KiB])
            assert appender.direct and _direct(fd)
        assert _resident_bytes(tmp_path / "blob") == 0  # nothing of it in the page cache
        buffer[:1000] = data[128 * KiB :]
        appender.append(buffer[:1000])
        assert not appender.direct and not _direct(fd)
    finally:
        os.close(fd)
    assert (tmp_path / "blob").read_bytes() == data


def test_a_piece_in_unaligned_memory_is_refused_by_the_kernel_and_written_through_the_page_cache(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    refused: list[int] = []
    real: Callable[[int, Any], int] = os.write

    def recording(fd: int, data: Any) -> int:
        try:
            return real(fd, data)
        except OSError as exc:
            refused.append(exc.errno or 0)
            raise

    monkeypatch.setattr(os, "write", recording)
    data = os.urandom(2 * ALIGN)
    odd = memoryview(aligned_buffer(4 * ALIGN))[1 : 1 + 2 * ALIGN]  # an aligned length at an odd address
    odd[:] = data
    fd = _new_file(tmp_path / "blob")
    try:
        appender = Appender(fd, 0)
        appender.append(odd)
        assert refused == [errno.EINVAL] and not appender.direct
    finally:
        os.close(fd)
    assert (tmp_path / "blob").read_bytes() == data


def test_a_resumed_file_of_odd_length_appends_through_the_page_cache(tmp_path: Path) -> None:
    (tmp_path / "blob").write_bytes(b"12345")
    fd = os.open(tmp_path / "blob", os.O_WRONLY | os.O_APPEND)
    try:
        appender = Appender(fd, 5)
        buffer = memoryview(aligned_buffer(ALIGN))
        buffer[:] = b"x" * ALIGN
        appender.append(buffer)
        assert not appender.direct and not _direct(fd)
    finally:
        os.close(fd)
    assert (tmp_path / "blob").read_bytes() == b"12345" + b"x" * ALIGN


def test_the_page_cache_takes_a_large_piece_in_smaller_writes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    written: list[int] = []
    real: Callable[[int, Any], int] = os.write

    def recording(fd: int, data: Any) -> int:
        n = real(fd, data)
        written.append(n)
        return n

    data = os.urandom(4 * PAGE_CACHE_PIECE + 1000)
    (tmp_path / "blob").write_bytes(b"12345")
    fd = os.open(tmp_path / "blob", os.O_WRONLY | os.O_APPEND)
    try:
        appender = Appender(fd, 5)  # odd length: the page cache from the start
        monkeypatch.setattr(os, "write", recording)
        appender.append(data)
    finally:
        os.close(fd)
    assert written == [PAGE_CACHE_PIECE] * 4 + [1000]
    assert (tmp_path / "blob").read_bytes() == b"12345" + data


def test_a_file_system_without_direct_io_is_written_through_the_page_cache(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Simulated: every file system this machine can mount without a new mount namespace takes O_DIRECT, so
    F_SETFL refuses it here the way the kernel does for one that has no direct I/O (EINVAL)."""
    real = fcntl.fcntl
    asked: list[int] = []

    def refusing(fd: int, cmd: int, arg: int = 0) -> Any:
        if cmd == fcntl.F_SETFL and arg & os.O_DIRECT:
            asked.append(fd)
            raise OSError(errno.EINVAL, "Invalid argument")
        return real(fd, cmd, arg)

    monkeypatch.setattr(fcntl, "fcntl", refusing)
    fd = _new_file(tmp_path / "blob")
    try:
        appender = Appender(fd, 0)
        buffer = memoryview(aligned_buffer(ALIGN))
        buffer[:] = b"y" * ALIGN
        appender.append(buffer)
        assert asked == [fd] and not appender.direct
    finally:
        os.close(fd)
    assert (tmp_path / "blob").read_bytes() == b"y" * ALIGN


def _paced(write: float, between: float) -> Callable[[], float]:
    """A clock for Appender that has each direct write take `write` seconds and the time between two take
    `between` (it is read once before and once after each write)."""

    def times() -> Iterator[float]:
        now = 0.0
        while True:
            yield now
            now += write
            yield now
            now += between

    return times().__next__


@pytest.mark.parametrize(("write", "between", "stays_direct"), [(0.004, 0.006, True), (0.030, 0.006, False)])
def test_direct_writes_last_only_while_the_disk_keeps_pace(
    tmp_path: Path, write: float, between: float, stays_direct: bool
) -> None:
    """A disk that takes 30 ms for a piece the network brings in 6 ms (a 125 MB/s volume) loses O_DIRECT after the
    probe; one that keeps pace keeps it."""
    piece = 1 << 20
    buffer = memoryview(aligned_buffer(piece))
    data = os.urandom(2 * PROBE_BYTES)
    fd = _new_file(tmp_path / "blob")
    try:
        appender = Appender(fd, 0, clock=_paced(write, between))
        modes = []
        for start in range(0, len(data), piece):
            buffer[:] = data[start : start + piece]
            appender.append(buffer)
            modes.append(_direct(fd))
    finally:
        os.close(fd)
    probe = PROBE_BYTES // piece
    assert all(modes[: probe - 1])  # judged only once the probe is written
    assert all(modes) if stays_direct else not any(modes[probe:])
    assert (tmp_path / "blob").read_bytes() == data


def test_a_pulled_layer_is_whole_and_only_its_tail_went_through_the_page_cache(
    registry: LocalRegistry, tmp_path: Path
) -> None:
    size = (3 << 20) + 100  # three whole receive buffers and a short last piece
    source, descriptor = make_image(tmp_path / "src", big=size)
    api.push(f"oci:{source.path}:v1", f"{registry.host}/direct:v1", options=options(tmp_path))
    api.pull(f"{registry.host}/direct:v1", f"oci:{tmp_path / 'back'}:v1", options=options(tmp_path))
    layer = next(d for d in source.read_manifest(descriptor).manifest.layers if d.size >= size)
    path = Path(OCILayout(str(tmp_path / "back")).blob_path(layer.digest))
    assert _resident_bytes(path) <= ALIGN  # the short last piece (one page); the rest went past the cache
    assert hashlib.sha256(path.read_bytes()).hexdigest() == layer.digest.split(":")[1]
