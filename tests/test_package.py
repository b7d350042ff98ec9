"""The package surface: a fast import that loads nothing heavy, and every public name resolvable."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import ocipush


def test_import_loads_no_heavy_dependency() -> None:
    code = "import sys, ocipush; print(sorted(m for m in ('boto3', 'httpx', 'pydantic') if m in sys.modules))"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"


def test_every_public_name_resolves() -> None:
    assert sorted(set(ocipush.__all__) - {"__version__"}) == sorted(ocipush._API)
    for name in ocipush._API:
        assert callable(getattr(ocipush, name))


def test_wheel_ships_py_typed(tmp_path: Path) -> None:
    root = Path(__file__).resolve().parent.parent
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", str(root),
         "-w", str(tmp_path)],
        check=True, capture_output=True,
    )  # fmt: skip
    (wheel,) = tmp_path.glob("ocipush-*.whl")
    assert "ocipush/py.typed" in zipfile.ZipFile(wheel).namelist()


def test_result_event_and_error_types_are_exported_and_listed() -> None:
    names = dir(ocipush)
    for name in ("TransferResult", "ProgressEvent", "Inspection", "BuildSpec", "UsageError", "NotFoundError"):
        assert name in names and name in ocipush.__all__
    assert issubclass(ocipush.UsageError, ocipush.OcipushError)
    assert ocipush.TransferResult.__module__ == "ocipush.transfer"
    assert "push" in names and "__version__" in names
