"""A counting, fault-injecting reverse proxy in front of a registry, streaming bodies both ways.

Faults are rules: the first rule matching a request's method and path (regex searched in path + query) that
still has uses left is applied, after letting `skip` matches through:

    proxy.add_fault("PATCH", r"/blobs/uploads/", Reset(after_bytes=1 << 20), skip=1)  # 2nd PATCH cut at 1 MiB
    proxy.add_fault("PUT", r"/blobs/uploads/", status(503), times=2)  # the next two PUTs answer 503

ECR mode (`ecr=True`) imitates Amazon ECR's upload quirks: PATCH answers 201 instead of 202; the `Range`
header of PATCH answers stays at the first PATCH's value for that session; and a part under 5 MiB is rejected
once it turns out not to be the last one — the proxy cannot know in advance which part is final, so the
request that follows a small part on the same session (a PATCH, or a PUT with a body) gets 400
LayerPartTooSmallException. Parts are atomic, as ECR's UploadLayerPart is: a PATCH body is spooled whole before it
is forwarded, so a client that dies mid-part leaves the registry holding only the parts it completed (the
distribution registry behind would otherwise keep the cut part and drop the session). The `Range` of upload-status
GETs is frozen too.

With `redirect_blobs=True` a blob GET that the registry would answer 200 gets a 307 to `.blobstore`, a second
server that streams the blob from the registry like a presigned S3 URL and, like S3 behind ECR, rejects any
request carrying an `Authorization` header.
"""

from __future__ import annotations

import http.client
import re
import secrets
import socket
import struct
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import IO
from urllib.parse import parse_qsl, urlencode, urlsplit

from .server import BackgroundServer, QuietHandler

CHUNK = 1 << 20
ECR_MIN_PART = 5 * 1024 * 1024
HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-connection",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
        "expect",
    }
)
EXPIRED_TOKEN_BODY = b"denied: Your authorization token has expired. Reauthenticate and try again."
TOO_SMALL_BODY = (
    b'{"errors":[{"code":"BLOB_UPLOAD_INVALID","message":"LayerPartTooSmallException: '
    b'a layer part other than the last must be at least 5242880 bytes"}]}'
)
S3_AUTH_BODY = (
    b"<?xml version='1.0' encoding='UTF-8'?><Error><Code>InvalidArgument</Code>"
    b"<Message>Only one auth mechanism allowed; only the X-Amz-Algorithm query parameter, Signature query "
    b"string parameter or the Authorization header should be specified</Message></Error>"
)

_KINDS = (
    ("base", re.compile(r"^/v2/?$")),
    ("upload", re.compile(r"^/v2/.+/blobs/uploads/")),
    ("blob", re.compile(r"^/v2/.+/blobs/[^/]+$")),
    ("manifest", re.compile(r"^/v2/.+/manifests/[^/]+$")),
    ("tags", re.compile(r"^/v2/.+/tags/list$")),
    ("referrers", re.compile(r"^/v2/.+/referrers/[^/]+$")),
    ("catalog", re.compile(r"^/v2/_catalog$")),
)
_SESSION = re.compile(r"^(/v2/.+/blobs/uploads/[^/?]+)")


def path_kind(path: str) -> str:
    """`base`, `upload`, `blob`, `manifest`, `tags`, `referrers`, `catalog` or `other` for a request path."""
    bare = urlsplit(path).path
    return next((kind for kind, pattern in _KINDS if pattern.match(bare)), "other")


@dataclass(frozen=True)
class Respond:
    """Answer this instead of forwarding (the request body is read and dropped first)."""

    status: int
    body: bytes = b""
    headers: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class Reset:
    """Forward the request, but reset both connections after `after_bytes` bytes of its body."""

    after_bytes: int


@dataclass(frozen=True)
class Stall:
    """Take `after_bytes` of the request body, then hold the request, forwarding nothing, until the client goes away
    (or `seconds` pass): the moment to SIGKILL a client in the middle of a part. `Fault.reached` is set then."""

    after_bytes: int
    seconds: float = 60.0


@dataclass(frozen=True)
class CutResponse:
    """Forward the request, relay `after_bytes` of the answer's body, then reset the client (a download cut short)."""

    after_bytes: int


@dataclass(frozen=True)
class IgnoreRange:
    """Forward the request without its Range header: the whole blob comes back with 200, as from a server or a
    cache in front of one that ignores Range."""


@dataclass(frozen=True)
class LoseAnswer:
    """Forward the request whole and let the registry act on it, then reset the client instead of answering."""


Action = Respond | Reset | Stall | LoseAnswer | CutResponse | IgnoreRange


def status(code: int) -> Respond:
    """A registry-style error answer with this status (500, 502, 503, …)."""
    body = f'{{"errors":[{{"code":"UNAVAILABLE","message":"injected {code}"}}]}}'.encode()
    return Respond(code, body, (("Content-Type", "application/json"),))


def throttled(retry_after: int = 1) -> Respond:
    """ECR's 429 when a rate limit is exceeded."""
    body = b'{"errors":[{"code":"TOOMANYREQUESTS","message":"Rate exceeded"}]}'
    return Respond(429, body, (("Content-Type", "application/json"), ("Retry-After", str(retry_after))))


def expired_token() -> Respond:
    """ECR's answer to an expired authorization token (bare 403 for HEAD)."""
    return Respond(403, EXPIRED_TOKEN_BODY, (("Content-Type", "text/plain; charset=utf-8"),))


@dataclass
class Fault:
    method: str | None
    path: re.Pattern[str]
    action: Action
    skip: int = 0
    times: int | None = 1
    seen: int = 0
    applied: int = 0
    reached: threading.Event = field(default_factory=threading.Event)

    def take(self, method: str, path: str) -> bool:
        """Whether this request gets the fault (caller holds the proxy lock)."""
        if (self.method is not None and self.method != method) or not self.path.search(path):
            return False
        if self.times is not None and self.applied >= self.times:
            return False
        self.seen += 1
        if self.seen <= self.skip:
            return False
        self.applied += 1
        return True


@dataclass
class _EcrSession:
    first_range: str | None = None
    last_part_small: bool = False
    state: str | None = None  # the registry's latest `_state`: ECR keeps session state server-side
    size: int = 0  # bytes the registry holds, from its true Range answers


@dataclass
class Stats:
    """What passed through: requests and request-body bytes per (method, path kind), plus totals."""

    requests: Counter[tuple[str, str]] = field(default_factory=Counter)
    body_bytes: Counter[tuple[str, str]] = field(default_factory=Counter)
    statuses: Counter[tuple[str, str, int]] = field(default_factory=Counter)
    bytes_received: int = 0
    bytes_sent: int = 0


class _Aborted(Exception):
    """The client connection was reset or broke: stop handling it."""


class FaultProxy(BackgroundServer):
    def __init__(self, upstream_url: str, *, ecr: bool = False, redirect_blobs: bool = False) -> None:
        super().__init__(_ProxyHandler)
        target = urlsplit(upstream_url)
        if target.scheme != "http" or target.hostname is None or target.port is None:
            raise ValueError(f"upstream must be http://HOST:PORT, not {upstream_url!r}")
        self.upstream_url = upstream_url.rstrip("/")
        self.upstream = (target.hostname, target.port)
        self.ecr = ecr
        self.stats = Stats()
        self.faults: list[Fault] = []
        self.lock = threading.Lock()
        self.ecr_sessions: dict[str, _EcrSession] = {}
        self.blobstore: BlobStore | None = BlobStore(self) if redirect_blobs else None

    def start(self) -> FaultProxy:
        if self.blobstore is not None:
            self.blobstore.start()
        super().start()
        return self

    def stop(self) -> None:
        super().stop()
        if self.blobstore is not None:
            self.blobstore.stop()

    def add_fault(
        self, method: str | None, path: str, action: Action, *, skip: int = 0, times: int | None = 1
    ) -> Fault:
        """Apply `action` to `times` (None: all) requests matching method and path regex after `skip`."""
        fault = Fault(method, re.compile(path), action, skip, times)
        with self.lock:
            self.faults.append(fault)
        return fault

    def clear_faults(self) -> None:
        with self.lock:
            self.faults.clear()

    def reset_stats(self) -> None:
        with self.lock:
            self.stats = Stats()

    def fault_for(self, method: str, path: str) -> Fault | None:
        with self.lock:
            return next((f for f in self.faults if f.take(method, path)), None)

    def count_request(self, method: str, kind: str) -> None:
        with self.lock:
            self.stats.requests[method, kind] += 1

    def count_body(self, method: str, kind: str, n: int) -> None:
        with self.lock:
            self.stats.body_bytes[method, kind] += n
            self.stats.bytes_received += n

    def count_response(self, method: str, kind: str, code: int, body_bytes: int) -> None:
        with self.lock:
            self.stats.statuses[method, kind, code] += 1
            self.stats.bytes_sent += body_bytes

    def ecr_session(self, path: str) -> _EcrSession | None:
        match = _SESSION.match(path)
        if not self.ecr or match is None:
            return None
        with self.lock:
            return self.ecr_sessions.setdefault(match.group(1), _EcrSession())


class _ProxyHandler(QuietHandler):
    owner: FaultProxy

    def do_GET(self) -> None:
        self._handle()

    do_HEAD = do_POST = do_PUT = do_PATCH = do_DELETE = do_GET

    def _handle(self) -> None:
        self.owner = self.server.owner  # type: ignore[attr-defined]
        self.kind = path_kind(self.path)
        self.owner.count_request(self.command, self.kind)
        try:
            self._dispatch()
        except _Aborted:
            self.close_connection = True
            self._upstream().close()

    def finish(self) -> None:
        super().finish()
        conn = getattr(self, "_conn", None)
        if conn is not None:
            conn.close()

    def _dispatch(self) -> None:
        fault = self.owner.fault_for(self.command, self.path)
        if fault is not None and isinstance(fault.action, Respond):
            self._drain()
            self._respond(fault.action)
            return
        if fault is not None and isinstance(fault.action, Stall):
            self._stall(fault, fault.action)
        reset_after = fault.action.after_bytes if fault is not None and isinstance(fault.action, Reset) else None
        session = self.owner.ecr_session(self.path)
        if session is not None and session.last_part_small and self._carries_body():
            self._drain()
            self._respond(Respond(400, TOO_SMALL_BODY, (("Content-Type", "application/json"),)))
            return
        if session is not None and self.command == "PATCH" and (refusal := self._out_of_order(session)):
            self._drain()
            self._respond(refusal)
            return
        blobstore = self.owner.blobstore
        if blobstore is not None and self.command == "GET" and self.kind == "blob":
            location = blobstore.presign(self.path, self.headers.get("Authorization"))
            if location is not None:
                self._respond(Respond(307, b"", (("Location", location),)))
                return
        action = fault.action if fault is not None else None
        self._forward(
            reset_after,
            session,
            lose_answer=isinstance(action, LoseAnswer),
            cut_after=action.after_bytes if isinstance(action, CutResponse) else None,
            drop_range=isinstance(action, IgnoreRange),
        )

    # --- request side --------------------------------------------------------------------------------------

    def _carries_body(self) -> bool:
        length = self.headers.get("Content-Length")
        return self._chunked() or (length is not None and int(length) > 0)

    def _chunked(self) -> bool:
        return "chunked" in self.headers.get("Transfer-Encoding", "").lower()

    def _body(self, limit: int | None = None) -> Iterator[bytes]:
        """The decoded request body in pieces, counted as read; reads no more than `limit` bytes of it."""
        budget = [limit if limit is not None else -1]
        length = int(self.headers.get("Content-Length") or 0)
        for piece in self._dechunk(budget) if self._chunked() else self._fixed(length, budget):
            self.owner.count_body(self.command, self.kind, len(piece))
            yield piece

    def _fixed(self, length: int, budget: list[int]) -> Iterator[bytes]:
        while length > 0 and budget[0] != 0:
            want = min(CHUNK, length) if budget[0] < 0 else min(CHUNK, length, budget[0])
            piece = self.rfile.read(want)
            if not piece:
                raise _Aborted
            length -= len(piece)
            if budget[0] > 0:
                budget[0] -= len(piece)
            yield piece

    def _dechunk(self, budget: list[int]) -> Iterator[bytes]:
        while budget[0] != 0:
            line = self.rfile.readline(1024)
            if not line:
                raise _Aborted
            size = int(line.split(b";", 1)[0].strip(), 16)
            if size == 0:
                while self.rfile.readline(1024) not in (b"\r\n", b"\n", b""):
                    pass  # trailers
                return
            yield from self._fixed(size, budget)
            self.rfile.readline(1024)

    def _stall(self, fault: Fault, stall: Stall) -> None:
        for _ in self._body(stall.after_bytes):
            pass
        fault.reached.set()
        deadline = time.monotonic() + stall.seconds
        self.connection.settimeout(0.2)
        # What the client still sends is neither forwarded nor counted: it never reaches the registry.
        while time.monotonic() < deadline:
            try:
                if not self.rfile.read1(CHUNK):
                    break
            except TimeoutError:
                continue
            except OSError:
                break
        raise _Aborted

    def _drain(self) -> None:
        for _ in self._body():
            pass

    # --- forwarding ----------------------------------------------------------------------------------------

    def _upstream(self) -> http.client.HTTPConnection:
        conn: http.client.HTTPConnection | None = getattr(self, "_conn", None)
        if conn is None:
            conn = http.client.HTTPConnection(*self.owner.upstream, timeout=300)
            self._conn = conn
        return conn

    def _forward(
        self,
        reset_after: int | None,
        session: _EcrSession | None,
        lose_answer: bool = False,
        cut_after: int | None = None,
        drop_range: bool = False,
    ) -> None:
        conn = self._upstream()
        chunked = self._chunked()
        spool = self._spool(reset_after) if session is not None and self.command == "PATCH" else None
        # The client's Host passes unchanged, so the registry builds Location URLs that point at the proxy.
        conn.putrequest(self.command, self._upstream_path(session), skip_host=True, skip_accept_encoding=True)
        dropped = {"content-length"} if spool is not None else set()
        if drop_range:
            dropped.add("range")
        for name, value in self.headers.items():
            if name.lower() not in HOP_BY_HOP and name.lower() not in dropped:
                conn.putheader(name, value)
        if spool is not None:
            conn.putheader("Content-Length", str(spool.tell()))
        elif chunked:
            conn.putheader("Transfer-Encoding", "chunked")
        conn.endheaders()
        part = self._send_spool(conn, spool) if spool is not None else self._send_body(conn, chunked, reset_after)
        try:
            resp = conn.getresponse()
        except (OSError, http.client.HTTPException):
            conn.close()
            self._respond(status(502))
            return
        if lose_answer:
            self._relay(resp, session, part, to_client=False)
            self._reset_client()
        self._relay(resp, session, part, cut_after=cut_after)

    def _send_body(self, conn: http.client.HTTPConnection, chunked: bool, reset_after: int | None) -> int:
        """Stream the body upstream and return its size; drains the client if the registry stops reading.
        With `reset_after`, stop after that many bytes (or the whole body, if shorter) and reset both sides."""
        sent = 0
        upstream_ok = True
        for piece in self._body(reset_after):
            sent += len(piece)
            if upstream_ok:
                upstream_ok = self._send(conn, piece, chunked)
        if reset_after is not None:
            conn.close()
            self._reset_client()
        if chunked and upstream_ok:
            self._send(conn, b"", chunked)
        return sent

    def _out_of_order(self, session: _EcrSession) -> Respond | None:
        """ECR refuses a part that does not start where the stored ones end (distribution 2.8 would append it)."""
        match = re.match(r"(?:bytes )?(\d+)-\d+", self.headers.get("Content-Range", ""))
        if match is None or int(match.group(1)) == session.size:
            return None
        message = f"First byte of the layer part is {match.group(1)} instead of {session.size}"
        body = f'{{"errors":[{{"code":"BLOB_UPLOAD_INVALID","message":"{message}"}}]}}'.encode()
        return Respond(416, body, (("Content-Type", "application/json"),))

    def _upstream_path(self, session: _EcrSession | None) -> str:
        """In ECR mode a session is its upload id alone, as on ECR: the registry's newest `_state` replaces
        whatever the client sent, so a client resuming with an old URL meets the registry's true offset (416 on a
        mismatch) instead of distribution's "upload invalid"."""
        if session is None or session.state is None:
            return self.path
        parts = urlsplit(self.path)
        query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k != "_state"]
        return f"{parts.path}?{urlencode([('_state', session.state), *query])}"

    def _spool(self, reset_after: int | None) -> IO[bytes]:
        """Read the whole body into a temp file first (ECR parts are atomic); a cut body forwards nothing."""
        spool = tempfile.TemporaryFile()  # noqa: SIM115 - handed to the caller, closed by _send_spool
        try:
            for piece in self._body(reset_after):
                spool.write(piece)
            if reset_after is not None:
                self._reset_client()
        except BaseException:
            spool.close()
            raise
        return spool

    def _send_spool(self, conn: http.client.HTTPConnection, spool: IO[bytes]) -> int:
        size = spool.tell()
        spool.seek(0)
        with spool:
            while piece := spool.read(CHUNK):
                if not self._send(conn, piece, False):
                    break
        return size

    @staticmethod
    def _send(conn: http.client.HTTPConnection, piece: bytes, chunked: bool) -> bool:
        try:
            if chunked:
                conn.send(b"%x\r\n%b\r\n" % (len(piece), piece))
            elif piece:
                conn.send(piece)
            return True
        except OSError:
            return False

    def _reset_client(self) -> None:
        # SO_LINGER 0 makes close() send RST, which clients see as "connection reset by peer".
        self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.rfile.close()
        self.connection.close()
        raise _Aborted

    # --- response side -------------------------------------------------------------------------------------

    def _relay(
        self,
        resp: http.client.HTTPResponse,
        session: _EcrSession | None,
        part: int,
        to_client: bool = True,
        cut_after: int | None = None,
    ) -> None:
        code = resp.status
        headers = [(k, v) for k, v in resp.getheaders() if k.lower() not in HOP_BY_HOP]
        headers = [(k, self._rewrite(v) if k.lower() == "location" else v) for k, v in headers]
        location = next((v for k, v in headers if k.lower() == "location"), None)
        if session is not None and location is not None and code < 300:
            state = dict(parse_qsl(urlsplit(location).query)).get("_state")
            with self.owner.lock:
                session.state = state or session.state
        if session is not None and self.command == "PATCH" and 200 <= code < 300:
            code, headers = 201, self._freeze_range(session, headers, part)
        elif session is not None and self.command == "GET" and session.first_range is not None:
            headers = [(k, session.first_range if k.lower() == "range" else v) for k, v in headers]
        if not to_client:
            resp.read()
            return
        has_body = self.command != "HEAD" and code >= 200 and code not in (204, 304)
        sized = any(k.lower() == "content-length" for k, _ in headers)
        self.send_response_only(code, resp.reason)
        for name, value in headers:
            self.send_header(name, value)
        if has_body and not sized:
            self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        sent = 0
        try:
            while piece := resp.read(CHUNK):
                if cut_after is not None and sent + len(piece) >= cut_after:
                    self.wfile.write(piece[: cut_after - sent] if sized else b"")
                    sent = cut_after
                    self.wfile.flush()
                    self._upstream().close()
                    self._reset_client()
                sent += len(piece)
                self.wfile.write(piece if sized else b"%x\r\n%b\r\n" % (len(piece), piece))
            if has_body and not sized:
                self.wfile.write(b"0\r\n\r\n")
        except OSError as err:
            self._upstream().close()
            raise _Aborted from err
        finally:
            self.owner.count_response(self.command, self.kind, code, sent)

    def _rewrite(self, location: str) -> str:
        if location.startswith(self.owner.upstream_url):
            return self.owner.url + location[len(self.owner.upstream_url) :]
        return location

    def _freeze_range(self, session: _EcrSession, headers: list[tuple[str, str]], part: int) -> list[tuple[str, str]]:
        with self.owner.lock:
            session.last_part_small = part < ECR_MIN_PART
            current = next((v for k, v in headers if k.lower() == "range"), None)
            if current is not None and (held := re.search(r"-(\d+)$", current)):
                session.size = int(held.group(1)) + 1
            if session.first_range is None:
                session.first_range = current
            frozen = session.first_range
        return [(k, frozen if k.lower() == "range" and frozen is not None else v) for k, v in headers]

    def _respond(self, answer: Respond) -> None:
        body = b"" if self.command == "HEAD" else answer.body
        self.send_response_only(answer.status)
        for name, value in answer.headers:
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
        self.owner.count_response(self.command, self.kind, answer.status, len(body))


class BlobStore(BackgroundServer):
    """Serves presigned blob URLs minted by a FaultProxy from its upstream; refuses `Authorization`."""

    def __init__(self, proxy: FaultProxy) -> None:
        super().__init__(_BlobStoreHandler)
        self.proxy = proxy
        self.tickets: dict[str, tuple[str, str | None]] = {}
        self.requests = 0
        self.rejected = 0
        self.bytes_sent = 0
        self.lock = threading.Lock()

    def presign(self, path: str, authorization: str | None) -> str | None:
        """A URL for the blob at `path`, or None when the registry would not serve it (forward the GET)."""
        conn = http.client.HTTPConnection(*self.proxy.upstream, timeout=60)
        try:
            conn.request("HEAD", path, headers={"Authorization": authorization} if authorization else {})
            found = conn.getresponse().status == 200
        finally:
            conn.close()
        if not found:
            return None
        ticket = secrets.token_urlsafe(16)
        with self.lock:
            self.tickets[ticket] = (path, authorization)
        return f"{self.url}/{ticket}{urlsplit(path).path}?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Signature=test"


class _BlobStoreHandler(QuietHandler):
    def do_GET(self) -> None:
        store: BlobStore = self.server.owner  # type: ignore[attr-defined]
        with store.lock:
            store.requests += 1
            if "Authorization" in self.headers:
                store.rejected += 1
        if "Authorization" in self.headers:
            self._answer(400, S3_AUTH_BODY)
            return
        ticket = urlsplit(self.path).path.split("/")[1]
        with store.lock:
            target = store.tickets.get(ticket)
        if target is None:
            self._answer(403, b"<Error><Code>AccessDenied</Code></Error>")
            return
        path, authorization = target
        headers = {"Authorization": authorization} if authorization else {}
        if "Range" in self.headers:
            headers["Range"] = self.headers["Range"]
        conn = http.client.HTTPConnection(*store.proxy.upstream, timeout=300)
        try:
            conn.request(self.command, path, headers=headers)
            resp = conn.getresponse()
            self.send_response_only(resp.status)
            for name in ("Content-Length", "Content-Range", "Content-Type", "Accept-Ranges", "ETag"):
                if resp.getheader(name):
                    self.send_header(name, resp.getheader(name, ""))
            self.end_headers()
            while piece := resp.read(CHUNK):
                self.wfile.write(piece)
                with store.lock:
                    store.bytes_sent += len(piece)
        except OSError:
            self.close_connection = True
        finally:
            conn.close()

    do_HEAD = do_GET

    def _answer(self, code: int, body: bytes) -> None:
        self.send_response_only(code)
        self.send_header("Content-Type", "application/xml")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)
