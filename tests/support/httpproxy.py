"""A real forward proxy (Debian's tinyproxy) on a free loopback port, logging every request it relays, so that
tests prove what went through it: CONNECT tunnels for https, absolute-form requests for http."""

from __future__ import annotations

import shutil
import subprocess
import time
from pathlib import Path
from types import TracebackType

from ocipush.localregistry import free_port


class TinyProxy:
    def __init__(self, workdir: Path, basic_auth: tuple[str, str] | None = None) -> None:
        binary = shutil.which("tinyproxy")
        if binary is None:
            raise RuntimeError("tinyproxy is not installed (scripts/setup.sh test installs it)")
        self.binary = binary
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = workdir / "tinyproxy.log"
        self.config = workdir / "tinyproxy.conf"
        lines = [
            f"Port {self.port}", "Listen 127.0.0.1", "Timeout 60", f"LogFile \"{self.log_path}\"", "LogLevel Info",
            "MaxClients 50", "Allow 127.0.0.1", "DisableViaHeader Yes",
        ]  # fmt: skip
        if basic_auth is not None:
            lines.append(f"BasicAuth {basic_auth[0]} {basic_auth[1]}")
        self.config.write_text("\n".join(lines) + "\n")
        self._process: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> TinyProxy:
        # -d: stay in the foreground, so the test owns the process
        self._process = subprocess.Popen([self.binary, "-d", "-c", str(self.config)], stdout=subprocess.DEVNULL,
                                         stderr=subprocess.DEVNULL)  # fmt: skip
        deadline = time.monotonic() + 10
        while "Accepting connections" not in self.log() and "listening on" not in self.log().lower():
            if self._process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"tinyproxy did not start: {self.log()[-500:]}")
            time.sleep(0.05)
        return self

    def __exit__(self, *exc: type[BaseException] | BaseException | TracebackType | None) -> None:
        if self._process is not None:
            self._process.terminate()
            self._process.wait(timeout=10)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
