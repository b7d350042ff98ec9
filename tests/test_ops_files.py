"""flatten, export, cat and blob get against the real registry; umoci (unpacking the original and the flattened
image) is the judge of what the filesystem is."""

from __future__ import annotations

import io
import json
import subprocess
import tarfile
from pathlib import Path

import imagehelpers as ih
import pytest
from test_extract import LOWER, MIDDLE, UPPER, tree
from transferhelpers import assert_cli_errors, options, push_two_platform_index, run_cli

from ocipush import api
from ocipush import mediatypes as mt
from ocipush.extract import apply_layer
from ocipush.layout import OCILayout
from ocipush.localregistry import LocalRegistry
from ocipush.ops.files import cat, get_blob
from ocipush.ops.flatten import export, flatten

# A link made in a lower layer that a higher layer writes through, and a file replaced by a directory.
THROUGH_LINK = [ih.symlink("lib", "usr/lib"), ih.dir("usr/lib"), ih.file("usr/lib/base.so", "base")]
ON_TOP = [ih.file("lib/app.so", "app"), ih.dir("secret"), ih.file("secret/now-a-dir", "d")]


@pytest.fixture
def pushed(registry: LocalRegistry, tmp_path: Path) -> str:
    """A five-layer image with whiteouts, opaque directories, hard and symbolic links, in the registry."""
    layout = OCILayout(str(tmp_path / "layout"), create=True)
    layers = [(LOWER, "gzip"), (MIDDLE, "none"), (UPPER, "gzip"), (THROUGH_LINK, "gzip"), (ON_TOP, "gzip")]
    ih.build_image(layout, layers)
    reference = f"{registry.host}/layers:1"
    api.push(f"oci:{layout.path}:latest", reference, options=options(tmp_path))
    return reference


def umoci_rootfs(reference: str, tmp_path: Path, name: str) -> Path:
    api.pull(reference, f"oci:{tmp_path / name}:img", options=options(tmp_path))
    bundle = tmp_path / f"{name}-bundle"
    subprocess.run(["umoci", "unpack", "--rootless", "--image", f"{tmp_path / name}:img", str(bundle)],
                   check=True, capture_output=True)  # fmt: skip
    return bundle / "rootfs"


def test_flattened_image_unpacks_to_the_same_rootfs(pushed: str, registry: LocalRegistry, tmp_path: Path) -> None:
    result = flatten(pushed, "flat", options=options(tmp_path))
    flat = f"{registry.host}/layers:flat"
    found = api.inspect(flat, options=options(tmp_path))
    assert found.digest == result.digest
    assert len(found.manifest["layers"]) == 1 and found.manifest["layers"][0]["mediaType"] == mt.OCI_LAYER_GZIP
    assert found.config is not None and len(found.config["rootfs"]["diff_ids"]) == 1
    assert flatten(pushed, "again", options=options(tmp_path)).digest == result.digest  # reproducible
    original = tree(umoci_rootfs(pushed, tmp_path, "original"))
    assert tree(umoci_rootfs(flat, tmp_path, "flat")) == original
    assert original["usr/lib/app.so"][0] == "file" and "etc/app.conf" not in original  # the cases did occur


def test_export_is_the_same_filesystem(pushed: str, tmp_path: Path) -> None:
    out = tmp_path / "fs.tar"
    done = run_cli("export", pushed, "-o", str(out), "--cache-dir", str(tmp_path / "cache"))
    assert done.returncode == 0, done.stderr
    unpacked = tmp_path / "exported"
    unpacked.mkdir()
    with open(out, "rb") as stream:
        apply_layer(stream, mt.OCI_LAYER, str(unpacked))
    assert tree(unpacked) == tree(umoci_rootfs(pushed, tmp_path, "original"))
    buffer = io.BytesIO()
    entries = export(pushed, buffer, options=options(tmp_path))
    assert buffer.getvalue() == out.read_bytes()  # the library call writes the same stream
    with tarfile.open(fileobj=io.BytesIO(buffer.getvalue())) as written:
        assert entries == len(written.getmembers())


def test_cat_reads_files_down_to_the_bottom_layer(pushed: str, tmp_path: Path) -> None:
    out = io.BytesIO()
    assert cat(pushed, "/etc/passwd", out, options=options(tmp_path)) == len(b"root:x:0:0\n")
    assert out.getvalue() == b"root:x:0:0\n"  # in the bottom layer
    through = io.BytesIO()
    cat(pushed, "lib/app.so", through, options=options(tmp_path))  # lib -> usr/lib, written through the link
    assert through.getvalue() == b"app"
    done = run_cli("cat", pushed, "/bin/tool", "--cache-dir", str(tmp_path / "cache"))
    assert done.returncode == 0 and done.stdout == "#!/bin/sh\n"
    cases = [
        (["cat", pushed, "/etc/app.conf"], 3, "is not in the filesystem"),  # whited out in the middle layer
        (["cat", pushed, "/var/cache/x"], 3, "is not in the filesystem"),  # its directory was whited out
        (["cat", pushed, "/etc"], 2, "not a regular file"),
        (["cat", pushed, "/"], 2, "root directory"),
    ]
    assert_cli_errors(cases, "--cache-dir", str(tmp_path / "cache"))


def test_blob_get_verifies_and_writes_atomically(pushed: str, tmp_path: Path) -> None:
    found = api.inspect(pushed, options=options(tmp_path))
    config_digest = found.manifest["config"]["digest"]
    out = io.BytesIO()
    get_blob(pushed, config_digest, out, options=options(tmp_path))
    assert json.loads(out.getvalue()) == found.config
    target = tmp_path / "layer.tgz"
    layer = found.manifest["layers"][0]
    done = run_cli("blob", "get", pushed, layer["digest"], "-o", str(target), "--cache-dir", str(tmp_path / "c"))
    assert done.returncode == 0, done.stderr
    assert target.stat().st_size == layer["size"]
    missing = tmp_path / "missing.bin"
    cases = [
        (["blob", "get", pushed, "sha256:" + "5" * 64, "-o", str(missing)], 3, "is not in"),
        (["blob", "get", pushed, "sha256:nothex", "-o", str(missing)], 2, "invalid digest"),
    ]
    assert_cli_errors(cases)
    assert not missing.exists()  # nothing half-written


def test_flatten_bad_inputs(registry: LocalRegistry, tmp_path: Path) -> None:
    index = push_two_platform_index(registry.host, tmp_path)
    cache = ["--cache-dir", str(tmp_path / "cache")]
    cases = [
        (["flatten", index, "--tag", "flat"], 2, "is an index"),
        (["flatten", index, "--tag", "flat", "--platform", "linux/s390x"], 3, "no image for platform linux/s390x"),
        (["flatten", f"{registry.host}/none:1", "--tag", "flat"], 3, "none"),
    ]
    assert_cli_errors(cases, *cache)
    done = run_cli("flatten", index, "--tag", "flat-arm", "--platform", "linux/arm64", "-q", *cache)
    assert done.returncode == 0, done.stderr
    found = api.inspect(f"{registry.host}/multi:flat-arm", options=options(tmp_path))
    assert found.config is not None and found.config["architecture"] == "arm64"
