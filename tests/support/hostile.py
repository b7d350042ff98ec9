"""A registry that answers what the test tells it to: huge, slow, looping or lying answers that no real registry can
be made to give. Routes are (method, path) -> Reply; everything else is a 404 with an OCI error body, and
`GET /v2/` answers like a distribution registry so that the client picks plain HTTP on loopback."""

from __future__ import annotations

import json
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from .server import BackgroundServer, QuietHandler

API_HEADER = ("Docker-Distribution-Api-Version", "registry/2.0")


@dataclass
class Reply:
    """One answer. `body` is bytes, or a callable yielding pieces sent `delay` seconds apart (with `length` as
    Content-Length when given, else the connection is closed after the body)."""

    status: int = 200
    body: bytes | Callable[[], Iterable[bytes]] = b""
    headers: dict[str, str] = field(default_factory=dict)
    length: int | None = None
    delay: float = 0.0
    header_delay: float = 0.0  # when set, the status line and headers go out one byte at a time this far apart


Route = Reply | Callable[["HostileHandler"], Reply]


def endless(piece: bytes = b"x" * 65536) -> Callable[[], Iterable[bytes]]:
    """A body that never ends (the client must stop reading)."""

    def pieces() -> Iterable[bytes]:
        while True:
            yield piece

    return pieces


def trickle(data: bytes) -> Callable[[], Iterable[bytes]]:
    """A body sent one byte at a time (with Reply.delay between bytes)."""
    return lambda: (data[i : i + 1] for i in range(len(data)))


class HostileRegistry(BackgroundServer):
    def __init__(self, address: str = "127.0.0.1") -> None:
        super().__init__(HostileHandler, address)
        self.routes: dict[tuple[str, str], Route] = {}
        self.hits: Counter[tuple[str, str]] = Counter()
        self.authorizations: list[str] = []  # Authorization headers received
        self.body_bytes_sent = 0
        self.trickled_header_bytes = 0
        self._lock = threading.Lock()

    def on(self, method: str, path: str, reply: Route) -> HostileRegistry:
        self.routes[(method, path)] = reply
        return self

    def serve_manifest(self, repository: str, reference: str, raw: bytes, media_type: str) -> None:
        """GET and HEAD of a manifest (with Content-Type, without Docker-Content-Digest, as ECR does on GET)."""
        path = f"/v2/{repository}/manifests/{reference}"
        self.on("GET", path, Reply(body=raw, headers={"Content-Type": media_type}))
        self.on("HEAD", path, Reply(headers={"Content-Type": media_type}, length=len(raw)))

    def count(self, method: str, prefix: str) -> int:
        return sum(n for (m, p), n in self.hits.items() if m == method and p.startswith(prefix))

    def route_for(self, method: str, path: str) -> Route | None:
        with self._lock:
            self.hits[(method, path)] += 1
        return self.routes.get((method, path)) or self.routes.get((method, path.split("?", 1)[0]))

    def add_sent(self, n: int) -> None:
        with self._lock:
            self.body_bytes_sent += n


class HostileHandler(QuietHandler):
    def _answer(self) -> None:
        owner: HostileRegistry = self.server.owner  # type: ignore[attr-defined]
        length = int(self.headers.get("content-length") or 0)
        if length:
            self.rfile.read(length)
        if self.headers.get("authorization"):
            owner.authorizations.append(self.headers["authorization"])
        route = owner.route_for(self.command, self.path)
        if route is None:
            if self.path == "/v2/":
                reply = Reply(body=b"{}", headers={"Content-Type": "application/json"})
            else:
                error = {"errors": [{"code": "MANIFEST_UNKNOWN", "message": "unknown"}]}
                reply = Reply(404, json.dumps(error).encode(), {"Content-Type": "application/json"})
        else:
            reply = route if isinstance(route, Reply) else route(self)
        self._send(owner, reply)

    def _send(self, owner: HostileRegistry, reply: Reply) -> None:
        streamed = callable(reply.body)
        length = reply.length if reply.length is not None else None if streamed else len(reply.body)  # type: ignore[arg-type]
        lines = [f"HTTP/1.1 {reply.status} {self.responses.get(reply.status, ('',))[0]}", ": ".join(API_HEADER)]
        lines += [f"{name}: {value}" for name, value in reply.headers.items()]
        if length is None:
            lines.append("Connection: close")
            self.close_connection = True
        else:
            lines.append(f"Content-Length: {length}")
        head = ("\r\n".join(lines) + "\r\n\r\n").encode()
        try:
            for piece in [head[i : i + 1] for i in range(len(head))] if reply.header_delay else [head]:
                self.wfile.write(piece)
                self.wfile.flush()
                if reply.header_delay:
                    owner.trickled_header_bytes += len(piece)
                    time.sleep(reply.header_delay)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True
            return
        if self.command == "HEAD":
            return
        pieces = reply.body() if callable(reply.body) else [reply.body]
        try:
            for piece in pieces:
                self.wfile.write(piece)
                self.wfile.flush()
                owner.add_sent(len(piece))
                if reply.delay:
                    time.sleep(reply.delay)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True

    do_GET = do_HEAD = do_POST = do_PUT = do_PATCH = do_DELETE = _answer
