"""Unchanged rebuilds trust the stat fingerprint as git's index does: no file is read, unless --verify asks for it,
a stamp is too recent to be trusted (racily clean), or the fingerprint changed (ctime moves even when a tool puts
the mtime back)."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from buildhelpers import make_tree

import ocipush.build.layers
from ocipush.build.layers import RACY_NS
from ocipush.cli import main
from ocipush.layout import OCILayout


@pytest.fixture
def tar_passes(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Counts the tar passes (each one reads every file of the layer)."""
    calls: list[int] = []
    real: Callable[..., None] = ocipush.build.layers.write_tar

    def counting(*args: object, **kwargs: object) -> None:
        calls.append(1)
        real(*args, **kwargs)

    monkeypatch.setattr(ocipush.build.layers, "write_tar", counting)
    return calls


def _build(src: Path, out: Path, *extra: str) -> str:
    assert main(["build", "--no-build-file", "--layer", f"{src}:/app", "--output", f"oci:{out}:v1", *extra]) == 0
    return OCILayout(str(out)).resolve("v1").digest


def _settle() -> None:
    """Wait until the tree's stamps are old enough to be trusted."""
    time.sleep(RACY_NS / 1e9 + 0.1)


@pytest.fixture
def tree(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("OCIPUSH_CACHE_DIR", str(tmp_path / "cache"))
    return make_tree(tmp_path / "src")


def test_an_unchanged_rebuild_reads_no_file_and_verify_reads_them_all(
    tree: Path, tmp_path: Path, tar_passes: list[int]
) -> None:
    _settle()
    first = _build(tree, tmp_path / "out")
    assert len(tar_passes) == 1
    assert _build(tree, tmp_path / "out") == first
    assert len(tar_passes) == 1  # settled by the stat walk alone
    assert _build(tree, tmp_path / "out", "--verify") == first
    assert len(tar_passes) == 2  # one hash pass, no compression


def test_a_content_change_behind_a_restored_mtime_is_seen(tree: Path, tmp_path: Path, tar_passes: list[int]) -> None:
    _settle()
    first = _build(tree, tmp_path / "out")
    target = tree / "app" / "main.py"
    before = target.stat()
    target.write_bytes(b"print('HELLO')\n")  # same size
    os.utime(target, ns=(before.st_atime_ns, before.st_mtime_ns))  # as rsync -t or a checkout might
    assert target.stat().st_mtime_ns == before.st_mtime_ns
    assert _build(tree, tmp_path / "out") != first
    # The fingerprint missed: a hash pass (the previous image might have had this layer), then the compression.
    assert len(tar_passes) == 3


def test_racily_clean_stamps_are_not_trusted(tree: Path, tmp_path: Path, tar_passes: list[int]) -> None:
    (tree / "app" / "fresh.txt").write_text("written just now\n")
    first = _build(tree, tmp_path / "out")  # the stat stamps are too recent to be kept
    assert _build(tree, tmp_path / "out") == first
    assert len(tar_passes) == 2  # the rebuild had to hash the tar (and found the same layer)
