"""Unpacking a root filesystem from a hostile image, through the real registry: layers whose uncompressed bytes are not
what the config's diff_ids say, layers that expand past a size budget, and sparse or all-zero files that must be
written as holes (GNU tar makes the sparse entry)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import imagehelpers as ih
import pytest
from transferhelpers import assert_one_line_error, options, run_cli

from ocipush import api
from ocipush import mediatypes as mt
from ocipush.digest import sha256_of
from ocipush.errors import DigestMismatchError, UnsafeArchiveError
from ocipush.localregistry import LocalRegistry
from ocipush.models import Descriptor, ImageConfig, Manifest, ManifestDocument, Platform

MiB = 1 << 20


def _push_layer(registry: LocalRegistry, tmp_path: Path, tar_bytes: bytes, diff_id: str | None = None) -> str:
    """An image of one gzip layer, its config listing `diff_id` (the true one by default), pushed as app:v1."""
    layout = ih.OCILayout(str(tmp_path / "src"), create=True)
    layer, true_diff_id = ih.add_layer(layout, tar_bytes, "gzip")
    config = ImageConfig.model_validate(
        {"architecture": "amd64", "os": "linux", "rootfs": {"type": "layers", "diff_ids": [diff_id or true_diff_id]}}
    ).to_json_bytes()
    config_desc = Descriptor(media_type=mt.OCI_CONFIG, digest=layout.write_blob(config), size=len(config))
    document = ManifestDocument.from_model(Manifest(config=config_desc, layers=[layer]))
    layout.add_manifest(document, ["v1"], platform=Platform(architecture="amd64", os="linux"))
    reference = f"{registry.host}/app:v1"
    api.push(f"oci:{layout.path}:v1", reference, options=options(tmp_path))
    return reference


def _allocated(path: Path) -> int:
    return path.stat().st_blocks * 512


def test_a_layer_that_is_not_its_diff_id_is_refused(registry: LocalRegistry, tmp_path: Path) -> None:
    tar_bytes = ih.layer_tar([ih.file("etc/hello", "hi\n")])
    reference = _push_layer(registry, tmp_path, tar_bytes, diff_id=sha256_of(b"another layer"))
    with pytest.raises(DigestMismatchError, match="diff_id"):
        api.pull_rootfs(reference, str(tmp_path / "rootfs"), options=options(tmp_path))
    assert not (tmp_path / "rootfs").exists()


def test_max_size_stops_a_layer_that_expands_too_far(registry: LocalRegistry, tmp_path: Path) -> None:
    tar_bytes = ih.layer_tar([ih.file("small", b"x" * 1000), ih.file("big", os.urandom(3 * MiB))])
    reference = _push_layer(registry, tmp_path, tar_bytes)
    with pytest.raises(UnsafeArchiveError, match=r"'big'.*size limit"):
        api.pull_rootfs(reference, str(tmp_path / "rootfs"), max_size=2 * MiB, options=options(tmp_path))
    assert not (tmp_path / "rootfs").exists()
    done = run_cli("pull", "--format", "rootfs", "--max-size", "2M", reference, str(tmp_path / "cli"))
    assert done.returncode == 8
    assert_one_line_error(done, "size limit")
    api.pull_rootfs(reference, str(tmp_path / "rootfs"), max_size=4 * MiB, options=options(tmp_path))
    assert (tmp_path / "rootfs" / "big").stat().st_size == 3 * MiB


def test_sparse_entries_and_runs_of_zeros_are_written_as_holes(registry: LocalRegistry, tmp_path: Path) -> None:
    work = tmp_path / "files"
    work.mkdir()
    with open(work / "sparse", "wb") as f:  # 256 MiB apparent, two small data regions
        f.write(b"head")
        f.seek(100 * MiB)
        f.write(b"middle")
        f.truncate(256 * MiB)
    (work / "zeros").write_bytes(bytes(64 * MiB) + b"tail")
    # GNU tar's --sparse writes the first file as a sparse member (type S); the second is a plain member.
    tar_path = tmp_path / "layer.tar"
    subprocess.run(["tar", "--sparse", "--format=gnu", "-cf", str(tar_path), "-C", str(work), "sparse", "zeros"],
                   check=True)  # fmt: skip
    reference = _push_layer(registry, tmp_path, tar_path.read_bytes())
    rootfs = tmp_path / "rootfs"
    api.pull_rootfs(reference, str(rootfs), options=options(tmp_path))
    sparse, zeros = rootfs / "sparse", rootfs / "zeros"
    assert sparse.stat().st_size == 256 * MiB and zeros.stat().st_size == 64 * MiB + 4
    assert _allocated(sparse) < MiB and _allocated(zeros) < 2 * MiB
    with open(sparse, "rb") as f:
        assert f.read(4) == b"head"
        f.seek(100 * MiB)
        assert f.read(6) == b"middle"
        f.seek(256 * MiB - 4)
        assert f.read() == bytes(4)
    with open(zeros, "rb") as f:
        f.seek(64 * MiB)
        assert f.read() == b"tail"
