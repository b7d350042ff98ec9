"""The Lambda profile's workload: the library push of an OCI layout, as a Lambda handler would call it.

    python lambda_push.py oci:DIR:tag HOST/REPO:tag

Run by bench.py under a read-only HOME and project tree, a writable temp dir and an address-space cap. Prints
`first_request_s=…`: the seconds from the process's start (the kernel's start time, in clock ticks) to its first
socket connect (an audit hook, installed before ocipush is imported), i.e. what a cold start waits before the
registry sees a request.
"""

from __future__ import annotations

import os
import sys
import time

_first_connect: list[float] = []


def _since_process_start() -> float:
    with open("/proc/self/stat") as handle:
        fields = handle.read().rsplit(")", 1)[1].split()
    started = int(fields[19]) / os.sysconf("SC_CLK_TCK")  # field 22, starttime, counted after "pid (comm)"
    return time.clock_gettime(time.CLOCK_BOOTTIME) - started


def _audit(event: str, _args: tuple[object, ...]) -> None:
    if event == "socket.connect" and not _first_connect:
        _first_connect.append(_since_process_start())


sys.addaudithook(_audit)

from ocipush.api import push  # noqa: E402
from ocipush.registry.options import RegistryOptions  # noqa: E402


def main() -> None:
    source, target = sys.argv[1:3]
    result = push(source, target, options=RegistryOptions())
    print(result)
    if _first_connect:
        print(f"first_request_s={_first_connect[0]:.4f}")


if __name__ == "__main__":
    main()
