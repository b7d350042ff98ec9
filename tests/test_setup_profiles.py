"""The README's demo command installs only what the demo runs: no test tools, no benchmark peers."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

pytestmark = pytest.mark.slow


def _checkout(into: Path) -> Path:
    tracked = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True).stdout
    for name in tracked.decode().split("\0"):
        if name and (ROOT / name).is_file():
            (into / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, into / name)
    return into


def test_demo_setup_installs_ocipush_alone(tmp_path: Path) -> None:
    clone = _checkout(tmp_path / "clone")
    done = subprocess.run(["bash", "scripts/setup.sh", "demo"], cwd=clone, capture_output=True, text=True,
                          timeout=900, check=False)  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    # pip's chatter is kept out of a successful set-up.
    assert "Successfully installed" not in done.stdout + done.stderr
    venv_python = clone / ".venv" / "bin" / "python"
    assert subprocess.run([venv_python, "-c", "import ocipush.api"], check=False).returncode == 0
    for test_only in ("pytest", "moto", "respx", "httpx"):  # httpx: the fixtures' client, not the library's
        found = subprocess.run([venv_python, "-c", f"import {test_only}"], capture_output=True, check=False)
        assert found.returncode != 0, f"the demo set-up installed {test_only}"
    assert not (clone / "benchmarks" / ".venv-peers").exists()


def test_setup_refuses_an_unknown_profile(tmp_path: Path) -> None:
    done = subprocess.run(["bash", str(ROOT / "scripts" / "setup.sh"), "everything"], capture_output=True, text=True,
                          check=False)  # fmt: skip
    assert done.returncode == 2
    assert "unknown profile 'everything'" in done.stderr
