"""Counting request bytes for P8, with the project's test proxy (tests/support/proxy.py).

`counting_proxy(url)` forwards as it reads (plain distribution semantics: a PATCH cut off mid-body reaches the
registry cut off, and distribution 2.8 then discards the whole upload session).

`counting_proxy(url, ecr=True)` runs the proxy's ECR mode: each PATCH body is spooled whole before it is
forwarded, so a part cut off mid-body never reaches the registry and the session keeps every part before it, as
Amazon ECR stores each part atomically; it also answers 201 to PATCH and freezes `Range`, as ECR does. The proxy
is pure Python: it is only used where bytes are counted, never in the path of a throughput measurement.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from support.proxy import FaultProxy


def counting_proxy(upstream_url: str, *, ecr: bool = False) -> FaultProxy:
    return FaultProxy(upstream_url, ecr=ecr).start()


def upload_bytes(proxy: FaultProxy) -> int:
    """Request-body bytes the client sent for blob uploads (POST, PATCH, PUT on /blobs/uploads/)."""
    return sum(n for (_method, kind), n in proxy.stats.body_bytes.items() if kind == "upload")


def request_count(proxy: FaultProxy) -> int:
    return sum(proxy.stats.requests.values())
