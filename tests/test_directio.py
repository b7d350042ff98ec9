"""Downloads written through the page cache or past it (ocipush.directio): the page cache first, whole aligned pieces
with O_DIRECT once it proves the costlier and while the disk keeps pace, anything else through the page cache, and
the file always holds exactly what was appended. Costs come from injected clocks; residency in the page cache is
read with util-linux's fincore."""

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

from ocipush import api, directio
from ocipush.directio import ALIGN, DIRECT_PROBE, PAGE_CACHE_PIECE, PAGE_CACHE_PROBE, Appender, aligned_buffer
from ocipush.layout import OCILayout
from ocipush.localregistry import LocalRegistry
from ocipush.registry.download import READ_SIZE

KiB = 1 << 10
MiB = 1 << 20


def _resident_bytes(path: Path) -> int:
    out = subprocess.run(["fincore", "--bytes", "--noheadings", "-o", "RES", str(path)], check=True,
                         capture_output=True, text=True).stdout  # fmt: skip
    return int(out.strip())


def _direct(fd: int) -> bool:
    return bool(fcntl.fcntl(fd, fcntl.F_GETFL) & os.O_DIRECT)


def _new_file(path: Path) -> int:
    return os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_EXCL, 0o600)


def _paced(write: float, between: float) -> Callable[[], float]:
    """A clock for Appender that has each write take `write` seconds and the time between two take `between` (it
    is read once before and once after each write)."""

    def times() -> Iterator[float]:
        now = 0.0
        while True:
            yield now
            now += write
            yield now
            now += between

    return times().__next__


def _costly_page_cache() -> Callable[[], float]:
    """A CPU clock on which page-cache writes cost ten times what the download does between them."""
    return _paced(0.010, 0.001)


def _append_probe(appender: Appender, data: bytes) -> None:
    """Append PAGE_CACHE_PROBE bytes of `data` in whole aligned 1 MiB pieces."""
    buffer = memoryview(aligned_buffer(MiB))
    for start in range(0, PAGE_CACHE_PROBE, MiB):
        buffer[:] = data[start : start + MiB]
        appender.append(buffer)


def test_a_file_stays_in_the_page_cache_while_that_costs_less_than_the_download(tmp_path: Path) -> None:
    data = os.urandom(2 * PAGE_CACHE_PROBE)
    fd = _new_file(tmp_path / "blob")
    try:
        appender = Appender(fd, 0, cpu_clock=_paced(0.001, 0.010))
        _append_probe(appender, data)
        assert not appender.direct and not _direct(fd)
        appender.append(data[PAGE_CACHE_PROBE:])
        assert not appender.direct and not _direct(fd)
    finally:
        os.close(fd)
    assert _resident_bytes(tmp_path / "blob") == len(data)
    assert (tmp_path / "blob").read_bytes() == data


def test_whole_aligned_pieces_go_past_the_page_cache_once_it_proves_costlier_and_the_short_last_one_through_it(
    tmp_path: Path,
) -> None:
    data = os.urandom(PAGE_CACHE_PROBE + 128 * KiB + 1000)
    fd = _new_file(tmp_path / "blob")
    try:
        appender = Appender(fd, 0, cpu_clock=_costly_page_cache())
        assert not appender.direct and not _direct(fd)  # the page cache first
        _append_probe(appender, data)
        assert appender.direct and _direct(fd)
        buffer = memoryview(aligned_buffer(64 * KiB))
        for start in range(PAGE_CACHE_PROBE, PAGE_CACHE_PROBE + 128 * KiB, 64 * KiB):
            buffer[: 64 * KiB] = data[start : start + 64 * KiB]
            appender.append(buffer[: 64 * KiB])
            assert appender.direct and _direct(fd)
        assert _resident_bytes(tmp_path / "blob") == PAGE_CACHE_PROBE  # nothing more in the page cache
        buffer[:1000] = data[PAGE_CACHE_PROBE + 128 * KiB :]
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

    data = os.urandom(PAGE_CACHE_PROBE + 2 * ALIGN)
    odd = memoryview(aligned_buffer(4 * ALIGN))[1 : 1 + 2 * ALIGN]  # an aligned length at an odd address
    odd[:] = data[PAGE_CACHE_PROBE:]
    fd = _new_file(tmp_path / "blob")
    try:
        appender = Appender(fd, 0, cpu_clock=_costly_page_cache())
        _append_probe(appender, data)
        assert appender.direct
        monkeypatch.setattr(os, "write", recording)
        appender.append(odd)
        assert refused == [errno.EINVAL] and not appender.direct
    finally:
        os.close(fd)
    assert (tmp_path / "blob").read_bytes() == data


def test_a_resumed_file_of_odd_length_stays_in_the_page_cache(tmp_path: Path) -> None:
    data = os.urandom(2 * PAGE_CACHE_PROBE)
    (tmp_path / "blob").write_bytes(b"12345")
    fd = os.open(tmp_path / "blob", os.O_WRONLY | os.O_APPEND)
    try:
        appender = Appender(fd, 5, cpu_clock=_costly_page_cache())
        _append_probe(appender, data)
        appender.append(data[PAGE_CACHE_PROBE:])
        assert not appender.direct and not _direct(fd)
    finally:
        os.close(fd)
    assert (tmp_path / "blob").read_bytes() == b"12345" + data


def test_the_page_cache_takes_a_large_piece_in_smaller_writes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    written: list[int] = []
    real: Callable[[int, Any], int] = os.write

    def recording(fd: int, data: Any) -> int:
        n = real(fd, data)
        written.append(n)
        return n

    data = os.urandom(4 * PAGE_CACHE_PIECE + 1000)
    fd = _new_file(tmp_path / "blob")
    try:
        appender = Appender(fd, 0)
        monkeypatch.setattr(os, "write", recording)
        appender.append(data)
    finally:
        os.close(fd)
    assert written == [PAGE_CACHE_PIECE] * 4 + [1000]
    assert (tmp_path / "blob").read_bytes() == data


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
    data = os.urandom(2 * PAGE_CACHE_PROBE)
    fd = _new_file(tmp_path / "blob")
    try:
        appender = Appender(fd, 0, cpu_clock=_costly_page_cache())
        _append_probe(appender, data)
        appender.append(data[PAGE_CACHE_PROBE:])
        assert asked == [fd] and not appender.direct
    finally:
        os.close(fd)
    assert (tmp_path / "blob").read_bytes() == data


@pytest.mark.parametrize(("write", "between", "stays_direct"), [(0.004, 0.006, True), (0.030, 0.006, False)])
def test_direct_writes_last_only_while_the_disk_keeps_pace(
    tmp_path: Path, write: float, between: float, stays_direct: bool
) -> None:
    """Once the page cache has proved costlier: a disk that takes 30 ms for a piece the network brings in 6 ms (a
    125 MB/s volume) loses O_DIRECT after the probe; one that keeps pace keeps it."""
    piece = 1 << 20
    buffer = memoryview(aligned_buffer(piece))
    data = os.urandom(PAGE_CACHE_PROBE + 2 * DIRECT_PROBE)
    fd = _new_file(tmp_path / "blob")
    try:
        appender = Appender(fd, 0, clock=_paced(write, between), cpu_clock=_costly_page_cache())
        _append_probe(appender, data)
        modes = []
        for start in range(PAGE_CACHE_PROBE, len(data), piece):
            buffer[:] = data[start : start + piece]
            appender.append(buffer)
            modes.append(_direct(fd))
    finally:
        os.close(fd)
    probe = DIRECT_PROBE // piece
    assert all(modes[: probe - 1])  # judged only once the probe is written
    assert all(modes) if stays_direct else not any(modes[probe:])
    assert (tmp_path / "blob").read_bytes() == data


def test_a_pulled_layer_is_whole_and_only_its_probe_and_tail_went_through_the_page_cache(
    registry: LocalRegistry, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A real pull, with the page cache judged the costlier whatever it cost on this machine (COSTLIER 0), so that
    the direct path runs: the probe and the short last piece are in the page cache, nothing else."""
    monkeypatch.setattr(directio, "COSTLIER", 0.0)
    size = PAGE_CACHE_PROBE + (3 << 20) + 100  # the probe, three whole receive buffers and a short last piece
    source, descriptor = make_image(tmp_path / "src", big=size)
    api.push(f"oci:{source.path}:v1", f"{registry.host}/direct:v1", options=options(tmp_path))
    api.pull(f"{registry.host}/direct:v1", f"oci:{tmp_path / 'back'}:v1", options=options(tmp_path))
    layer = next(d for d in source.read_manifest(descriptor).manifest.layers if d.size >= size)
    path = Path(OCILayout(str(tmp_path / "back")).blob_path(layer.digest))
    tail = layer.size % READ_SIZE  # the short last piece, in whole pages
    assert _resident_bytes(path) == PAGE_CACHE_PROBE + -(-tail // ALIGN) * ALIGN
    assert hashlib.sha256(path.read_bytes()).hexdigest() == layer.digest.split(":")[1]
