"""Progress in CI logs (stderr not a terminal): a line per active blob every few seconds or 10 %, the time and rate
on `done`, and retries announced before the wait. The fault proxy injects what the registry never does."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

from support.proxy import FaultProxy, Reset, status
from transferhelpers import make_image, run_cli

from ocipush.localregistry import LocalRegistry

Factory = Callable[..., FaultProxy]
MiB = 1 << 20


def test_big_blob_reports_progress_and_rate(registry: LocalRegistry, tmp_path: Path) -> None:
    source, _ = make_image(tmp_path / "src", big=24 * MiB)
    done = run_cli("push", source.path, f"{registry.host}/ci/app:v1", "--chunk-size", "5",
                   "--cache-dir", str(tmp_path / "cache"))  # fmt: skip
    assert done.returncode == 0, done.stderr
    lines = done.stderr.splitlines()
    progress = [line for line in lines if line.startswith("progress ")]
    # 24 MiB in 5 MiB parts: a line at each part (each is more than 10 %), with share, bytes and rate
    assert len(progress) >= 3, done.stderr
    assert all(re.search(r"\d+%  [\d.]+ MB / 25\.2 MB  [\d.]+ [KMG]?B/s$", line) for line in progress), progress
    finished = [line for line in lines if line.startswith("done ")]
    assert len(finished) == 3  # config and two layers
    assert all(re.search(r" in \d+\.\d s  [\d.]+ [KMG]?B/s$", line) for line in finished), finished


def test_retries_are_announced_and_worded(registry: LocalRegistry, fault_proxy: Factory, tmp_path: Path) -> None:
    proxy = fault_proxy(registry.url)
    source, _ = make_image(tmp_path / "src", big=12 * MiB)
    head = proxy.add_fault("HEAD", r"/blobs/", status(503))
    cut = proxy.add_fault("PATCH", r"/blobs/uploads/", Reset(after_bytes=1 * MiB), skip=1)
    done = run_cli("push", source.path, f"{proxy.host}/ci/app:v1", "--chunk-size", "5",
                   "--cache-dir", str(tmp_path / "cache"))  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert head.applied == 1 and cut.applied == 1
    # the request-level retry goes to the log (a warning, shown by default) ...
    assert re.search(r"ocipush: warning: HEAD http://\S+/blobs/sha256:\w+: HTTP 503; retrying in [\d.]+ s "
                     r"\(attempt 2 of 6\)", done.stderr), done.stderr  # fmt: skip
    # ... the blob-level one is a progress line, printed before the wait, and never "gave up after 0 attempts"
    retry = [line for line in done.stderr.splitlines() if line.startswith("retry ")]
    assert retry and re.search(r"\(PATCH \S+: connection failed \(\w+\); retrying in [\d.]+ s", retry[0]), retry
    assert "gave up" not in done.stderr
