"""Layer application: whiteouts, links, modes, equality with umoci, and every unsafe entry refused."""

from __future__ import annotations

import io
import os
import stat
import subprocess
from pathlib import Path

import pytest
from imagehelpers import E, build_image, dir, file, hardlink, layer_tar, symlink, whiteout
from support.unprivileged import NOBODY, nobody_dir, python_as_nobody

from ocipush import mediatypes as mt
from ocipush.errors import DigestMismatchError, UnsafeArchiveError, UsageError
from ocipush.extract import apply_layer, extract_layers
from ocipush.layout import OCILayout


def manifest_of(layout: OCILayout, tag: str = "latest"):  # type: ignore[no-untyped-def]
    return layout.read_manifest(layout.resolve(tag)).manifest


def tree(root: Path) -> dict[str, tuple[str, object]]:
    """name -> (kind, content or symlink target, mode) for every path under root."""
    out: dict[str, tuple[str, object]] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            path = Path(dirpath, name)
            rel = str(path.relative_to(root))
            st = path.lstat()
            if stat.S_ISLNK(st.st_mode):
                out[rel] = ("link", os.readlink(path))
            elif stat.S_ISDIR(st.st_mode):
                out[rel] = ("dir", stat.S_IMODE(st.st_mode))
            else:
                out[rel] = ("file", (path.read_bytes(), stat.S_IMODE(st.st_mode)))
    return out


LOWER = [
    dir("etc"),
    file("etc/passwd", "root:x:0:0\n"),
    file("etc/app.conf", "old"),
    dir("bin"),
    file("bin/tool", "#!/bin/sh\n", 0o4755),
    dir("opt/app/sub"),
    file("opt/app/a", "a"),
    file("opt/app/sub/deep", "deep"),
    dir("var/cache"),
    file("var/cache/x", "x"),
    symlink("etc/localtime", "/usr/share/zoneinfo/UTC"),
]
MIDDLE = [
    whiteout("etc/.wh.app.conf"),
    file("etc/app.d/default.cfg", "new"),
    dir("opt/app"),
    whiteout("opt/app/.wh..wh..opq"),
    file("opt/app/b", "b"),
    whiteout(".wh.var"),
    hardlink("bin/tool2", "bin/tool"),
    file("secret", "s", 0o600),
    whiteout("nowhere/deeper/.wh.x"),  # hides nothing, creates nothing
    whiteout("gone/.wh..wh..opq"),
]
UPPER = [
    file("var/new", "recreated"),  # var was deleted below and comes back as a fresh directory
    file("opt/app/c", "c"),
    dir("opt/app"),
    file("opt/app/d", "d"),
    whiteout("opt/app/.wh.c"),  # a whiteout never hides what its own layer wrote
    whiteout("opt/app/.wh.b"),
    symlink("lib", "usr/lib"),
    dir("usr/lib"),
    file("lib/libc.so", "elf"),  # written through an in-root symlink: lands in usr/lib
]


@pytest.fixture
def image(tmp_path: Path) -> OCILayout:
    layout = OCILayout(str(tmp_path / "layout"), create=True)
    build_image(layout, [(LOWER, "gzip"), (MIDDLE, "zstd"), (UPPER, "none")])
    return layout


def test_layers_whiteouts_links_and_modes(image: OCILayout, tmp_path: Path) -> None:
    root = tmp_path / "rootfs"
    extract_layers(image, manifest_of(image), str(root))
    got = tree(root)
    assert sorted(got) == sorted(
        [
            "bin", "bin/tool", "bin/tool2", "etc", "etc/app.d", "etc/app.d/default.cfg", "etc/localtime",
            "etc/passwd", "lib", "opt", "opt/app", "opt/app/c", "opt/app/d", "secret", "usr", "usr/lib",
            "usr/lib/libc.so", "var", "var/new",
        ]
    )  # fmt: skip
    assert got["bin/tool"] == ("file", (b"#!/bin/sh\n", 0o4755))
    assert got["secret"] == ("file", (b"s", 0o600))
    assert got["etc/localtime"] == ("link", "/usr/share/zoneinfo/UTC")
    assert os.stat(root / "bin/tool").st_ino == os.stat(root / "bin/tool2").st_ino
    assert (root / "usr/lib/libc.so").read_bytes() == b"elf"
    assert os.stat(root / "etc/passwd").st_mtime == 1_700_000_000
    assert os.stat(root / "opt/app").st_mtime == 1_700_000_000  # directory times survive writes into them
    assert not any(".wh." in name for name in got)


def test_same_tree_as_umoci(tmp_path: Path) -> None:
    image = OCILayout(str(tmp_path / "layout"), create=True)
    build_image(image, [(LOWER, "gzip"), (MIDDLE, "none"), (UPPER, "gzip")])  # umoci 0.4.7 has no zstd
    ours = tmp_path / "ours"
    extract_layers(image, manifest_of(image), str(ours))
    bundle = tmp_path / "bundle"
    subprocess.run(
        ["umoci", "unpack", "--rootless", "--image", f"{image.path}:latest", str(bundle)],
        check=True,
        capture_output=True,
    )
    assert tree(ours) == tree(bundle / "rootfs")


def test_opaque_directory_recreated_in_same_layer(tmp_path: Path) -> None:
    layout = OCILayout(str(tmp_path / "layout"), create=True)
    lower = [dir("a/b/c"), file("a/b/c/bar", "bar"), file("a/top", "t")]
    upper = [dir("a"), dir("a/b"), dir("a/b/c"), file("a/b/c/foo", "foo"), whiteout("a/.wh..wh..opq")]
    build_image(layout, [(lower, "gzip"), (upper, "gzip")])
    root = tmp_path / "root"
    extract_layers(layout, manifest_of(layout), str(root))
    assert sorted(tree(root)) == ["a", "a/b", "a/b/c", "a/b/c/foo"]


def test_entry_replaces_other_kind_and_absolute_names_are_relative(tmp_path: Path) -> None:
    layout = OCILayout(str(tmp_path / "layout"), create=True)
    lower = [dir("x/inner"), file("x/inner/f"), file("y", "file")]
    upper = [file("/x", "now a file"), dir("/y"), file("/etc/hosts", "h")]
    build_image(layout, [(lower, "gzip"), (upper, "gzip")])
    root = tmp_path / "root"
    extract_layers(layout, manifest_of(layout), str(root))
    assert (root / "x").read_text() == "now a file"
    assert (root / "y").is_dir()
    assert (root / "etc/hosts").read_text() == "h"


def test_refuses_non_empty_target_unless_overwrite(image: OCILayout, tmp_path: Path) -> None:
    root = tmp_path / "root"
    root.mkdir()
    (root / "keep").write_text("k")
    with pytest.raises(UsageError, match="not empty"):
        extract_layers(image, manifest_of(image), str(root))
    extract_layers(image, manifest_of(image), str(root), overwrite=True)
    assert (root / "keep").read_text() == "k"
    assert (root / "etc/passwd").exists()


def test_corrupt_layer_blob_is_reported(image: OCILayout, tmp_path: Path) -> None:
    manifest = manifest_of(image)
    plain = manifest.layers[2]
    assert plain.media_type == mt.OCI_LAYER
    blob = Path(image.blob_path(plain.digest))
    blob.write_bytes(blob.read_bytes()[:-1] + b"x")  # only the end-of-archive padding changes
    with pytest.raises(DigestMismatchError):
        extract_layers(image, manifest, str(tmp_path / "root"))


def test_damaged_compressed_stream_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="damaged"):
        apply_layer(io.BytesIO(b"\x1f\x8b\x08\0garbage"), mt.OCI_LAYER_GZIP, str(tmp_path))


DEVICES = [E("dev/null", "chr", mode=0o666), E("run/pipe", "fifo", mode=0o600)]


def test_devices_as_root_unless_refused(tmp_path: Path) -> None:
    assert os.geteuid() == 0, "the test suite runs as root, like a CI container"
    layer = layer_tar(DEVICES)
    (tmp_path / "root").mkdir()
    (tmp_path / "refused").mkdir()
    apply_layer(io.BytesIO(layer), mt.OCI_LAYER, str(tmp_path / "root"))
    null = (tmp_path / "root/dev/null").lstat()
    assert stat.S_ISCHR(null.st_mode) and stat.S_IMODE(null.st_mode) == 0o666
    assert (os.major(null.st_rdev), os.minor(null.st_rdev)) == (1, 3)
    assert stat.S_ISFIFO((tmp_path / "root/run/pipe").lstat().st_mode)
    with pytest.raises(UnsafeArchiveError, match="'dev/null': device nodes and fifos were refused on request"):
        apply_layer(io.BytesIO(layer), mt.OCI_LAYER, str(tmp_path / "refused"), allow_devices=False)


def test_without_root_device_nodes_are_refused_with_the_reason() -> None:
    code = """
import io, sys
from ocipush import mediatypes as mt
from ocipush.errors import UnsafeArchiveError
from ocipush.extract import apply_layer
try:
    apply_layer(io.BytesIO(bytes.fromhex(sys.argv[1])), mt.OCI_LAYER, sys.argv[2])
except UnsafeArchiveError as exc:
    print(exc)
"""
    with nobody_dir() as work:
        (work / "a").mkdir()
        (work / "b").mkdir()
        os.chown(work / "a", NOBODY, NOBODY)
        os.chown(work / "b", NOBODY, NOBODY)
        device = run_as_nobody_python(code, layer_tar(DEVICES[:1]), work / "a")
        fifo = run_as_nobody_python(code, layer_tar(DEVICES[1:]), work / "b")
        assert stat.S_ISFIFO((work / "b/run/pipe").lstat().st_mode)  # mkfifo needs no privilege
    assert device == "refusing 'dev/null': creating device nodes needs root (running as uid 65534); pull as root, " \
        "or into an oci: layout or docker-archive: file, which keep them as tar entries"
    assert fifo == ""


def run_as_nobody_python(code: str, layer: bytes, target: Path) -> str:
    done = python_as_nobody(code, layer.hex(), str(target))
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def unsafe_cases(outside: str) -> dict[str, list[list[E]]]:
    return {
        "dotdot": [[file("../escaped", "x")]],
        "dotdot-inner": [[dir("a"), file("a/../../escaped", "x")]],
        "abs-symlink-then-write": [[symlink("a", outside), file("a/escaped", "x")]],
        "rel-symlink-then-write": [[symlink("a", "../outside"), file("a/escaped", "x")]],
        "symlink-chain-then-write": [[symlink("a", "b"), symlink("b", "../outside"), file("a/escaped", "x")]],
        "symlink-in-lower-layer": [[symlink("etc", outside)], [file("etc/escaped", "x")]],
        "symlink-then-dir": [[symlink("a", outside), dir("a/escaped")]],
        "symlink-then-symlink": [[symlink("a", outside), symlink("a/escaped", "/x")]],
        "hardlink-etc-passwd": [[hardlink("pw", "/etc/passwd")]],
        "hardlink-dotdot": [[hardlink("pw", "../outside/secret")]],
        "hardlink-through-symlink": [[symlink("a", outside), hardlink("pw", "a/secret")]],
        "whiteout-through-symlink": [[symlink("a", outside)], [whiteout("a/.wh.secret")]],
        "opaque-through-symlink": [[symlink("a", outside)], [whiteout("a/.wh..wh..opq")]],
        "whiteout-of-parent": [[file("keep", "x")], [whiteout(".wh...")]],
        "whiteout-of-self": [[file("keep", "x")], [whiteout("sub/.wh..")]],
        "char-device": [[E("dev/null", "chr", mode=0o666)]],
        "fifo": [[E("run/pipe", "fifo", mode=0o600)]],
    }


@pytest.mark.parametrize("case", sorted(unsafe_cases("/")))
def test_unsafe_entries_are_refused(case: str, tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret").write_text("keep me")
    before = tree(outside)
    layout = OCILayout(str(tmp_path / "layout"), create=True)
    layers = unsafe_cases(str(outside))[case]
    build_image(layout, [(entries, "gzip") for entries in layers])
    target = tmp_path / "target"
    with pytest.raises(UnsafeArchiveError, match="refusing") as err:
        extract_layers(layout, manifest_of(layout), str(target), allow_devices=False)
    assert "\n" not in str(err.value)
    assert tree(outside) == before
    assert not (tmp_path / "escaped").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["layout", "outside", "target"]
