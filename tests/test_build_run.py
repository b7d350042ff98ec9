"""Images built on real bases run, and the base's filesystem survives the layers: proven with podman, and
compared with the same build done by buildah.

Two bases from tests/support/bases.py: Debian bookworm minbase (merged /usr: `/bin -> usr/bin`, `/var/run -> /run`)
pushed as Docker v2s2 by skopeo, and busybox-static with a real /bin directory. On each, one build of several
layers whose destinations go through the base's directories and symlinks, with `--chown 1000:1000 --user 1000`."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from support.bases import push_base
from support.runtime import Buildah, Podman
from transferhelpers import run_cli

from ocipush.localregistry import LocalRegistry

# (source directory, DEST): under a symlink on Debian, into an existing directory, under /tmp and /var/run,
# and onto /etc itself from a 0700 source.
LAYERS = [
    ("tools", "/bin/mytools"),
    ("local", "/usr/local/bin"),
    ("tmpsrc", "/tmp/app"),
    ("runsrc", "/var/run/app"),
    ("etcsrc", "/etc"),
]
ADDED = [
    "/bin/mytools", "/bin/mytools/mytool", "/usr/local/bin/apptool", "/tmp/app", "/tmp/app/data.txt",
    "/var/run/app", "/var/run/app/pid.txt", "/etc/appconf.txt",
]  # fmt: skip
CHECKS = f"""set -e
/bin/sh -c 'echo shell works'
/bin/mytools/mytool
/usr/local/bin/apptool
echo "uid $(id -u)"
stat -c '%n %F %a %u %g' /bin /usr /etc /tmp
stat -c 'added %n %u %g' {" ".join(ADDED)}
echo "bin link: $(readlink /bin || true)"
echo "bin entries: $(ls /bin | wc -l)"
touch /tmp/written-by-app
stat -c 'wrote %n %u' /tmp/written-by-app
"""


def sources(root: Path) -> Path:
    for name, _ in LAYERS:
        (root / name).mkdir(parents=True)
    tool = root / "tools" / "mytool"
    tool.write_text("#!/bin/sh\necho mytool works\n")
    app = root / "local" / "apptool"
    app.write_text("#!/bin/sh\necho apptool works\n")
    for script in (tool, app):
        script.chmod(0o755)
    (root / "tmpsrc" / "data.txt").write_text("data\n")
    (root / "runsrc" / "pid.txt").write_text("1\n")
    (root / "etcsrc" / "appconf.txt").write_text("conf\n")
    (root / "etcsrc").chmod(0o700)
    return root


def tree(podman: Podman, image: str) -> list[str]:
    """`find / -xdev` of a container of `image` (types, modes, owners, link targets; no times), read through the
    container's own root filesystem mount (busybox's find has no -printf)."""
    container = podman.cmd("create", image).stdout.strip()
    try:
        mount = podman.cmd("mount", container).stdout.strip()
        listing = subprocess.run(
            ["find", mount, "-xdev", "-printf", "/%P %y %m %U %G %l\\n"],
            capture_output=True, text=True, check=True,
        ).stdout  # fmt: skip
    finally:
        podman.cmd("rm", "--force", container)
    return sorted(listing.splitlines())


def buildah_build(buildah: Buildah, base: str, src: Path, tag: str) -> None:
    container = buildah.cmd("from", "--quiet", "--tls-verify=false", base).stdout.strip()
    for name, dest in LAYERS:
        buildah.cmd("copy", "--chown", "1000:1000", container, str(src / name), dest)
    buildah.cmd("config", "--user", "1000", container)
    buildah.cmd("commit", "--quiet", "--rm", container, tag)


@pytest.mark.parametrize("base_name", ["debian", "busybox"])
def test_built_image_runs_and_matches_buildah(
    base_name: str,
    request: pytest.FixtureRequest,
    registry: LocalRegistry,
    podman: Podman,
    buildah: Buildah,
    tmp_path: Path,
) -> None:
    base = push_base(request.getfixturevalue(f"{base_name}_base"), registry.host, f"base/{base_name}")
    src = sources(tmp_path / "src")
    image = f"{registry.host}/app/{base_name}:ocipush"
    layers = [arg for name, dest in LAYERS for arg in ("--layer", f"{src / name}:{dest}")]
    done = run_cli(
        "build-push", "--no-build-file", "--from", base, *layers, "--chown", "1000:1000", "--user", "1000",
        "--tag", image, "--cache-dir", str(tmp_path / "cache"),
    )  # fmt: skip
    assert done.returncode == 0, done.stderr

    lines = podman.run(image, "/bin/sh", "-c", CHECKS).splitlines()
    assert lines[:4] == ["shell works", "mytool works", "apptool works", "uid 1000"]
    assert "/usr directory 755 0 0" in lines
    assert "/etc directory 755 0 0" in lines  # the 0700 source did not make /etc private
    assert "/tmp directory 1777 0 0" in lines
    if base_name == "debian":
        assert "/bin symbolic link 777 0 0" in lines
        assert "bin link: usr/bin" in lines
    else:
        assert "/bin directory 755 0 0" in lines
        applets = int(next(line for line in lines if line.startswith("bin entries:")).split()[-1])
        assert applets > 100  # busybox's applets are all still there
    assert [line for line in lines if line.startswith("added ")] == [f"added {p} 1000 1000" for p in ADDED]
    assert lines[-1] == "wrote /tmp/written-by-app 1000"

    twin = f"localhost/app-{base_name}:buildah"
    buildah_build(buildah, base, src, twin)
    podman.pull(image)
    assert tree(podman, image) == tree(podman, twin)
