"""Helpers for transfer-engine tests: small images in a layout, running the CLI, comparing layouts."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

import httpx
import imagehelpers as ih

from ocipush.layout import OCILayout
from ocipush.localregistry import LocalRegistry
from ocipush.models import Descriptor
from ocipush.registry.options import RegistryOptions


def random_bytes(size: int, seed: int) -> bytes:
    """Deterministic incompressible bytes (sha256 in counter mode)."""
    out = bytearray()
    counter = 0
    while len(out) < size:
        out += hashlib.sha256(f"{seed}:{counter}".encode()).digest() * 1024
        counter += 1
    return bytes(out[:size])


def make_image(path: Path, tag: str = "v1", big: int = 0, seed: int = 1) -> tuple[OCILayout, Descriptor]:
    """A two-layer image; the first layer carries `big` incompressible bytes (stored uncompressed)."""
    layout = OCILayout(str(path), create=True)
    layers: list[tuple[list[ih.E], str]] = [([ih.file("etc/hello.txt", f"hello {seed}\n")], "gzip")]
    if big:
        layers.insert(0, ([ih.file("data.bin", random_bytes(big, seed))], "none"))
    descriptor = ih.build_image(layout, layers, tag=tag, env=f"SEED={seed}")
    return layout, descriptor


def options(tmp_path: Path, **extra: object) -> RegistryOptions:
    """Options that keep every file the test makes under tmp_path."""
    return RegistryOptions(cache_dir=str(tmp_path / "cache"), max_retry_seconds=30, **extra)  # type: ignore[arg-type]


def layout_blobs(layout: OCILayout) -> dict[str, bytes]:
    root = Path(layout.path) / "blobs" / "sha256"
    return {f"sha256:{p.name}": p.read_bytes() for p in root.iterdir() if p.is_file()}


def run_cli(
    *args: str, stdin: str | None = None, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """Run `ocipush` as a user would, in a separate process."""
    full_env = {**os.environ, **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "ocipush.cli", *args],
        input=stdin,
        capture_output=True,
        text=True,
        env=full_env,
        timeout=300,
        check=False,
    )


def assert_one_line_error(done: subprocess.CompletedProcess[str], *fragments: str) -> None:
    assert done.returncode != 0, done.stdout
    lines = done.stderr.strip().splitlines()
    errors = [line for line in lines if line.startswith("ocipush: error: ")]
    # progress lines may come first; the error is exactly one line, the last one
    assert len(errors) == 1 and lines[-1] == errors[0], done.stderr
    assert "Traceback" not in done.stderr
    for fragment in fragments:
        assert fragment in errors[0], errors[0]


def push_two_platform_index(host: str, tmp_path: Path, repo: str = "multi", arm_compression: str = "gzip") -> str:
    """An index of a linux/amd64 and a linux/arm64 image (one small layer each), pushed to host/repo:1."""
    layout = OCILayout(str(tmp_path / f"index-{repo}"), create=True)
    amd = ih.build_image(layout, [([ih.file("a", "amd")], "gzip")], tag=None, arch="amd64")
    arm = ih.build_image(layout, [([ih.file("a", "arm")], arm_compression)], tag=None, arch="arm64")
    ih.build_index(layout, [amd, arm], "multi")
    reference = f"{host}/{repo}:1"
    from ocipush import api

    api.push(f"oci:{layout.path}:multi", reference, options=options(tmp_path))
    return reference


def assert_cli_errors(cases: list[tuple[list[str], int, str]], *extra: str) -> None:
    """Each (arguments, exit code, message fragment): the command fails with that code and a one-line error."""
    for args, code, message in cases:
        done = run_cli(*args, *extra)
        assert done.returncode == code, (args, done.stderr)
        assert_one_line_error(done, message)


def log_mark(registry: LocalRegistry) -> int:
    """The number of lines of the registry's log up to a request made now. The access log is written behind the
    requests, so counting lines right after an operation can cut its last lines off; waiting for a marker request
    of our own to show up makes the split exact (everything before it is written)."""
    marker = f"/v2/log-mark-{uuid.uuid4().hex[:12]}/"
    httpx.get(f"{registry.url}{marker}tags/list", timeout=10)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        lines = registry.log_path.read_text(errors="replace").splitlines()
        found = next((i for i, line in enumerate(lines) if marker in line), None)
        if found is not None:
            return found + 1
        time.sleep(0.05)
    raise AssertionError(f"the marker request {marker} never reached {registry.log_path}")


def log_between(registry: LocalRegistry, start: int, end: int) -> list[str]:
    return registry.log_path.read_text(errors="replace").splitlines()[start:end]


# Library pushes in one fresh interpreter, as a Lambda handler makes them: after each, the watched modules loaded
# so far. A push given a compression converts to it (ocipush.ops.convert is imported for it only then).
_PUSH_PROBE = """
import json, sys
from ocipush.api import push
from ocipush.registry.options import RegistryOptions
source, cache_dir, watch, pushes = sys.argv[1], sys.argv[2], sys.argv[3].split(","), json.loads(sys.argv[4])
for target, compression in pushes:
    if compression:
        from ocipush.ops.convert import Conversion
    conversion = Conversion(compression) if compression else None
    push(source, target, options=RegistryOptions(cache_dir=cache_dir), conversion=conversion)
    print("loaded:", json.dumps([m for m in watch if m in sys.modules]), flush=True)
"""


def modules_after_pushes(
    source: str, pushes: list[tuple[str, str | None]], cache_dir: Path, watch: tuple[str, ...]
) -> list[list[str]]:
    """Push `source` to each (target, compression or None) in a fresh interpreter; the `watch` modules loaded
    after each push."""
    done = subprocess.run([sys.executable, "-c", _PUSH_PROBE, source, str(cache_dir), ",".join(watch),
                           json.dumps(pushes)], capture_output=True, text=True, check=True, timeout=120)  # fmt: skip
    lines = [line.removeprefix("loaded: ") for line in done.stdout.splitlines() if line.startswith("loaded: ")]
    assert len(lines) == len(pushes), done.stdout + done.stderr
    return [json.loads(line) for line in lines]

