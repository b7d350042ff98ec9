"""Real container runtimes for the tests: podman and buildah as root in a sandbox, with storage in a temp dir.

Defaults fail here (no systemd cgroups, low default limits, no network set-up), so every call gets the same
containers.conf: runc, the cgroupfs manager, no network namespace set-up, explicit nofile/nproc ulimits, podman's
state dir, and a storage.conf whose roots live under the test's temporary directory. buildah and podman share that
storage, so podman runs what buildah committed. Registries on 127.0.0.1 are plain HTTP: pulls use
--tls-verify=false."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

_CONTAINERS_CONF = """\
[containers]
default_ulimits = ["nofile=4096:4096", "nproc=4096:4096"]
netns = "none"
log_driver = "k8s-file"

[engine]
cgroup_manager = "cgroupfs"
runtime = "runc"
events_logger = "file"
tmp_dir = "{tmp}"
"""

# No short-name resolution: every reference in the tests is fully qualified, and nothing may reach a public host.
_REGISTRIES_CONF = """\
unqualified-search-registries = []
short-name-mode = "disabled"
"""


class ContainerTool:
    """One of podman/buildah with the sandbox configuration written under `root`."""

    def __init__(self, program: str, root: Path) -> None:
        self.program = program
        self.root = root
        root.mkdir(parents=True, exist_ok=True)
        # podman's own state dir defaults to /run/libpod, shared by every podman on the machine: one test
        # session's reset would pull it from under another's.
        (root / "containers.conf").write_text(_CONTAINERS_CONF.format(tmp=root / "libpod"))
        (root / "registries.conf").write_text(_REGISTRIES_CONF)
        (root / "storage.conf").write_text(
            f'[storage]\ndriver = "overlay"\nrunroot = "{root / "run"}"\ngraphroot = "{root / "storage"}"\n'
        )
        self.env = {
            **os.environ,
            "CONTAINERS_CONF": str(root / "containers.conf"),
            "CONTAINERS_STORAGE_CONF": str(root / "storage.conf"),
            "CONTAINERS_REGISTRIES_CONF": str(root / "registries.conf"),
            "TMPDIR": str(root / "tmp"),
        }
        (root / "tmp").mkdir(exist_ok=True)

    def cmd(self, *args: str, check: bool = True, timeout: float = 300) -> subprocess.CompletedProcess[str]:
        """Run `program args…`; with `check`, a non-zero exit raises with the command and its stderr."""
        done = subprocess.run(
            [self.program, *args], env=self.env, capture_output=True, text=True, timeout=timeout, check=False
        )
        if check and done.returncode != 0:
            raise AssertionError(
                f"{self.program} {' '.join(args)} exited {done.returncode}:\n{done.stderr.strip()[-3000:]}"
            )
        return done


class Podman(ContainerTool):
    def __init__(self, root: Path) -> None:
        super().__init__("podman", root)

    def pull(self, ref: str, platform: str | None = None) -> str:
        """Pull `ref` (plain HTTP for 127.0.0.1) and return the local image id."""
        args = ["pull", "--quiet", "--tls-verify=false"]
        if platform:
            args += ["--platform", platform]
        return self.cmd(*args, ref).stdout.strip().splitlines()[-1]

    def load(self, archive: str | os.PathLike[str]) -> str:
        """Load a docker-archive or oci-archive tarball; returns what podman printed (the loaded image names)."""
        return self.cmd("load", "--quiet", "--input", str(archive)).stdout.strip()

    def run(
        self,
        ref: str,
        *command: str,
        user: str | None = None,
        platform: str | None = None,
        entrypoint: str | None = None,
        pull: bool = True,
    ) -> str:
        """Run a container of `ref` (pulled first unless `pull` is False) and return its stdout.

        A non-zero exit raises AssertionError carrying the container's stderr."""
        image = self.pull(ref, platform) if pull else ref
        args = ["run", "--rm"]
        if user is not None:
            args += ["--user", user]
        if entrypoint is not None:
            args += ["--entrypoint", entrypoint]
        return self.cmd(*args, image, *command).stdout

    def image_config(self, ref: str) -> str:
        """`podman image inspect` of a local image, as JSON text."""
        return self.cmd("image", "inspect", ref).stdout

    def reset(self) -> None:
        """Remove every container and image and unmount the storage (the end of a session)."""
        self.cmd("system", "reset", "--force", check=False)


class Buildah(ContainerTool):
    def __init__(self, root: Path) -> None:
        super().__init__("buildah", root)
