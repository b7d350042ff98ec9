"""The benchmark harness's quick mode runs end to end and reports every scenario (no timing assertions)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PEERS_PY = ROOT / "benchmarks" / ".venv-peers" / "bin" / "python"
SCENARIOS = ("P1", "P2", "P3", "P4", "P5", "P6", "P7", "P8", "P9", "P10", "PY", "Lambda", "S1", "S2", "S3",
             "S4", "S5", "SY1", "SY2", "SY3")
TOOLS = ("docker-registry", "skopeo", "umoci", "buildah", "curl", "openssl", "pigz", "unshare", "prlimit",
         "/usr/bin/time")

pytestmark = pytest.mark.slow


def test_quick_benchmark_reports_every_scenario(tmp_path: Path) -> None:
    missing = [tool for tool in TOOLS if shutil.which(tool) is None]
    if missing or not PEERS_PY.exists():
        pytest.fail(f"benchmark prerequisites missing ({missing}, peers venv: {PEERS_PY.exists()}): "
                    "scripts/setup.sh runs benchmarks/install.sh")  # fmt: skip
    out = tmp_path / "results"
    done = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "bench.py"), "--quick", "--out", str(out),
         "--work", str(tmp_path / "work")],
        capture_output=True, text=True, timeout=900, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]

    raw = json.loads((out / "raw.json").read_text())
    assert raw["meta"]["mode"] == "quick"
    scenarios = raw["scenarios"]
    for key in SCENARIOS:
        assert key in scenarios, key
        assert "error" not in scenarios[key], (key, scenarios[key].get("error"))
    # Every peer produced at least one sample where it is expected to work.
    for key, tools in {
        "P2": ("ocipush", "curl", "skopeo", "python-dxf", "oras-py"),
        "P3": ("ocipush", "curl", "skopeo"),
        "P5": ("ocipush", "skopeo", "curl"),
        "P6": ("ocipush", "skopeo"),
        "P8": ("ocipush [distribution]", "ocipush [ecr]", "skopeo [distribution]"),
        "P9": ("python -c 'import ocipush'", "ocipush --help"),
        "P1": ("umoci + skopeo", "tar | pigz -1 + curl", "buildah (from, copy, commit, push)",
               "buildah build --layers + push"),
        "P7": ("buildah build --layers + push (rebuild)",),
        "S4": ("ocipush push", "skopeo push", "ocipush pull", "skopeo pull"),
        "S5": ("ocipush tags", "skopeo list-tags (tags)", "ocipush digest", "skopeo inspect (digest)",
               "ocipush inspect", "skopeo inspect (inspect)"),
        "SY1": ("ocipush sync", "skopeo sync"),
        "SY2": ("ocipush sync", "skopeo sync"),
        "SY3": ("ocipush dask, 2 workers",),
    }.items():
        for tool in tools:
            assert scenarios[key]["tools"][tool]["samples"], (key, tool, scenarios[key]["tools"][tool])
    # The curves have every tool at every point.
    for key in ("S1", "S2", "S3"):
        curve = scenarios[key]
        assert len(curve["points"]) >= 3, (key, curve["points"])
        for point in curve["points"]:
            for tool in curve["series"]:
                assert curve["tools"][f"{tool} @ {point}"]["samples"], (key, tool, point)
    assert all(s["extra"]["verified"] for s in scenarios["S3"]["tools"]["ocipush @ 8"]["samples"])
    # The Lambda profile's script reported when its first request went out.
    lambda_runs = scenarios["Lambda"]["tools"]["ocipush (library, Lambda-like)"]["samples"]
    assert lambda_runs and all(s["extra"]["first_request_s"] > 0 for s in lambda_runs)
    # ocipush's pull wrote a layout whose blobs match their digests.
    assert all(s["extra"]["verified"] for s in scenarios["P5"]["tools"]["ocipush"]["samples"])
    # Request counts come from the registry log, byte counts from the proxy.
    assert scenarios["P6"]["tools"]["ocipush"]["samples"][0]["extra"]["requests"] > 0
    assert scenarios["P8"]["tools"]["ocipush [ecr]"]["samples"][0]["extra"]["rerun_bytes"] > 0
    # P10: the base's layer headers are read once on an empty cache, never on the rebuild (the registry log says).
    p10 = scenarios["P10"]["tools"]
    assert [s["extra"]["base_blob_GETs"] for s in p10["ocipush on busybox, empty cache"]["samples"]] == [1]
    assert [s["extra"]["base_blob_GETs"] for s in p10["ocipush on busybox, unchanged rebuild"]["samples"]] == [0]

    report = (out / "report.md").read_text()
    for key in SCENARIOS:
        assert f"## {key}:" in report, key
    assert "## Targets" in report
    assert (out / "chart.png").stat().st_size > 1000
