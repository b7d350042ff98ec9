"""Counting request bytes for P8, with the project's test proxy (tests/support/proxy.py).

`counting_proxy(url)` forwards as it reads (plain distribution semantics: a PATCH cut off mid-body reaches the
registry cut off, and distribution 2.8 then discards the whole upload session).

`counting_proxy(url, atomic_parts=True)` also runs the proxy's ECR mode and buffers each PATCH body until it is
complete before forwarding it, so a part cut off mid-body never reaches the registry and the session keeps every
part before it — what Amazon ECR does (it stores each part atomically). This is a benchmark-local imitation,
labelled as such in the report. The proxy is pure Python: it is only used where bytes are counted, never in the
path of a throughput measurement.
"""

from __future__ import annotations

import http.client
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from support.proxy import FaultProxy, _ProxyHandler, status


class _AtomicPartsHandler(_ProxyHandler):
    def _forward(self, reset_after: int | None, session: Any) -> None:
        if self.command != "PATCH":
            super()._forward(reset_after, session)
            return
        # Read the whole part first, then open the upstream request: a cut-off part never starts one.
        pieces = list(self._body())
        conn = self._upstream()
        conn.putrequest(self.command, self.path, skip_host=True, skip_accept_encoding=True)
        for name, value in self.headers.items():
            if name.lower() not in ("transfer-encoding", "content-length", "connection", "expect", "keep-alive"):
                conn.putheader(name, value)
        size = sum(len(p) for p in pieces)
        conn.putheader("Content-Length", str(size))
        conn.endheaders()
        for piece in pieces:
            conn.send(piece)
        try:
            resp = conn.getresponse()
        except (OSError, http.client.HTTPException):
            conn.close()
            self._respond(status(502))
            return
        self._relay(resp, session, size)


def counting_proxy(upstream_url: str, *, atomic_parts: bool = False) -> FaultProxy:
    proxy = FaultProxy(upstream_url, ecr=atomic_parts)
    if atomic_parts:
        proxy.httpd.RequestHandlerClass = _AtomicPartsHandler
    return proxy.start()


def upload_bytes(proxy: FaultProxy) -> int:
    """Request-body bytes the client sent for blob uploads (POST, PATCH, PUT on /blobs/uploads/)."""
    return sum(n for (_method, kind), n in proxy.stats.body_bytes.items() if kind == "upload")


def request_count(proxy: FaultProxy) -> int:
    return sum(proxy.stats.requests.values())
