"""Faults a real registry cannot be made to produce, injected by the proxy in front of a real registry. Every test
ends with the image pushed (or pulled) byte-identical."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest
from support.handles import RegistryHandle
from support.proxy import CutResponse, FaultProxy, IgnoreRange, LoseAnswer, Reset, Respond, status, throttled
from transferhelpers import layout_blobs, make_image, options

from ocipush import api
from ocipush.errors import TransportError
from ocipush.layout import OCILayout
from ocipush.localregistry import LocalRegistry
from ocipush.progress import ProgressEvent

Factory = Callable[..., FaultProxy]
MiB = 1 << 20


def _round_trip(proxy: FaultProxy, tmp_path: Path, source: OCILayout, **extra: object) -> list[ProgressEvent]:
    events: list[ProgressEvent] = []
    opts = options(tmp_path, chunk_size=5 * MiB, **extra)
    api.push(f"oci:{source.path}:v1", f"{proxy.host}/app:v1", options=opts, progress=events.append)
    proxy.clear_faults()
    api.pull(f"{proxy.host}/app:v1", f"oci:{tmp_path / 'back'}", options=opts)
    assert layout_blobs(OCILayout(str(tmp_path / "back"))) == layout_blobs(source)
    return events


def test_reset_mid_chunk_recovers(registry: LocalRegistry, fault_proxy: Factory, tmp_path: Path) -> None:
    proxy = fault_proxy(registry.url)
    source, _ = make_image(tmp_path / "src", big=18 * MiB)
    fault = proxy.add_fault("PATCH", r"/blobs/uploads/", Reset(after_bytes=2 * MiB), skip=1)
    events = _round_trip(proxy, tmp_path, source)
    assert fault.applied == 1
    assert any(e.kind == "retry" for e in events)


@pytest.mark.parametrize("code", [500, 502, 503])
def test_server_errors_are_retried(code: int, registry: LocalRegistry, fault_proxy: Factory, tmp_path: Path) -> None:
    proxy = fault_proxy(registry.url)
    source, _ = make_image(tmp_path / "src", big=11 * MiB)
    faults = [
        proxy.add_fault("PATCH", r"/blobs/uploads/", status(code), skip=1),
        proxy.add_fault("PUT", r"/blobs/uploads/", status(code)),
        proxy.add_fault("HEAD", r"/blobs/", status(code)),
        proxy.add_fault("PUT", r"/manifests/", status(code)),
    ]
    _round_trip(proxy, tmp_path, source)
    assert [f.applied for f in faults] == [1, 1, 1, 1]


def test_throttling_honours_retry_after(registry: LocalRegistry, fault_proxy: Factory, tmp_path: Path) -> None:
    proxy = fault_proxy(registry.url)
    source, _ = make_image(tmp_path / "src")
    fault = proxy.add_fault("POST", r"/blobs/uploads/", throttled(retry_after=1), times=2)
    _round_trip(proxy, tmp_path, source)
    assert fault.applied == 2


def test_gives_up_with_a_clear_error(registry: LocalRegistry, fault_proxy: Factory, tmp_path: Path) -> None:
    proxy = fault_proxy(registry.url)
    source, _ = make_image(tmp_path / "src", big=6 * MiB)
    proxy.add_fault("PATCH", r"/blobs/uploads/", Reset(after_bytes=1000), times=None)
    opts = options(tmp_path, chunk_size=5 * MiB, max_attempts=3)
    with pytest.raises(TransportError, match="upload of sha256:"):
        api.push(f"oci:{source.path}:v1", f"{proxy.host}/app:v1", options=opts)


def test_ecr_upload_quirks(registry: LocalRegistry, fault_proxy: Factory, tmp_path: Path) -> None:
    """PATCH answers 201, Range freezes after the first part, parts under 5 MiB are refused: 3 parts must pass."""
    proxy = fault_proxy(registry.url, ecr=True)
    source, _ = make_image(tmp_path / "src", big=13 * MiB)
    _round_trip(proxy, tmp_path, source)
    assert proxy.stats.statuses[("PATCH", "upload", 201)] == 3
    assert not any(code == 400 for (_, _, code) in proxy.stats.statuses)


def test_ecr_reset_mid_part_with_lying_range(registry: LocalRegistry, fault_proxy: Factory, tmp_path: Path) -> None:
    proxy = fault_proxy(registry.url, ecr=True)
    source, _ = make_image(tmp_path / "src", big=23 * MiB)
    proxy.add_fault("PATCH", r"/blobs/uploads/", Reset(after_bytes=3 * MiB), skip=2)
    _round_trip(proxy, tmp_path, source)


def test_redirect_never_carries_authorization(
    auth_registry: RegistryHandle, fault_proxy: Factory, tmp_path: Path
) -> None:
    proxy = fault_proxy(auth_registry.url, redirect_blobs=True)
    source, _ = make_image(tmp_path / "src", big=6 * MiB)
    user, password = auth_registry.auth
    _round_trip(proxy, tmp_path, source, username=user, password=password)
    assert proxy.stats.statuses[("GET", "blob", 307)] >= 3


def test_ecr_lost_answer_continues_without_a_new_session(
    registry: LocalRegistry, fault_proxy: Factory, tmp_path: Path
) -> None:
    """The registry stored a part but its answer was lost; ECR's status Range cannot tell. The retry from the
    tracked offset is refused (416), the next part boundary is accepted: no data skipped, no new session."""
    proxy = fault_proxy(registry.url, ecr=True)
    source, descriptor = make_image(tmp_path / "src", big=23 * MiB)
    fault = proxy.add_fault("PATCH", r"/blobs/uploads/", LoseAnswer(), skip=2)
    _round_trip(proxy, tmp_path, source)
    assert fault.applied == 1
    big = max(source.read_manifest(descriptor).manifest.layers, key=lambda d: d.size).size
    assert proxy.stats.statuses[("PATCH", "upload", 416)] == 1
    assert proxy.stats.body_bytes[("PATCH", "upload")] <= big + 5 * MiB
    assert proxy.stats.requests[("POST", "upload")] == 3  # one session per blob, none started over


def test_cut_download_resumes_with_range(registry: LocalRegistry, fault_proxy: Factory, tmp_path: Path) -> None:
    source, descriptor = make_image(tmp_path / "src", big=24 * MiB)
    api.push(f"oci:{source.path}:v1", f"{registry.host}/app:v1", options=options(tmp_path))
    proxy = fault_proxy(registry.url)
    big = max(source.read_manifest(descriptor).manifest.layers, key=lambda d: d.size)
    fault = proxy.add_fault("GET", rf"/blobs/{big.digest}", CutResponse(after_bytes=10 * MiB))
    events: list[ProgressEvent] = []
    api.pull(f"{proxy.host}/app:v1", f"oci:{tmp_path / 'back'}", options=options(tmp_path), progress=events.append)
    assert fault.applied == 1
    assert layout_blobs(OCILayout(str(tmp_path / "back"))) == layout_blobs(source)
    assert proxy.stats.statuses[("GET", "blob", 206)] == 1  # the second request asked for the rest only
    assert any(e.kind == "resume" and e.done > 0 for e in events)
    assert proxy.stats.bytes_sent < big.size + 11 * MiB


def test_a_resume_answered_whole_starts_the_partial_over_and_a_fresh_download_never_truncates(
    registry: LocalRegistry, fault_proxy: Factory, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A server that ignores Range answers the resumed request with the whole blob (200): the partial file starts
    over from byte 0. A fresh download never truncates its partial file: ext4 takes a truncation to 0 as a rewrite
    and writes the whole file back when it is closed (download.py)."""
    source, descriptor = make_image(tmp_path / "src", big=24 * MiB)
    api.push(f"oci:{source.path}:v1", f"{registry.host}/app:v1", options=options(tmp_path))
    truncated: list[tuple[str, int]] = []
    real = os.ftruncate

    def recording(fd: int, length: int) -> None:
        truncated.append((os.readlink(f"/proc/self/fd/{fd}"), length))
        real(fd, length)

    monkeypatch.setattr(os, "ftruncate", recording)
    api.pull(f"{registry.host}/app:v1", f"oci:{tmp_path / 'fresh'}", options=options(tmp_path))
    assert truncated == []
    proxy = fault_proxy(registry.url)
    big = max(source.read_manifest(descriptor).manifest.layers, key=lambda d: d.size)
    cut = proxy.add_fault("GET", rf"/blobs/{big.digest}", CutResponse(after_bytes=10 * MiB))
    whole = proxy.add_fault("GET", rf"/blobs/{big.digest}", IgnoreRange())
    api.pull(f"{proxy.host}/app:v1", f"oci:{tmp_path / 'back'}", options=options(tmp_path))
    assert (cut.applied, whole.applied) == (1, 1)
    assert proxy.stats.statuses[("GET", "blob", 206)] == 0  # the resumed request was answered whole
    assert layout_blobs(OCILayout(str(tmp_path / "back"))) == layout_blobs(source)
    assert len(truncated) == 1 and truncated[0][1] == 0 and big.digest.split(":")[1] in truncated[0][0]


def test_a_failed_push_leaves_no_upload_running(
    registry: LocalRegistry, fault_proxy: Factory, tmp_path: Path
) -> None:
    """One blob is refused for good while a large one is still going: the call raises the real error, and by then
    every worker has stopped (a Lambda handler must not leave uploads running into its next invocation)."""
    import threading

    from ocipush.errors import AuthError

    proxy = fault_proxy(registry.url)
    source, descriptor = make_image(tmp_path / "src", big=64 * MiB)
    small = min(source.read_manifest(descriptor).manifest.layers, key=lambda d: d.size)
    denied = b'{"errors":[{"code":"DENIED","message":"policy says no"}]}'
    proxy.add_fault("PUT", rf"digest={small.digest.replace(':', '(:|%3A)')}", Respond(400, denied), times=None)
    with pytest.raises(AuthError, match="policy says no"):
        api.push(f"oci:{source.path}:v1", f"{proxy.host}/app:v1", options=options(tmp_path, max_attempts=2))
    assert not [t for t in threading.enumerate() if t.name.startswith("ocipush-blob")]
