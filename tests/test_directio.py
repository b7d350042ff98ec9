"""Downloads written through the page cache or past it (ocipush.directio): a probe of each way, then the faster,
whole aligned pieces with O_DIRECT, anything else through the page cache, and the file always holds exactly what
was appended. Costs come from injected clocks; residency in the page cache is read with util-linux's fincore."""

from __future__ import annotations

import errno
import fcntl
import hashlib
import os
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from transferhelpers import make_image, options

from ocipush import api, directio
from ocipush.directio import (
    ALIGN,
    PAGE_CACHE_PIECE,
    PROBE_BYTES,
    VERDICT_SECONDS,
    Appender,
    DirectProbes,
    aligned_buffer,
)
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


Costs = Callable[[bool, int], tuple[float, float]]  # (direct, file length) -> (seconds per write, between)


class _Paced:
    """A clock for Appender on which each write takes, and the time until the next one lasts, what `costs` says
    for the way the appender writes and the file's length when it is read (once before and once after a write)."""

    def __init__(self, costs: Costs, fd: int) -> None:
        self.costs = costs
        self.fd = fd
        self.appender: Appender | None = None
        self.now = 0.0
        self.before_write = True

    def __call__(self) -> float:
        assert self.appender is not None
        write, between = self.costs(self.appender.direct, os.fstat(self.fd).st_size)
        now = self.now
        self.now += write if self.before_write else between
        self.before_write = not self.before_write
        return now


def _appender(fd: int, size: int, costs: Costs, probes: DirectProbes | None = None) -> Appender:
    """An appender on a paced clock; with probes of its own unless `probes` are shared."""
    clock = _Paced(costs, fd)
    clock.appender = Appender(fd, size, clock=clock, probes=probes or DirectProbes())
    return clock.appender


def _ways(page_cache: tuple[float, float], direct: tuple[float, float]) -> Costs:
    return lambda is_direct, _length: direct if is_direct else page_cache


FAST, SLOW = (0.002, 0.004), (0.012, 0.004)  # per 1 MiB piece: ~170 MB/s against ~60 MB/s


def _append_pieces(appender: Appender, fd: int, data: bytes, start: int, end: int) -> list[bool]:
    """Append data[start:end] in whole aligned 1 MiB pieces; the way each went (True: direct)."""
    buffer = memoryview(aligned_buffer(MiB))
    ways = []
    for at in range(start, end, MiB):
        buffer[:] = data[at : at + MiB]
        ways.append(_direct(fd))
        appender.append(buffer)
    return ways


@pytest.mark.parametrize(("page_cache", "direct", "chosen"), [(FAST, SLOW, False), (SLOW, FAST, True)])
def test_the_page_cache_first_then_a_direct_probe_then_the_faster_way(
    tmp_path: Path, page_cache: tuple[float, float], direct: tuple[float, float], chosen: bool
) -> None:
    data = os.urandom(4 * PROBE_BYTES)
    fd = _new_file(tmp_path / "blob")
    try:
        appender = _appender(fd, 0, _ways(page_cache, direct))
        ways = _append_pieces(appender, fd, data, 0, len(data))
    finally:
        os.close(fd)
    probe = PROBE_BYTES // MiB
    assert ways == [False] * probe + [True] * probe + [chosen] * (len(ways) - 2 * probe)
    direct_bytes = (len(data) - PROBE_BYTES) if chosen else PROBE_BYTES
    assert _resident_bytes(tmp_path / "blob") == len(data) - direct_bytes  # direct pieces left nothing cached
    assert (tmp_path / "blob").read_bytes() == data


def test_direct_writes_stop_once_the_disk_falls_behind(tmp_path: Path) -> None:
    """A volume that keeps pace for 24 MiB and then takes ten times as long (out of burst credit)."""
    data = os.urandom(8 * PROBE_BYTES)
    behind = 3 * PROBE_BYTES

    def costs(is_direct: bool, length: int) -> tuple[float, float]:
        if not is_direct:
            return SLOW
        return FAST if length < behind else (0.120, 0.004)

    fd = _new_file(tmp_path / "blob")
    try:
        ways = _append_pieces(_appender(fd, 0, costs), fd, data, 0, len(data))
    finally:
        os.close(fd)
    went_back = ways.index(False, PROBE_BYTES // MiB)
    assert behind // MiB < went_back < len(ways) and not any(ways[went_back:])
    assert (tmp_path / "blob").read_bytes() == data


def test_a_short_last_piece_goes_through_the_page_cache(tmp_path: Path) -> None:
    data = os.urandom(3 * PROBE_BYTES + 1000)
    fd = _new_file(tmp_path / "blob")
    try:
        appender = _appender(fd, 0, _ways(SLOW, FAST))
        _append_pieces(appender, fd, data, 0, 3 * PROBE_BYTES)
        assert appender.direct and _direct(fd)
        appender.append(data[3 * PROBE_BYTES :])
        assert not appender.direct and not _direct(fd)
    finally:
        os.close(fd)
    assert _resident_bytes(tmp_path / "blob") == PROBE_BYTES + ALIGN  # the first probe and the last page
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

    data = os.urandom(PROBE_BYTES + 2 * ALIGN)
    odd = memoryview(aligned_buffer(4 * ALIGN))[1 : 1 + 2 * ALIGN]  # an aligned length at an odd address
    odd[:] = data[PROBE_BYTES:]
    fd = _new_file(tmp_path / "blob")
    try:
        appender = _appender(fd, 0, _ways(SLOW, FAST))
        _append_pieces(appender, fd, data, 0, PROBE_BYTES)
        assert appender.direct
        monkeypatch.setattr(os, "write", recording)
        appender.append(odd)
        assert refused == [errno.EINVAL] and not appender.direct
    finally:
        os.close(fd)
    assert (tmp_path / "blob").read_bytes() == data


def test_a_resumed_file_of_odd_length_stays_in_the_page_cache(tmp_path: Path) -> None:
    data = os.urandom(3 * PROBE_BYTES)
    (tmp_path / "blob").write_bytes(b"12345")
    fd = os.open(tmp_path / "blob", os.O_WRONLY | os.O_APPEND)
    try:
        ways = _append_pieces(_appender(fd, 5, _ways(SLOW, FAST)), fd, data, 0, len(data))
        assert not any(ways) and not _direct(fd)
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
    data = os.urandom(3 * PROBE_BYTES)
    fd = _new_file(tmp_path / "blob")
    try:
        ways = _append_pieces(_appender(fd, 0, _ways(SLOW, FAST)), fd, data, 0, len(data))
        assert asked == [fd] and not any(ways)
    finally:
        os.close(fd)
    assert (tmp_path / "blob").read_bytes() == data


def test_a_pulled_layer_is_whole_and_only_its_page_cache_probe_and_tail_went_through_the_page_cache(
    registry: LocalRegistry, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A real pull of a layer that ends during its direct probe, so that whatever the two ways cost on this machine,
    the probe's pieces go past the page cache."""
    monkeypatch.setattr(directio, "PROBES", DirectProbes())  # no verdict left by an earlier test's pulls
    size = PROBE_BYTES + (3 << 20) + 100  # the page cache's probe, three whole receive buffers and a short last piece
    source, descriptor = make_image(tmp_path / "src", big=size)
    api.push(f"oci:{source.path}:v1", f"{registry.host}/direct:v1", options=options(tmp_path))
    api.pull(f"{registry.host}/direct:v1", f"oci:{tmp_path / 'back'}:v1", options=options(tmp_path))
    layer = next(d for d in source.read_manifest(descriptor).manifest.layers if d.size >= size)
    path = Path(OCILayout(str(tmp_path / "back")).blob_path(layer.digest))
    tail = layer.size % READ_SIZE  # the short last piece, in whole pages
    assert _resident_bytes(path) == PROBE_BYTES + -(-tail // ALIGN) * ALIGN
    assert hashlib.sha256(path.read_bytes()).hexdigest() == layer.digest.split(":")[1]


def test_downloads_take_turns_at_the_direct_probe(tmp_path: Path) -> None:
    """While one file probes direct writes, another that has finished its page cache probe waits in the page cache;
    it probes on its first piece after the first probe ended (direct won, so no verdict spares it)."""
    probes = DirectProbes()
    data = os.urandom(4 * PROBE_BYTES)
    first, second = _new_file(tmp_path / "first"), _new_file(tmp_path / "second")
    try:
        a = _appender(first, 0, _ways(SLOW, FAST), probes)
        b = _appender(second, 0, _ways(SLOW, FAST), probes)
        _append_pieces(a, first, data, 0, PROBE_BYTES)
        _append_pieces(b, second, data, 0, PROBE_BYTES)
        assert a.direct and not b.direct  # a's turn; b waits
        waited = _append_pieces(b, second, data, PROBE_BYTES, 2 * PROBE_BYTES)
        _append_pieces(a, first, data, PROBE_BYTES, 2 * PROBE_BYTES)  # a's probe ends: direct won
        after = _append_pieces(b, second, data, 2 * PROBE_BYTES, 4 * PROBE_BYTES)
    finally:
        os.close(first)
        os.close(second)
    assert not any(waited)
    assert after == [False] + [True] * (len(after) - 1)  # b's turn came after its first piece
    assert (tmp_path / "first").read_bytes() == data[: 2 * PROBE_BYTES]
    assert (tmp_path / "second").read_bytes() == data


def test_a_probe_won_by_the_page_cache_spares_the_others_theirs_for_a_while(tmp_path: Path) -> None:
    now = [0.0]
    probes = DirectProbes(clock=lambda: now[0])
    data = os.urandom(3 * PROBE_BYTES)
    ways = []
    for name in ("slow", "spared", "later"):
        fd = _new_file(tmp_path / name)
        try:
            ways.append(_append_pieces(_appender(fd, 0, _ways(FAST, SLOW), probes), fd, data, 0, len(data)))
        finally:
            os.close(fd)
        assert (tmp_path / name).read_bytes() == data
        if name == "spared":
            now[0] += VERDICT_SECONDS
    probe = PROBE_BYTES // MiB
    tried = [False] * probe + [True] * probe + [False] * probe
    assert ways == [tried, [False] * 3 * probe, tried]


def test_a_probe_cut_short_gives_up_its_turn_without_a_verdict(tmp_path: Path) -> None:
    """A download that fails during its direct probe (closed there): the next file probes, and the failed file's
    descriptor is left without O_DIRECT for whatever writes it next (a restarted download)."""
    probes = DirectProbes()
    data = os.urandom(3 * PROBE_BYTES)
    first, second = _new_file(tmp_path / "first"), _new_file(tmp_path / "second")
    try:
        cut = _appender(first, 0, _ways(SLOW, FAST), probes)
        _append_pieces(cut, first, data, 0, PROBE_BYTES + MiB)
        assert cut.direct and _direct(first)
        cut.close()
        assert not _direct(first)
        ways = _append_pieces(_appender(second, 0, _ways(SLOW, FAST), probes), second, data, 0, len(data))
    finally:
        os.close(first)
        os.close(second)
    probe = PROBE_BYTES // MiB
    assert ways == [False] * probe + [True] * 2 * probe
