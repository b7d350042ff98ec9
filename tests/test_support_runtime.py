"""The container harness itself: both bases have the shape the builder tests rely on, and podman and buildah run
and commit images from a registry on 127.0.0.1 in this sandbox."""

from __future__ import annotations

from pathlib import Path

from support.bases import push_base
from support.runtime import Buildah, Podman

from ocipush.localregistry import LocalRegistry

SHAPE = "stat -c '%n %F %a %u' /bin /tmp /usr /etc; readlink /bin /var/run; echo ran"


def test_bases_run_under_podman_with_their_own_shapes(
    podman: Podman, registry: LocalRegistry, debian_base: Path, busybox_base: Path
) -> None:
    debian = podman.run(push_base(debian_base, registry.host, "base/debian"), "/bin/sh", "-c", SHAPE).splitlines()
    # Merged /usr: /bin is a symlink; /var/run points at /run; /tmp is sticky and world-writable.
    assert "/bin symbolic link 777 0" in debian
    assert "/tmp directory 1777 0" in debian
    assert debian[-3:] == ["usr/bin", "/run", "ran"]

    busybox = podman.run(push_base(busybox_base, registry.host, "base/busybox"), "/bin/sh", "-c", SHAPE)
    lines = busybox.splitlines()
    assert "/bin directory 755 0" in lines
    assert "/tmp directory 1777 0" in lines
    assert lines[-1] == "ran"


def test_buildah_commits_what_podman_runs(
    buildah: Buildah, podman: Podman, registry: LocalRegistry, busybox_base: Path, tmp_path: Path
) -> None:
    ref = push_base(busybox_base, registry.host, "base/busybox")
    container = buildah.cmd("from", "--quiet", "--tls-verify=false", ref).stdout.strip()
    (tmp_path / "hello.txt").write_text("from buildah\n")
    buildah.cmd("copy", container, str(tmp_path / "hello.txt"), "/opt/hello.txt")
    buildah.cmd("commit", "--quiet", container, "localhost/harness:buildah")
    out = podman.run("localhost/harness:buildah", "cat", "/opt/hello.txt", pull=False)
    assert out == "from buildah\n"
