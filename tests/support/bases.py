"""Real base images for the tests that run what ocipush builds, made once by Debian's own tools and cached.

- `debian`: Debian bookworm minbase from debootstrap, packed by umoci: merged /usr (`/bin -> usr/bin`),
  `/var/run -> /run`, device nodes in /dev, the shape of most real bases.
- `debian-python`: the same with Debian's python3 (3.11), for Python applications.
- `busybox`: busybox-static from Debian's archive with a real /bin directory of applet symlinks, /tmp 1777.

Both come from the machine's configured Debian archive (apt's own sources); when it cannot be reached the base
cannot be made and the test fails, it never skips. Layouts are cached under OCIPUSH_TEST_CACHE (default
~/.cache/ocipush-tests) by recipe version, built in a temporary sibling and renamed, under a lock so that
parallel test workers build each base once."""

from __future__ import annotations

import fcntl
import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Callable
from pathlib import Path

# Bump a recipe's version when the way it is made changes: the cache key includes it.
RECIPES_VERSION = {"debian": "bookworm-minbase-1", "debian-python": "bookworm-python3-1", "busybox": "busybox-static-1"}
SUITE = "bookworm"


def cache_root() -> Path:
    return Path(os.environ.get("OCIPUSH_TEST_CACHE") or Path.home() / ".cache" / "ocipush-tests")


def _run(*argv: str, cwd: Path | None = None, timeout: float = 1200) -> str:
    done = subprocess.run(argv, cwd=cwd, capture_output=True, text=True, timeout=timeout, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} exited {done.returncode}:\n{(done.stderr or done.stdout)[-3000:]}")
    return done.stdout


def debian_mirror() -> str:
    """The Debian archive apt is configured with here (deb822 .sources files first, then sources.list)."""
    candidates: list[str] = []
    sources_d = Path("/etc/apt/sources.list.d")
    for path in sorted(sources_d.glob("*.sources")) if sources_d.is_dir() else []:
        for block in path.read_text().split("\n\n"):
            fields = dict(re.findall(r"^([A-Za-z-]+):\s*(.*)$", block, re.MULTILINE))
            if SUITE in fields.get("Suites", "").split() and "main" in fields.get("Components", "").split():
                candidates += fields.get("URIs", "").split()
    legacy = Path("/etc/apt/sources.list")
    if legacy.is_file():
        candidates += re.findall(rf"^deb\s+(?:\[[^]]*\]\s+)?(\S+)\s+{SUITE}\s.*\bmain\b", legacy.read_text(), re.M)
    if not candidates:
        raise RuntimeError(f"no Debian {SUITE} archive with 'main' is configured for apt on this machine")
    return candidates[0]


def _pack(rootfs: Path, layout: Path, cmd: str) -> None:
    """An OCI layout (tag latest) with `rootfs` as its one layer, made by umoci (owners and devices kept)."""
    _run("umoci", "init", "--layout", str(layout))
    _run("umoci", "new", "--image", f"{layout}:latest")
    _run("umoci", "insert", "--image", f"{layout}:latest", str(rootfs), "/")
    _run("umoci", "config", "--image", f"{layout}:latest", "--config.cmd", cmd, "--architecture", "amd64", "--os",
         "linux")  # fmt: skip
    _run("umoci", "gc", "--layout", str(layout))


def make_debian(workdir: Path, layout: Path, include: tuple[str, ...] = ()) -> None:
    rootfs = workdir / "rootfs"
    extra = [f"--include={','.join(include)}"] if include else []
    _run("debootstrap", "--variant=minbase", *extra, SUITE, str(rootfs), debian_mirror())
    # apt's lists and caches are not part of a base image (as in the official debian images).
    for junk in ("var/cache/apt/archives", "var/lib/apt/lists"):
        for child in (rootfs / junk).glob("*"):
            if child.is_file():
                child.unlink()
    _pack(rootfs, layout, "/bin/bash")


def make_busybox(workdir: Path, layout: Path) -> None:
    _run("apt-get", "download", "busybox-static", cwd=workdir)
    deb = next(workdir.glob("busybox-static_*.deb"))
    unpacked = workdir / "deb"
    _run("dpkg-deb", "-x", str(deb), str(unpacked))
    rootfs = workdir / "rootfs"
    for directory in ("bin", "etc", "usr/bin", "usr/local/bin", "var/run", "root", "home"):
        (rootfs / directory).mkdir(parents=True, exist_ok=True)
    (rootfs / "tmp").mkdir(mode=0o1777)
    os.chmod(rootfs / "tmp", 0o1777)
    shutil.copy2(unpacked / "bin" / "busybox", rootfs / "bin" / "busybox")
    for applet in _run(str(rootfs / "bin" / "busybox"), "--list").split():
        if applet != "busybox":
            os.symlink("busybox", rootfs / "bin" / applet)
    (rootfs / "etc" / "passwd").write_text("root:x:0:0:root:/root:/bin/sh\n")
    (rootfs / "etc" / "group").write_text("root:x:0:\n")
    _pack(rootfs, layout, "/bin/sh")


def make_debian_python(workdir: Path, layout: Path) -> None:
    make_debian(workdir, layout, include=("python3",))


RECIPES: dict[str, Callable[[Path, Path], None]] = {
    "debian": make_debian,
    "debian-python": make_debian_python,
    "busybox": make_busybox,
}


def cached_base(name: str) -> Path:
    """The OCI layout of base `name`, made on first use and reused afterwards (by every worker and run)."""
    root = cache_root() / "bases"
    root.mkdir(parents=True, exist_ok=True)
    final = root / f"{name}-{RECIPES_VERSION[name]}"
    with open(root / f".{name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if (final / "index.json").is_file():
            return final
        # Build next to the cache (same filesystem) so that the finished layout appears by one rename.
        with tempfile.TemporaryDirectory(prefix=f".{name}-", dir=root) as scratch:
            work = Path(scratch)
            RECIPES[name](work, work / "layout")
            os.replace(work / "layout", final)
    return final


def push_base(layout: Path, registry_host: str, repo: str, tag: str = "latest") -> str:
    """Copy a cached base into a registry on 127.0.0.1 as a Docker v2s2 image (as skopeo users do); its ref."""
    ref = f"{registry_host}/{repo}:{tag}"
    _run("skopeo", "copy", "--quiet", "--dest-tls-verify=false", "--format", "v2s2", f"oci:{layout}:latest",
         f"docker://{ref}")  # fmt: skip
    return ref
