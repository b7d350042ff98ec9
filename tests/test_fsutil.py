"""Temporary names made without tempfile: private modes, never an existing path, a bounded search."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from ocipush import fsutil
from ocipush.fsutil import atomic_write_bytes, new_directory_in, new_file_in


def test_new_files_and_directories_are_private_and_distinct(tmp_path: Path) -> None:
    made = [new_file_in(str(tmp_path), ".tmp-") for _ in range(50)]
    for fd, _ in made:
        os.close(fd)
    paths = {path for _, path in made}
    assert len(paths) == 50
    assert all(os.path.basename(p).startswith(".tmp-") and os.path.dirname(p) == str(tmp_path) for p in paths)
    assert {stat.S_IMODE(os.stat(p).st_mode) for p in paths} == {0o600}
    directory = new_directory_in(str(tmp_path), ".stage-")
    assert os.path.isdir(directory) and stat.S_IMODE(os.stat(directory).st_mode) == 0o700


def test_a_taken_name_is_never_reused_and_the_search_ends(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """With a random source that repeats itself, a planted symlink under the name is never followed, and the
    search gives up with FileExistsError instead of looping."""
    target = tmp_path / "target"
    target.write_bytes(b"keep")
    monkeypatch.setattr(fsutil.os, "urandom", lambda n: b"\0" * n)
    planted = tmp_path / (".tmp-" + "00" * 8)
    planted.symlink_to(target)
    with pytest.raises(FileExistsError):
        new_file_in(str(tmp_path), ".tmp-")
    with pytest.raises(FileExistsError):
        new_directory_in(str(tmp_path), ".tmp-")
    assert target.read_bytes() == b"keep" and planted.is_symlink()


def test_atomic_write_leaves_only_the_target(tmp_path: Path) -> None:
    atomic_write_bytes(str(tmp_path / "out.json"), b"{}")
    assert [p.name for p in tmp_path.iterdir()] == ["out.json"]
    assert stat.S_IMODE(os.stat(tmp_path / "out.json").st_mode) == 0o644
