"""Running a command as an unprivileged user (nobody), for what ocipush must do differently without root."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

NOBODY = 65534


def run_as_nobody(*argv: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """`argv` as uid/gid 65534 with no supplementary groups (needs root to switch)."""
    command = ["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups", *argv]
    return subprocess.run(command, capture_output=True, text=True, env=env, timeout=300)


def python_as_nobody(code: str, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """This interpreter running `code` as nobody (the repository and its .venv are world-readable)."""
    return run_as_nobody(sys.executable, "-c", code, *args, env=env)


@contextmanager
def nobody_dir() -> Iterator[Path]:
    """A fresh directory nobody owns, outside pytest's private tmp tree (which only root may enter)."""
    path = Path(tempfile.mkdtemp(prefix="ocipush-nobody-"))
    os.chown(path, NOBODY, NOBODY)
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)
