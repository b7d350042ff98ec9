"""A small HTTP/1.1 client for registry traffic: keep-alive connections per origin, TLS through the standard
library, proxies from the environment, and bodies read straight from the socket.

Why not a general HTTP library: importing one cost ~45 ms of every command's start-up (a third of `ocipush tags`),
and parsing answers through it cost ~30 % of a pull's CPU. A registry client needs little of HTTP: requests with a
known body, answers framed by Content-Length, chunks or the end of the connection, no content decoding (every
request asks for identity: blobs and manifests are hashed as they arrive). Every read of the socket is bounded by
the per-request deadline (`deadline.py`) as well as the per-read timeout."""

from __future__ import annotations

import abc
import contextlib
import json
import select
import socket
import threading
import time
from collections.abc import Iterable, Iterator
from urllib.parse import urlsplit

from ocipush.registry import deadline
from ocipush.registry.proxy import Proxy, proxy_for

TYPE_CHECKING = False  # as typing's, which the short commands do not import (docs/benchmarks.md, S5)
if TYPE_CHECKING:
    import ssl
    from typing import Any, overload

READ_SIZE = 1 << 20
MAX_HEAD_BYTES = 64 << 10  # status line and headers of one answer
MAX_HEADERS = 200
MAX_INTERIM = 10  # 1xx answers before the final one: each is bounded, their number must be too
IDLE_SECONDS = 60.0  # a kept-alive connection older than this is closed rather than reused
_NO_BODY_STATUS = frozenset({204, 304})
_UNSAFE = frozenset("\r\n\0")


class WireError(Exception):
    """A request failed on the wire: no connection, a timeout, or an answer that is not HTTP/1.1."""


class ConnectError(WireError):
    pass


class ProxyRefused(ConnectError):
    """The proxy from the environment would not open a tunnel (its message says why)."""


class TLSFailed(ConnectError):
    """The TLS handshake failed: an untrusted certificate or no common protocol (its message says which)."""


class Timeout(WireError):
    pass


class ProtocolError(WireError):
    pass


class SendFailed(ProtocolError):
    """The socket failed while sending: the server may have closed it after answering early."""


class StaleConnection(WireError):
    """A kept-alive connection the server had closed before it read the request: sending again is safe."""


class SocketBody(abc.ABC):
    """A body of `length` bytes that writes itself to the socket: a file range goes with sendfile to another host,
    through one reused buffer otherwise, never as Python objects (`blobsource.FileRangeBody`)."""

    length: int

    @abc.abstractmethod
    def send_to(self, sock: socket.socket) -> None: ...


class _Bytes(SocketBody):
    def __init__(self, data: bytes | bytearray | memoryview) -> None:
        self.data = data
        self.length = len(data)

    def send_to(self, sock: socket.socket) -> None:
        sock.sendall(self.data)


Body = bytes | Iterable[bytes] | SocketBody


class Headers:
    """Answer headers, looked up case-insensitively; repeated headers read as one value joined with ", "."""

    def __init__(self, pairs: Iterable[tuple[str, str]] = ()) -> None:
        self._values: dict[str, str] = {}
        for name, value in pairs:
            key = name.lower()
            self._values[key] = f"{self._values[key]}, {value}" if key in self._values else value

    if TYPE_CHECKING:

        @overload
        def get(self, name: str) -> str | None: ...
        @overload
        def get(self, name: str, default: str) -> str: ...

    def get(self, name: str, default: str | None = None) -> str | None:
        return self._values.get(name.lower(), default)

    def __getitem__(self, name: str) -> str:
        return self._values[name.lower()]

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and name.lower() in self._values

    def items(self) -> list[tuple[str, str]]:
        return list(self._values.items())


class Connection:
    """One socket to an origin, with the bytes read past the last answer's head."""

    def __init__(self, sock: socket.socket, key: str, timeout: float) -> None:
        self.sock = sock
        self.key = key
        self.timeout = timeout  # per read and per write
        self.pending = b""
        self.reused = False
        self.idle_since = 0.0

    def recv(self, size: int) -> bytes:
        """Up to `size` bytes (the pending ones first); b"" at the end of the connection."""
        buffer = bytearray(size)
        return bytes(buffer[: self.recv_into(memoryview(buffer))])

    def recv_into(self, buffer: memoryview) -> int:
        """Read into `buffer` (the pending bytes first); 0 at the end of the connection."""
        if self.pending:
            n = min(len(buffer), len(self.pending))
            buffer[:n] = self.pending[:n]
            self.pending = self.pending[n:]
            return n
        self._arm()
        try:
            return self.sock.recv_into(buffer)
        except TimeoutError as exc:
            raise Timeout(deadline.timeout_message()) from exc
        except OSError as exc:
            raise ProtocolError(exc.__class__.__name__) from None

    def _arm(self) -> None:
        """The next read waits no longer than the per-read timeout, nor past the request's deadline."""
        wait = deadline.read_timeout(self.timeout)
        if wait <= 0:
            raise Timeout(deadline.MESSAGE)
        self.sock.settimeout(wait)

    def send(self, data: bytes | bytearray | memoryview) -> None:
        self.send_body(_Bytes(data))

    def send_body(self, body: SocketBody) -> None:
        self.sock.settimeout(self.timeout)
        try:
            body.send_to(self.sock)
        except TimeoutError:
            raise Timeout("timed out sending") from None
        except OSError as exc:
            raise SendFailed(exc.__class__.__name__) from None
        deadline.renew()

    def readable_while_idle(self) -> bool:
        """Whether an idle connection has something to read: the server closed it (or sent junk). Either way it
        cannot carry another request."""
        if self.pending:
            return True
        try:
            poller = select.poll()
            poller.register(self.sock, select.POLLIN)
            return bool(poller.poll(0))
        except (OSError, ValueError):
            return True

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.sock.close()


class Response:
    """An answer. Its body is read by `iter_raw` (streamed) or `read` (whole); `close` returns the connection
    to its pool when the body was read to its end, and closes it otherwise."""

    def __init__(
        self, status: int, reason: str, headers: Headers, url: str, method: str,
        connection: Connection | None, pool: Pool | None, version: str = "HTTP/1.1",
    ) -> None:  # fmt: skip
        self.status_code = status
        self.reason = reason
        self.headers = headers
        self.url = url
        self.method = method
        self._connection = connection
        self._pool = pool
        self._content: bytes | None = None
        self._left: int | None = None  # body bytes still to read when framed by Content-Length
        self._chunked = False
        self._keep_alive = False
        if connection is not None:
            self._frame(connection, version)

    def with_content(self, content: bytes) -> Response:
        """A copy of this (closed) answer holding its body, read by the caller."""
        copy = Response(self.status_code, self.reason, self.headers, self.url, self.method, None, None)
        copy._content = bytes(content)
        return copy

    def _frame(self, connection: Connection, version: str) -> None:
        """How the body ends (RFC 9112 6.3), and whether the connection may carry another request after it."""
        headers = self.headers
        tokens = {t.strip().lower() for t in (headers.get("connection") or "").split(",")}
        # HTTP/1.0 closes after each answer unless it says otherwise
        persistent = "close" not in tokens and (version != "HTTP/1.0" or "keep-alive" in tokens)
        coding, length = headers.get("transfer-encoding"), headers.get("content-length")
        if self.method == "HEAD" or self.status_code in _NO_BODY_STATUS:
            self._left, self._keep_alive = 0, persistent
        elif coding is not None:
            if coding.strip().lower() != "chunked":  # nothing asks for another coding: h11 refused them too
                raise ProtocolError(f"the answer has an unsupported Transfer-Encoding {coding[:40]!r}")
            # with a Content-Length too, it may be a response-splitting attempt: chunks frame it, nothing follows
            self._chunked, self._keep_alive = True, persistent and length is None
        elif length is not None:
            values = {v.strip() for v in length.split(",")}  # repeated, or listed: all the same number
            value = values.pop()
            if values or not (value.isascii() and value.isdigit()):  # int() would take "+1", " 1", "1_0"
                raise ProtocolError(f"the answer has an invalid Content-Length {length[:40]!r}")
            self._left, self._keep_alive = int(value), persistent
        # else: the body runs to the end of the connection, which cannot be kept

    @property
    def content(self) -> bytes:
        if self._content is None:
            raise ProtocolError("the answer's body was not read")
        return self._content

    def json(self) -> Any:
        return json.loads(self.content)

    def read(self) -> bytes:
        if self._content is None:
            self._content = b"".join(self.iter_raw())
        return self._content

    def iter_raw(self, size: int = READ_SIZE) -> Iterator[bytes]:
        """The body's bytes as they come (pieces of up to `size` bytes); ends with the body."""
        if self._content is not None:
            if self._content:
                yield self._content
            return
        connection = self._connection
        if connection is None:
            return
        if self._chunked:
            yield from self._chunks(connection, size)
        elif self._left is None:
            while data := connection.recv(size):
                yield data
        else:
            while self._left > 0:
                buffer = bytearray(min(self._left, size))
                self._fill(connection, memoryview(buffer))
                yield buffer  # type: ignore[misc]  # bytes-like: hashers, files and joins take it as it is
        self._finished()

    def iter_into(self, buffer: memoryview) -> Iterator[memoryview]:
        """The body's bytes as `iter_raw` gives them, but a body framed by Content-Length is read into `buffer`:
        each piece is a view of its start, valid until the next is asked for. One buffer then serves a whole blob,
        where a fresh one per piece costs its zeroing and page faults (1 GiB of them for a 1 GiB pull), and every
        piece but the last fills it (a file written with O_DIRECT needs them whole)."""
        connection = self._connection
        if connection is None or self._left is None or self._chunked or self._content is not None:
            for data in self.iter_raw(len(buffer)):
                yield memoryview(data)
            return
        while self._left > 0:
            piece = buffer[: min(self._left, len(buffer))]
            self._fill(connection, piece)
            yield piece
        self._finished()

    def _fill(self, connection: Connection, view: memoryview) -> None:
        """Read the next `len(view)` bytes of a Content-Length body into `view`."""
        left, got = self._left or 0, 0
        while got < len(view):
            n = connection.recv_into(view[got:])
            if not n:
                raise ProtocolError(f"the connection closed {left - got} bytes before the answer's end")
            got += n
        self._left = left - got

    def _chunks(self, connection: Connection, size: int) -> Iterator[bytes]:
        while True:
            digits = _read_line(connection, 1024).split(b";", 1)[0].strip(b" \t")
            # int(..., 16) would also take "-5", "0x5" and "5_0"
            if not digits or len(digits) > 16 or digits.strip(b"0123456789abcdefABCDEF"):
                raise ProtocolError("the answer's chunked body is malformed")
            length = int(digits, 16)
            if length == 0:
                trailers = 0
                while line := _read_line(connection, MAX_HEAD_BYTES):  # trailers, up to the empty line
                    trailers += len(line) + 2
                    if trailers > MAX_HEAD_BYTES:
                        raise ProtocolError("the answer's trailers are too large")
                return
            while length:
                data = connection.recv(min(length, size))
                if not data:
                    raise ProtocolError("the connection closed inside a chunk of the answer")
                length -= len(data)
                yield data
            if _read_line(connection, 2):
                raise ProtocolError("the answer's chunked body is malformed")

    def _finished(self) -> None:
        connection, self._connection = self._connection, None
        if connection is None:
            return
        if self._keep_alive and self._pool is not None:
            self._pool.release(connection)
        else:
            connection.close()

    def close(self) -> None:
        """Done with the answer: a body not read to its end costs the connection (never drained: it may be huge)."""
        connection, self._connection = self._connection, None
        if connection is None:
            return
        if self._keep_alive and self._left == 0 and self._pool is not None:
            self._pool.release(connection)
        else:
            connection.close()


def _read_line(connection: Connection, limit: int) -> bytes:
    """One CRLF-terminated line without its CRLF."""
    data = b""
    while True:
        end = data.find(b"\n")
        if end >= 0:
            connection.pending = data[end + 1 :] + connection.pending
            return data[:end].rstrip(b"\r")
        if len(data) > limit:
            raise ProtocolError("an answer line is too long")
        more = connection.recv(4096)
        if not more:
            raise ProtocolError("the connection closed inside the answer")
        data += more


class Pool:
    """Kept-alive connections per origin for one Transport (shared by its threads), each origin's TLS context and
    the proxy the environment names for it."""

    def __init__(self, timeout: float, connect_timeout: float, max_idle: int) -> None:
        self.timeout = timeout
        self.connect_timeout = connect_timeout
        self.max_idle = max_idle
        self._idle: dict[str, list[Connection]] = {}
        self._lock = threading.Lock()

    def request(
        self, method: str, url: str, headers: dict[str, str], body: Body | None, tls: ssl.SSLContext | None
    ) -> Response:
        """Send one request and read the answer's head. An iterable body needs its Content-Length in `headers`
        (otherwise it goes chunked)."""
        if not url.isascii() or any(c <= " " or c == "\x7f" for c in url):
            # a URL from a server (a Location) must not smuggle a space or a line break into the request line
            raise ProtocolError("a URL with spaces or control characters cannot be requested")
        parts = urlsplit(url)
        try:
            scheme, host, port = parts.scheme, parts.hostname, parts.port or (443 if parts.scheme == "https" else 80)
        except ValueError:  # a port that is no number, or out of range
            where = parts.netloc.rsplit("@", 1)[-1][:80]  # never the userinfo, nor a presigned query
            raise ProtocolError(f"a URL for {where!r} has an invalid port") from None
        if scheme not in ("http", "https") or not host:
            raise ProtocolError(f"a {scheme[:20]!r} URL without a host, or not http(s), cannot be requested")
        if any(_UNSAFE & set(name + value) for name, value in headers.items()):
            # a value from a server (a media type, a token) must not add lines to the request
            raise ProtocolError("a request header holds a line break or a control character")
        target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        proxy = proxy_for(scheme, host)
        if proxy is not None and scheme == "http":
            target = url.split("#", 1)[0]  # a plain-HTTP request through a proxy names the whole URL
        key = f"{scheme}://{host}:{port}|{id(tls)}"
        lines = [f"{method} {target} HTTP/1.1", f"Host: {_host_header(parts.netloc, scheme)}"]
        if proxy is not None and scheme == "http" and proxy.authorization:
            lines.append(f"Proxy-Authorization: {proxy.authorization}")
        whole = body if isinstance(body, bytes | bytearray | memoryview) else None
        declared = next((value for name, value in headers.items() if name.lower() == "content-length"), None)
        sized = declared is not None
        if not sized and (whole is not None or isinstance(body, SocketBody)):
            lines.append(f"Content-Length: {len(whole) if whole is not None else body.length}")  # type: ignore[union-attr]
        chunked = not sized and whole is None and body is not None and not isinstance(body, SocketBody)
        if chunked:
            lines.append("Transfer-Encoding: chunked")
        lines += (f"{name}: {value}" for name, value in headers.items())
        try:
            head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
        except UnicodeEncodeError:
            raise ProtocolError("a request header holds a character that HTTP/1.1 cannot carry") from None
        connection = self._acquire(key) or self._connect(key, scheme, host, port, tls, proxy)
        try:
            early: SendFailed | None = None
            if whole is not None and len(whole) <= 64 << 10:
                _send_head(connection, head + bytes(whole))
            else:
                _send_head(connection, head)
                try:
                    if isinstance(body, bytes | bytearray | memoryview):
                        connection.send(body)
                    elif isinstance(body, SocketBody):
                        connection.send_body(body)
                    elif body is not None:
                        _send_stream(connection, body, None if chunked else int(declared or 0))
                except SendFailed as exc:
                    # the server answered before reading the whole body (a 401, a 413) and closed: its answer says
                    # why, when it can still be read (httpcore reads it too)
                    early = exc
            try:
                version, status, reason, answer = _read_head(connection, replayable=body is None or whole is not None)
            except WireError:
                if early is not None:
                    raise early from None  # no answer after all: the send's own failure says what happened
                raise
            response = Response(status, reason, answer, url, method, connection, self, version)  # may refuse it
            if early is not None:
                response._keep_alive = False  # half the body is still on its way: nothing can follow it
            return response
        except BaseException:
            connection.close()
            raise

    def _acquire(self, key: str) -> Connection | None:
        while True:
            with self._lock:
                idle = self._idle.get(key)
                connection = idle.pop() if idle else None
            if connection is None:
                return None
            if time.monotonic() - connection.idle_since < IDLE_SECONDS and not connection.readable_while_idle():
                connection.reused = True
                return connection
            connection.close()

    def release(self, connection: Connection) -> None:
        connection.idle_since = time.monotonic()
        with self._lock:
            idle = self._idle.setdefault(connection.key, [])
            if len(idle) < self.max_idle:
                idle.append(connection)
                return
        connection.close()

    def _connect(
        self, key: str, scheme: str, host: str, port: int, tls: ssl.SSLContext | None, proxy: Proxy | None
    ) -> Connection:
        address = (proxy.host, proxy.port) if proxy is not None else (host, port)
        # bytes, because getaddrinfo loads the idna codec (~1 ms of start-up) for any str host, ASCII or not
        name = address[0].encode("ascii") if address[0].isascii() else address[0].encode("idna")
        try:
            sock = socket.create_connection((name, address[1]), timeout=self.connect_timeout)  # type: ignore[arg-type]
        except TimeoutError:
            raise ConnectError(f"timed out connecting to {address[0]}:{address[1]}") from None
        except OSError as exc:
            raise ConnectError(f"cannot connect to {address[0]}:{address[1]} ({exc.__class__.__name__})") from None
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        connection = Connection(sock, key, self.timeout)
        try:
            if proxy is not None and scheme == "https":
                _tunnel(connection, host, port, proxy)
            if scheme == "https":
                if tls is None:
                    raise ConnectError("an HTTPS request needs a TLS context")
                connection.sock = _start_tls(sock, tls, host, self.connect_timeout)
        except BaseException:
            connection.close()
            raise
        return connection

    def close(self) -> None:
        with self._lock:
            idle = [c for connections in self._idle.values() for c in connections]
            self._idle.clear()
        for connection in idle:
            connection.close()


def _host_header(netloc: str, scheme: str) -> str:
    host = netloc.rsplit("@", 1)[-1]
    default = ":443" if scheme == "https" else ":80"
    return host.removesuffix(default)


def _send_head(connection: Connection, data: bytes) -> None:
    """The request's head (and a small body): failing on a kept-alive connection means the server closed it while
    it was idle, before anything of this request was read."""
    try:
        connection.send(data)
    except ProtocolError as exc:
        if connection.reused:
            raise StaleConnection(str(exc)) from None
        raise


def _send_stream(connection: Connection, body: Iterable[bytes], length: int | None) -> None:
    """An iterable body: chunked when `length` is None, else exactly `length` bytes (more would be read by the
    server as the next request: a smuggled one; fewer would leave it waiting)."""
    sent = 0
    for piece in body:
        if not piece:
            continue
        if length is None:
            connection.send(b"%x\r\n" % len(piece) + bytes(piece) + b"\r\n")
            continue
        sent += len(piece)
        if sent > length:
            raise ProtocolError(f"the request body is longer than its Content-Length {length}")
        connection.send(piece)
    if length is None:
        connection.send(b"0\r\n\r\n")
    elif sent < length:
        raise ProtocolError(f"the request body ended {length - sent} bytes before its Content-Length")


def _read_head(connection: Connection, replayable: bool = False) -> tuple[str, int, str, Headers]:
    """The status and headers of the next final (non-1xx) answer. On a kept-alive connection that ends before any
    answer, a request without a streamed body is reported as stale, to be sent again."""
    for _interim in range(MAX_INTERIM + 1):
        data = b""
        while (end := data.find(b"\r\n\r\n")) < 0:
            if len(data) > MAX_HEAD_BYTES:
                raise ProtocolError("the answer's headers are too large")
            stale = not data and connection.reused and replayable
            try:
                more = connection.recv(16384)
            except ProtocolError as exc:  # reset
                if stale:
                    raise StaleConnection(str(exc)) from None
                raise
            if not more:
                if stale:
                    raise StaleConnection("the kept-alive connection was closed by the server")
                raise ProtocolError("the connection closed before a complete answer")
            data += more
        connection.pending = data[end + 4 :] + connection.pending
        lines = data[:end].decode("latin-1").split("\r\n")
        status_line = lines[0].split(" ", 2)
        code = status_line[1] if len(status_line) > 1 else ""
        # three ASCII digits: str.isdigit() alone takes "²", which int() refuses
        if status_line[0] not in ("HTTP/1.0", "HTTP/1.1") or len(code) != 3 or not (code.isascii() and code.isdigit()):
            raise ProtocolError("the answer is not HTTP/1.x")
        status = int(code)
        if status == 101:  # no request asks for an upgrade: what follows would not be HTTP
            raise ProtocolError("the server switched protocols unasked (HTTP 101)")
        if 100 <= status < 200:
            continue  # 100 Continue and the like: the real answer follows
        if len(lines) > MAX_HEADERS:
            raise ProtocolError("the answer has too many headers")
        pairs = []
        for line in lines[1:]:
            name, sep, value = line.partition(":")
            if not sep or not name or name != name.strip():
                raise ProtocolError("the answer has a malformed header line")
            pairs.append((name, value.strip()))
        return status_line[0], status, status_line[2] if len(status_line) > 2 else "", Headers(pairs)
    raise ProtocolError("the answer sends interim (1xx) answers without end")


def _tunnel(connection: Connection, host: str, port: int, proxy: Proxy) -> None:
    """CONNECT through an HTTP proxy, so that TLS runs end to end with the registry."""
    authority = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"  # an IPv6 address goes in brackets
    lines = [f"CONNECT {authority} HTTP/1.1", f"Host: {authority}"]
    if proxy.authorization:
        lines.append(f"Proxy-Authorization: {proxy.authorization}")
    connection.send(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))
    _version, status, _reason, _headers = _read_head(connection)
    if status != 200:
        why = " (set its credentials in the proxy URL: http://USER:PASSWORD@HOST:PORT)" if status in (401, 407) else ""
        raise ProxyRefused(f"the proxy {proxy.host}:{proxy.port} refused a tunnel to {host}:{port}: HTTP {status}{why}")
    if connection.pending:
        raise ProtocolError("the proxy sent data before the tunnel opened")


def _start_tls(sock: socket.socket, tls: ssl.SSLContext, host: str, timeout: float) -> socket.socket:
    import ssl

    sock.settimeout(timeout)
    try:
        return tls.wrap_socket(sock, server_hostname=host)
    except ssl.SSLCertVerificationError as exc:
        raise TLSFailed(f"the TLS certificate of {host} is not trusted ({exc.verify_message})") from exc
    except (ssl.SSLError, OSError) as exc:
        # OpenSSL's reason, as httpx showed it: WRONG_VERSION_NUMBER says the port speaks plain HTTP
        reason = f": {exc.reason}" if isinstance(exc, ssl.SSLError) and isinstance(exc.reason, str) else ""
        raise TLSFailed(f"the TLS handshake with {host} failed ({exc.__class__.__name__}{reason})") from None
