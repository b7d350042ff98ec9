"""A push killed with SIGKILL mid-blob and run again continues from the upload journal.

Through the proxy in ECR mode, whose parts are atomic as ECR's are, the second run sends at most the remainder plus
one chunk. Straight against the distribution registry, which drops a session whose last PATCH was cut, the second
run starts that blob over; both end with the image byte-identical."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from support.proxy import FaultProxy, Stall
from transferhelpers import layout_blobs, make_image, options

from ocipush import api
from ocipush.layout import OCILayout
from ocipush.localregistry import LocalRegistry

MiB = 1 << 20
BLOB = 200 * MiB
CHUNK = 16 * MiB


def _push_command(source: OCILayout, target: str, cache: Path) -> list[str]:
    return [
        sys.executable,
        "-m",
        "ocipush.cli",
        "push",
        "-q",
        f"oci:{source.path}:v1",
        target,
        "--cache-dir",
        str(cache),
        "--chunk-size",
        str(CHUNK // MiB),
    ]


def _journal_offset(cache: Path) -> int:
    offsets = []
    for entry in (cache / "uploads").glob("*.json"):
        try:
            offsets.append(json.loads(entry.read_text())["offset"])
        except (ValueError, KeyError, FileNotFoundError):
            continue
    return max(offsets, default=0)


def test_resume_after_kill_sends_only_the_remainder(
    registry: LocalRegistry, fault_proxy: Callable[..., FaultProxy], tmp_path: Path
) -> None:
    proxy = fault_proxy(registry.url, ecr=True)
    source, descriptor = make_image(tmp_path / "src", big=BLOB)
    cache = tmp_path / "cache"
    command = _push_command(source, f"{proxy.host}/big/app:v1", cache)
    # The 7th part (of 13) is held half-way: the process is killed in the middle of a part, past 40 % of the blob.
    stall = proxy.add_fault("PATCH", r"/blobs/uploads/", Stall(after_bytes=CHUNK // 2), skip=6)
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        assert stall.reached.wait(120), process.stderr.read() if process.stderr else ""
        process.send_signal(signal.SIGKILL)
    finally:
        process.wait(timeout=30)
    assert process.returncode == -signal.SIGKILL
    acknowledged = _journal_offset(cache)
    assert acknowledged == 6 * CHUNK
    before = proxy.stats.body_bytes[("PATCH", "upload")] + proxy.stats.body_bytes[("PUT", "upload")]

    done = subprocess.run(command, capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr
    resent = proxy.stats.body_bytes[("PATCH", "upload")] + proxy.stats.body_bytes[("PUT", "upload")] - before
    big_layer = max(source.read_manifest(descriptor).manifest.layers, key=lambda d: d.size)
    assert resent == big_layer.size - acknowledged  # exactly the remainder: nothing accepted is sent again
    assert not list((cache / "uploads").glob("*.json"))  # the journal entry is gone once the blob is complete

    api.pull(f"{proxy.host}/big/app:v1", f"oci:{tmp_path / 'back'}", options=options(tmp_path))
    assert layout_blobs(OCILayout(str(tmp_path / "back"))) == layout_blobs(source)


def test_kill_against_distribution_restarts_the_blob_and_lands(registry: LocalRegistry, tmp_path: Path) -> None:
    source, descriptor = make_image(tmp_path / "src", big=BLOB // 2)
    cache = tmp_path / "cache"
    command = _push_command(source, f"{registry.host}/big/app:v1", cache)
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while _journal_offset(cache) < CHUNK and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    os.kill(process.pid, signal.SIGKILL)
    process.wait(timeout=30)
    done = subprocess.run(command, capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == descriptor.digest
    api.pull(f"{registry.host}/big/app:v1", f"oci:{tmp_path / 'back'}", options=options(tmp_path))
    assert layout_blobs(OCILayout(str(tmp_path / "back"))) == layout_blobs(source)


def test_kill_in_the_only_part_then_rerun_lands(
    registry: LocalRegistry, fault_proxy: Callable[..., FaultProxy], tmp_path: Path
) -> None:
    """Off ECR a blob goes as one streamed PATCH: killed in it, the journaled session holds nothing (the
    distribution registry says `Range: 0-0` for that) and the re-run sends the blob again, whole."""
    proxy = fault_proxy(registry.url, ecr=True)
    source, descriptor = make_image(tmp_path / "src", big=40 * MiB)
    cache = tmp_path / "cache"
    command = [sys.executable, "-m", "ocipush.cli", "push", "-q", f"oci:{source.path}:v1",
               f"{proxy.host}/one/app:v1", "--cache-dir", str(cache)]  # fmt: skip
    stall = proxy.add_fault("PATCH", r"/blobs/uploads/", Stall(after_bytes=10 * MiB))
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        assert stall.reached.wait(120)
        process.send_signal(signal.SIGKILL)
    finally:
        process.wait(timeout=30)
    assert list((cache / "uploads").glob("*.json"))  # the session was journaled before its first byte
    done = subprocess.run(command, capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == descriptor.digest
