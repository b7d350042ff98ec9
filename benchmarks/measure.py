"""Timing and memory of one child process: wall clock with perf_counter, peak RSS from GNU time's `%M`.

`%M` is the child's `ru_maxrss` from wait4: the largest resident set of that child or of any descendant it waited
for (Linux keeps the maximum, not a sum), so a shell pipeline reports its largest member. The command runs under
/usr/bin/time rather than straight from Python because a child forked (or vforked) from this Python process
starts with the parent's high-water mark: exec carries the old address space's peak into ru_maxrss.
"""

from __future__ import annotations

import contextlib
import os
import signal
import statistics
import subprocess
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

TIME = "/usr/bin/time"


class CommandFailed(RuntimeError):
    pass


@dataclass
class Sample:
    tool: str
    seconds: float
    maxrss_mb: float
    rc: int
    extra: dict[str, object] = field(default_factory=dict)

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


def run_timed(
    cmd: Sequence[str],
    *,
    log: Path,
    env: Mapping[str, str] | None = None,
    timeout: float = 900.0,
    check: bool = True,
    on_start: Callable[[subprocess.Popen[bytes]], None] | None = None,
) -> tuple[float, float, int]:
    """Run `cmd`; return (seconds, peak RSS in MB, exit code). Output goes to `log`."""
    rss_file = log.with_name(f".rss-{os.getpid()}-{threading.get_ident()}")
    rss_file.unlink(missing_ok=True)
    cmd = [TIME, "-f", "%M", "-o", str(rss_file), *cmd]
    with log.open("ab") as out:
        out.write(f"\n$ {' '.join(map(str, cmd))}\n".encode())
        out.flush()
        start = time.perf_counter()
        proc = subprocess.Popen(
            list(map(str, cmd)), stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            env=dict(env) if env is not None else None, start_new_session=True,
        )  # fmt: skip
        timer = threading.Timer(timeout, _kill_group, (proc.pid,))
        timer.start()
        watcher = None
        if on_start is not None:
            watcher = threading.Thread(target=on_start, args=(proc,), daemon=True)
            watcher.start()
        try:
            _pid, status, _usage = os.wait4(proc.pid, 0)
        finally:
            timer.cancel()
        seconds = time.perf_counter() - start
        proc.returncode = os.waitstatus_to_exitcode(status)
        if watcher is not None:
            watcher.join(timeout=5)
    rc = proc.returncode
    try:
        rss_mb = int(rss_file.read_text().split()[-1]) / 1024
    except (OSError, ValueError, IndexError):  # killed, so time wrote nothing
        rss_mb = 0.0
    rss_file.unlink(missing_ok=True)
    if check and rc != 0:
        raise CommandFailed(f"exit {rc}: {' '.join(map(str, cmd))} (see {log})")
    return seconds, rss_mb, rc


def _kill_group(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signal.SIGKILL)


def summary(values: Sequence[float]) -> dict[str, float]:
    if not values:
        return {}
    return {"median": statistics.median(values), "min": min(values), "max": max(values), "n": len(values)}
