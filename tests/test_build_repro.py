"""Reproducibility and round trips of `ocipush build`: same inputs, same digests; umoci and skopeo read the result."""

from __future__ import annotations

import filecmp
import os
import subprocess
from pathlib import Path

import pytest
from buildhelpers import LONG_NAME, build, load, make_tree, top_digest, validate_layout

from ocipush.layout import OCILayout


@pytest.fixture(autouse=True)
def _cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OCIPUSH_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv("SOURCE_DATE_EPOCH", raising=False)


def test_same_tree_elsewhere_gives_same_digests(tmp_path: Path) -> None:
    first = make_tree(tmp_path / "one", mtime=1_600_000_000)
    second = make_tree(tmp_path / "two", reverse=True, mtime=1_700_000_000)
    os.chown(second / "app/main.py", 1234, 5678)
    os.chown(second / "app", 42, 42)
    assert build(first, tmp_path / "out1", "--no-cache") == 0
    assert build(second, tmp_path / "out2", "--no-cache") == 0
    assert top_digest(tmp_path / "out1") == top_digest(tmp_path / "out2")
    _, config = load(tmp_path / "out1")
    assert config["created"] == "1970-01-01T00:00:00Z"
    assert len(config["rootfs"]["diff_ids"]) == 1
    assert validate_layout(tmp_path / "out1") == 2


def test_source_date_epoch_sets_created_and_mtimes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import tarfile

    src = make_tree(tmp_path / "src")
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1700000000")
    assert build(src, tmp_path / "out") == 0
    manifest, config = load(tmp_path / "out")
    assert config["created"] == "2023-11-14T22:13:20Z"
    blob = tmp_path / "out/blobs/sha256" / manifest["layers"][0]["digest"].split(":")[1]
    with tarfile.open(blob) as tar:
        members = tar.getmembers()
    assert {m.mtime for m in members} == {1_700_000_000}
    assert {(m.uid, m.gid, m.uname, m.gname) for m in members} == {(0, 0, "", "")}
    assert all(not m.pax_headers.keys() - {"path", "linkpath"} for m in members)


def test_one_byte_change_changes_only_that_layer(tmp_path: Path) -> None:
    a = make_tree(tmp_path / "a")
    b = tmp_path / "b"
    b.mkdir()
    (b / "config.txt").write_text("x=1\n")
    assert build(a, tmp_path / "out", "--layer", f"{b}:/etc/app") == 0
    before, config_before = load(tmp_path / "out")
    (b / "config.txt").write_text("x=2\n")
    assert build(a, tmp_path / "out", "--layer", f"{b}:/etc/app", tag="v2") == 0
    after, config_after = load(tmp_path / "out", "v2")
    assert before["layers"][0] == after["layers"][0]
    assert before["layers"][1]["digest"] != after["layers"][1]["digest"]
    assert config_before["rootfs"]["diff_ids"][0] == config_after["rootfs"]["diff_ids"][0]


def test_umoci_unpacks_the_same_tree(tmp_path: Path) -> None:
    src = make_tree(tmp_path / "src")
    assert build(src, tmp_path / "out", "--chown", "0:0") == 0
    bundle = tmp_path / "bundle"
    subprocess.run(
        ["umoci", "unpack", "--rootless", "--image", f"{tmp_path / 'out'}:v1", str(bundle)],
        check=True, capture_output=True,
    )  # fmt: skip
    rootfs = bundle / "rootfs"
    for dirpath, dirnames, filenames in os.walk(src):
        rel = os.path.relpath(dirpath, src)
        for name in dirnames + filenames:
            ours, theirs = Path(dirpath, name), rootfs / rel / name
            a, b = os.lstat(ours), os.lstat(theirs)
            assert (a.st_mode, a.st_size if not os.path.isdir(ours) else 0) == (
                b.st_mode, b.st_size if not os.path.isdir(theirs) else 0), name  # fmt: skip
            if os.path.islink(ours):
                assert os.readlink(ours) == os.readlink(theirs)
            elif os.path.isfile(ours):
                assert filecmp.cmp(ours, theirs, shallow=False), name
    assert os.path.samefile(rootfs / "app/main.py", rootfs / "app/main-link.py")
    assert (rootfs / "app/empty").is_dir() and not any((rootfs / "app/empty").iterdir())
    assert (rootfs / LONG_NAME).read_bytes() == b"long\n"
    assert (rootfs / "app/ünïcødé/naïve.txt").read_text() == "ça marche\n"
    assert os.access(rootfs / "app/run.sh", os.X_OK)


def test_skopeo_copies_our_layout(tmp_path: Path) -> None:
    src = make_tree(tmp_path / "src")
    assert build(src, tmp_path / "out", "--compression", "zstd") == 0
    subprocess.run(
        ["skopeo", "copy", f"oci:{tmp_path / 'out'}:v1", f"oci:{tmp_path / 'copy'}:v1"],
        check=True, capture_output=True,
    )  # fmt: skip
    assert top_digest(tmp_path / "copy") == top_digest(tmp_path / "out")


def test_a_layout_base_elsewhere_gives_same_digests_and_no_machine_path(tmp_path: Path) -> None:
    # The base's layout path is this machine's business: it must not reach the image (nor change its digest).
    import shutil

    src = make_tree(tmp_path / "src")
    assert build(src, tmp_path / "base-here") == 0
    shutil.copytree(tmp_path / "base-here", tmp_path / "elsewhere" / "base")
    for base, out in ((tmp_path / "base-here", "out1"), (tmp_path / "elsewhere" / "base", "out2")):
        assert build(src, tmp_path / out, "--from", f"oci:{base}:v1") == 0
    assert top_digest(tmp_path / "out1") == top_digest(tmp_path / "out2")
    manifest, _ = load(tmp_path / "out1")
    assert manifest["annotations"]["org.opencontainers.image.base.digest"] == top_digest(tmp_path / "base-here")
    layout = OCILayout(str(tmp_path / "out1"))
    assert str(tmp_path) not in layout.read_blob(layout.resolve("v1").digest).decode()
