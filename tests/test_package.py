"""The package surface: a fast import that loads nothing heavy, and every public name resolvable."""

from __future__ import annotations

import subprocess
import sys

import ocipush


def test_import_loads_no_heavy_dependency() -> None:
    code = "import sys, ocipush; print(sorted(m for m in ('boto3', 'httpx', 'pydantic') if m in sys.modules))"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"


def test_every_public_name_resolves() -> None:
    assert sorted(set(ocipush.__all__) - {"__version__"}) == sorted(ocipush._API)
    for name in ocipush._API:
        assert callable(getattr(ocipush, name))
