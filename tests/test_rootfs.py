"""`pull --format rootfs` of real images: the same tree as umoci, devices as root only, and no half-made targets."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from imagehelpers import E, build_image, dir, file
from support.bases import push_base
from support.unprivileged import NOBODY, nobody_dir, run_as_nobody
from transferhelpers import options

from ocipush import api
from ocipush.cli import main
from ocipush.errors import DigestMismatchError, UnsafeArchiveError
from ocipush.layout import OCILayout
from ocipush.localregistry import LocalRegistry

Listing = dict[str, tuple[object, ...]]


def listing(root: Path) -> Listing:
    """What `find -printf '%P %y %m %U %G %l %n'` shows, plus device numbers (mtimes aside), for every path."""
    out: Listing = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            path = Path(dirpath, name)
            st = path.lstat()
            kind = stat.S_IFMT(st.st_mode)
            link = os.readlink(path) if stat.S_ISLNK(st.st_mode) else ""
            device = (os.major(st.st_rdev), os.minor(st.st_rdev)) if stat.S_ISCHR(st.st_mode) else None
            out[str(path.relative_to(root))] = (kind, stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid, link,
                                                st.st_nlink, device, st.st_size)  # fmt: skip
    return out


def hardlink_groups(root: Path) -> set[frozenset[str]]:
    groups: dict[int, set[str]] = {}
    for dirpath, _, filenames in os.walk(root):
        for name in filenames:
            path = Path(dirpath, name)
            st = path.lstat()
            if stat.S_ISREG(st.st_mode) and st.st_nlink > 1:
                groups.setdefault(st.st_ino, set()).add(str(path.relative_to(root)))
    return {frozenset(g) for g in groups.values()}


def cli(*argv: str) -> int:
    return main(list(argv))


@pytest.fixture(autouse=True)
def _cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OCIPUSH_CACHE_DIR", str(tmp_path / "cache"))


def test_debian_rootfs_as_root_matches_umoci(registry: LocalRegistry, debian_base: Path, tmp_path: Path) -> None:
    ref = push_base(debian_base, registry.host, "debian")
    ours = tmp_path / "ours"
    assert cli("pull", "--format", "rootfs", ref, str(ours)) == 0
    bundle = tmp_path / "bundle"
    subprocess.run(["umoci", "unpack", "--image", f"{debian_base}:latest", str(bundle)], check=True,
                   capture_output=True)  # fmt: skip
    theirs = bundle / "rootfs"
    got, want = listing(ours), listing(theirs)
    assert sorted(set(got) ^ set(want)) == []
    assert {p: got[p] for p in got if got[p] != want[p]} == {}
    assert hardlink_groups(ours) == hardlink_groups(theirs)
    assert got["dev/null"][0] == stat.S_IFCHR and got["dev/null"][6] == (1, 3)  # devices were made
    assert got["bin"][0] == stat.S_IFLNK and got["bin"][4] == "usr/bin"  # merged /usr
    assert stat.S_IMODE(ours.stat().st_mode) == 0o755
    assert not [p.name for p in tmp_path.iterdir() if ".partial" in p.name]


def device_image(path: Path) -> OCILayout:
    layout = OCILayout(str(path), create=True)
    build_image(layout, [([dir("etc"), file("etc/hostname", "box\n")], "gzip"),
                         ([E("dev/null", "chr", mode=0o666), E("run/pipe", "fifo", mode=0o600)], "gzip")])  # fmt: skip
    return layout


def test_devices_refused_on_request_and_without_root(registry: LocalRegistry, tmp_path: Path) -> None:
    layout = device_image(tmp_path / "src")
    ref = f"{registry.host}/dev:1"
    api.push(f"oci:{layout.path}:latest", ref, options=options(tmp_path))
    # As root with --no-devices: refused, exit 8, and no target left behind.
    target = tmp_path / "refused"
    assert cli("pull", "--format", "rootfs", "--no-devices", ref, str(target)) == 8
    assert not target.exists()
    with pytest.raises(UnsafeArchiveError, match="'dev/null': device nodes and fifos were refused on request"):
        api.pull_rootfs(ref, str(target), allow_devices=False, options=options(tmp_path))
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []
    # Without root: the CLI says why, in one line, and leaves nothing.
    with nobody_dir() as work:
        env = {**os.environ, "OCIPUSH_CACHE_DIR": str(work / "cache"), "HOME": str(work)}
        done = run_as_nobody(sys.executable, "-m", "ocipush.cli", "pull", "--format", "rootfs", ref,
                             str(work / "rootfs"), env=env)  # fmt: skip
        assert done.returncode == 8, done.stderr
        assert done.stderr.strip().splitlines()[-1].endswith(
            f"refusing 'dev/null': creating device nodes needs root (running as uid {NOBODY}); pull as root, "
            "or into an oci: layout or docker-archive: file, which keep them as tar entries"
        )
        assert sorted(p.name for p in work.iterdir()) == ["cache"]


def test_failed_pulls_leave_no_target(registry: LocalRegistry, tmp_path: Path) -> None:
    layout = device_image(tmp_path / "src")
    ref = f"{registry.host}/app:1"
    api.push(f"oci:{layout.path}:latest", ref, options=options(tmp_path))
    unsafe = OCILayout(str(tmp_path / "unsafe"), create=True)
    build_image(unsafe, [([file("etc/hostname", "box\n")], "gzip"), ([file("../escaped", "x")], "gzip")])
    unsafe_ref = f"{registry.host}/unsafe:1"
    api.push(f"oci:{unsafe.path}:latest", unsafe_ref, options=options(tmp_path))
    manifest = layout.read_manifest(layout.resolve("latest")).manifest
    # A layer the registry serves damaged: the second one.
    stored = next((tmp_path / "storage").rglob(f"blobs/sha256/*/{manifest.layers[1].digest[7:]}/data"))
    good = stored.read_bytes()
    stored.write_bytes(good[:-1] + bytes([good[-1] ^ 1]))
    work = tmp_path / "work"
    work.mkdir()
    out = work / "out"
    with pytest.raises(DigestMismatchError):
        api.pull(ref, f"docker-archive:{out}", options=options(tmp_path))
    assert list(work.iterdir()) == []
    with pytest.raises(DigestMismatchError):
        api.pull_rootfs(ref, str(out), options=options(tmp_path))
    assert list(work.iterdir()) == []
    # The first layer applied, the second refused: the half-made tree goes too.
    with pytest.raises(UnsafeArchiveError):
        api.pull_rootfs(unsafe_ref, str(out), options=options(tmp_path))
    assert list(work.iterdir()) == []
    # An existing empty directory stays empty after a failure, and is filled (keeping its mode) after success.
    out.mkdir(mode=0o750)
    with pytest.raises(UnsafeArchiveError):
        api.pull_rootfs(unsafe_ref, str(out), options=options(tmp_path))
    assert list(out.iterdir()) == []
    stored.write_bytes(good)
    api.pull_rootfs(ref, str(out), options=options(tmp_path))
    assert (out / "etc/hostname").read_text() == "box\n"
    assert stat.S_ISCHR((out / "dev/null").lstat().st_mode)
    assert stat.S_IMODE(out.stat().st_mode) == 0o750
    assert [p.name for p in work.iterdir()] == ["out"]
    # A symlink to an empty directory: the directory is filled, the link stays a link.
    (work / "real").mkdir()
    (work / "link").symlink_to("real")
    api.pull_rootfs(ref, str(work / "link"), options=options(tmp_path))
    assert (work / "link").is_symlink() and (work / "real/etc/hostname").read_text() == "box\n"
    assert sorted(p.name for p in work.iterdir()) == ["link", "out", "real"]
