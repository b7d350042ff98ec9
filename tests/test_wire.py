"""The HTTP/1.1 client's edges that no registry shows on demand, against a scripted socket server: a kept-alive
connection the server drops while it is idle or just as the next request arrives, chunked answers, answers that end
with the connection, and an interim 100 Continue. Each case asserts that the server really did the odd thing."""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import cast

import pytest

from ocipush import blobsource
from ocipush.blobsource import FileRangeBody
from ocipush.errors import LayoutError
from ocipush.registry.wire import Pool, ProtocolError, ProxyRefused, StaleConnection, TLSFailed

Script = Callable[[socket.socket, int, int], bool]  # (connection, its number, request number on it) -> keep open


class ScriptedServer:
    """Reads each request's head and lets `script` answer it; counts connections and requests."""

    def __init__(self, script: Script) -> None:
        self.script = script
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.connections = 0
        self.requests: list[bytes] = []
        self.hung_up = threading.Semaphore(0)  # released each time the client closes a connection
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            self.connections += 1
            threading.Thread(target=self._handle, args=(conn, self.connections), daemon=True).start()

    def _handle(self, conn: socket.socket, number: int) -> None:
        buffer, served = b"", 0
        # a client that gives up on a flood resets the connection: that ends the conversation, it is no failure
        with conn, contextlib.suppress(ConnectionResetError, BrokenPipeError):
            while True:
                while b"\r\n\r\n" not in buffer:
                    data = conn.recv(65536)
                    if not data:
                        self.hung_up.release()
                        return
                    buffer += data
                head, _, buffer = buffer.partition(b"\r\n\r\n")
                self.requests.append(head.split(b"\r\n", 1)[0])
                served += 1
                if not self.script(conn, number, served):
                    return

    def close(self) -> None:
        self.listener.close()


@pytest.fixture
def serve() -> Iterator[Callable[[Script], ScriptedServer]]:
    servers: list[ScriptedServer] = []

    def start(script: Script) -> ScriptedServer:
        servers.append(ScriptedServer(script))
        return servers[-1]

    yield start
    for server in servers:
        server.close()


def _answer(body: bytes, extra: str = "") -> bytes:
    return f"HTTP/1.1 200 OK\r\nContent-Length: {len(body)}\r\n{extra}\r\n".encode() + body


def _get(pool: Pool, server: ScriptedServer, path: str = "/v2/") -> bytes:
    response = pool.request("GET", f"http://127.0.0.1:{server.port}{path}", {}, None, None)
    return response.read()


def test_a_connection_closed_while_idle_is_not_reused(serve: Callable[[Script], ScriptedServer]) -> None:
    def answer_then_hang_up(conn: socket.socket, number: int, served: int) -> bool:
        conn.sendall(_answer(b"one"))
        return False  # closes without saying "Connection: close"

    server = serve(answer_then_hang_up)
    pool = Pool(10, 10, max_idle=4)
    answers = []
    for _ in range(3):
        answers.append(_get(pool, server))
        time.sleep(0.1)  # the server's close lands while the connection is idle in the pool
    assert answers == [b"one"] * 3
    assert server.connections == 3


def test_a_request_racing_the_servers_close_is_sent_again(serve: Callable[[Script], ScriptedServer]) -> None:
    def drop_the_second_request(conn: socket.socket, number: int, served: int) -> bool:
        if number == 1 and served == 2:
            return False  # the request arrived as the server gave up the connection: no answer at all
        conn.sendall(_answer(b"ok"))
        return True

    server = serve(drop_the_second_request)
    pool = Pool(10, 10, max_idle=4)
    assert _get(pool, server) == b"ok"
    with pytest.raises(StaleConnection):
        _get(pool, server)  # the transport sends it again on a fresh connection; the pool reports why
    assert _get(pool, server) == b"ok"
    assert server.connections == 2 and len(server.requests) == 3


def test_chunked_and_close_delimited_answers(serve: Callable[[Script], ScriptedServer]) -> None:
    def answer(conn: socket.socket, number: int, served: int) -> bool:
        if served == 1:
            conn.sendall(b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                         b"5;ext=1\r\nhello\r\n6\r\n world\r\n0\r\nTrailer: x\r\n\r\n")  # fmt: skip
            return True
        conn.sendall(b"HTTP/1.1 200 OK\r\n\r\nto the end")
        return False

    server = serve(answer)
    pool = Pool(10, 10, max_idle=4)
    assert _get(pool, server) == b"hello world"
    assert _get(pool, server) == b"to the end"  # on the same, kept-alive connection
    assert server.connections == 1


def test_an_answer_cut_short_is_an_error(serve: Callable[[Script], ScriptedServer]) -> None:
    def cut(conn: socket.socket, number: int, served: int) -> bool:
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nonly this")
        return False

    server = serve(cut)
    with pytest.raises(ProtocolError, match="closed 91 bytes before the answer's end"):
        _get(Pool(10, 10, max_idle=4), server)


def test_a_body_read_into_one_buffer(serve: Callable[[Script], ScriptedServer]) -> None:
    body = bytes(range(256)) * 40  # 10,240 bytes: two whole buffers of 4,096 and a short last piece
    answers = [_answer(body), b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n"]

    def answer(conn: socket.socket, number: int, served: int) -> bool:
        conn.sendall(answers[served - 1] if served <= len(answers) else b"HTTP/1.1 200 OK\r\n\r\nto the end")
        return served <= len(answers)

    server = serve(answer)
    pool = Pool(10, 10, max_idle=4)
    buffer = bytearray(4096)
    response = pool.request("GET", f"http://127.0.0.1:{server.port}/v2/blob", {}, None, None)
    received, sizes = b"", []
    for piece in response.iter_into(memoryview(buffer)):
        assert piece.obj is buffer  # a view of the caller's buffer, no fresh allocation per piece
        received += piece
        sizes.append(len(piece))
    assert received == body and sizes == [4096, 4096, 2048]
    # Chunked and close-delimited answers keep their own path, through the same call, on the same connection.
    for expected in (b"abc", b"to the end"):
        response = pool.request("GET", f"http://127.0.0.1:{server.port}/v2/", {}, None, None)
        assert b"".join(bytes(piece) for piece in response.iter_into(memoryview(buffer))) == expected
    assert server.connections == 1


def test_a_body_read_into_a_buffer_cut_short_is_an_error(serve: Callable[[Script], ScriptedServer]) -> None:
    def cut(conn: socket.socket, number: int, served: int) -> bool:
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 10000\r\n\r\n" + b"x" * 5000)
        return False

    server = serve(cut)
    response = Pool(10, 10, max_idle=4).request("GET", f"http://127.0.0.1:{server.port}/v2/", {}, None, None)
    received = 0
    with pytest.raises(ProtocolError, match="closed 5000 bytes before the answer's end"):
        for piece in response.iter_into(memoryview(bytearray(4096))):
            received += len(piece)
    assert received == 4096  # the whole buffer that did arrive; the short piece is never handed out


@contextlib.contextmanager
def _tcp_pair() -> Iterator[tuple[socket.socket, socket.socket]]:
    """A real TCP connection over loopback: (client end, server end)."""
    with socket.create_server(("127.0.0.1", 0)) as listener:
        client = socket.create_connection(listener.getsockname())
        server, _ = listener.accept()
        with client, server:
            yield client, server


def _receive(sock: socket.socket, into: bytearray) -> threading.Thread:
    def run() -> None:
        while data := sock.recv(1 << 20):
            into.extend(data)

    thread = threading.Thread(target=run)
    thread.start()
    return thread


@pytest.mark.parametrize("by_sendfile", [False, True], ids=["copied", "sendfile"])
def test_a_file_body_arrives_whole_either_way_and_a_short_file_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, by_sendfile: bool
) -> None:
    """On loopback the body is copied through a buffer; the sendfile way (for another host, which this machine does
    not have) is forced here, on the same real connection."""
    path = tmp_path / "blob"
    path.write_bytes(bytes(range(256)) * 4096 + b"tail")  # 1 MiB + 4: several pieces, a short last one
    calls: list[int] = []
    real_sendfile = socket.socket.sendfile

    def counting_sendfile(sock: socket.socket, *args: object) -> int:
        calls.append(1)
        return real_sendfile(sock, *args)  # type: ignore[arg-type]

    monkeypatch.setattr(socket.socket, "sendfile", counting_sendfile)
    if by_sendfile:
        monkeypatch.setattr(blobsource, "copy_piece", lambda sock: 0)
    seen: list[int] = []
    received = bytearray()
    length = path.stat().st_size - 5
    with _tcp_pair() as (client, server):
        reader = _receive(server, received)
        FileRangeBody(str(path), 5, length, seen.append).send_to(client)
        with pytest.raises(LayoutError, match="shorter than its descriptor"):
            FileRangeBody(str(path), length, 9000, seen.append).send_to(client)
        client.shutdown(socket.SHUT_WR)
        reader.join(10)
    data = path.read_bytes()
    assert bytes(received) == data[5:] + data[length:]
    assert seen[0] == length  # one step: progress heard once, after the whole range
    assert bool(calls) == by_sendfile


def test_sendfile_only_for_a_plain_connection_to_another_host() -> None:
    """Real sockets for this host (IPv4 and IPv6 loopback, a Unix socket pair); a stand-in that reports a peer
    elsewhere for the one case this machine cannot connect to."""

    class Elsewhere:
        def __init__(self, peer: tuple[object, ...], tls: bool) -> None:
            self.peer = peer
            if tls:
                self.getpeercert = dict

        def getpeername(self) -> tuple[object, ...]:
            return self.peer

    def elsewhere(*peer: object, tls: bool = False) -> socket.socket:
        return cast(socket.socket, Elsewhere(peer, tls))

    local = blobsource.LOCAL_PIECE
    with _tcp_pair() as (client, _):
        assert blobsource.copy_piece(client) == local
    listener6 = socket.create_server(("::1", 0), family=socket.AF_INET6)
    with listener6, socket.create_connection(listener6.getsockname()[:2]) as client6:
        assert blobsource.copy_piece(client6) == local
    left, right = socket.socketpair()
    with left, right:
        assert blobsource.copy_piece(left) == local
    assert blobsource.copy_piece(elsewhere("192.0.2.10", 443)) == 0
    assert blobsource.copy_piece(elsewhere("2001:db8::1", 443, 0, 0)) == 0
    assert blobsource.copy_piece(elsewhere("::ffff:127.0.0.1", 443, 0, 0)) == local
    assert blobsource.copy_piece(elsewhere("192.0.2.10", 443, tls=True)) == blobsource.TLS_PIECE


def test_a_location_cannot_smuggle_a_line_into_the_request(serve: Callable[[Script], ScriptedServer]) -> None:
    def never(conn: socket.socket, number: int, served: int) -> bool:
        raise AssertionError("nothing may be sent")

    server = serve(never)
    with pytest.raises(ProtocolError, match="spaces or control characters"):
        _get(Pool(10, 10, max_idle=4), server, "/v2/x HTTP/1.1\r\nX-Injected: 1\r\n\r\nGET /v2/")
    assert server.connections == 0


def _one_answer(raw: bytes) -> Script:
    def script(conn: socket.socket, number: int, served: int) -> bool:
        conn.sendall(raw)
        return True

    return script


@pytest.mark.parametrize(
    ("raw", "why"),
    [
        (b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 9\r\n\r\nok", "invalid Content-Length"),
        (b"HTTP/1.1 200 OK\r\nContent-Length: +2\r\n\r\nok", "invalid Content-Length"),
        (b"HTTP/1.1 200 OK\r\nContent-Length: 1_0\r\n\r\nok", "invalid Content-Length"),
        (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n", "Transfer-Encoding"),
        (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n-2\r\nok\r\n0\r\n\r\n", "chunked body is malformed"),
        (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0x2\r\nok\r\n0\r\n\r\n", "chunked body is malformed"),
        (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nokX\r\n0\r\n\r\n", "chunked body is malformed"),
        (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n" + b"T: x\r\n" * 20000, "trailers are too large"),
        ("HTTP/1.1 ²00 OK\r\nContent-Length: 0\r\n\r\n".encode("latin-1"), "not HTTP/1.x"),
        (b"HTTP/1.1 2000 OK\r\nContent-Length: 0\r\n\r\n", "not HTTP/1.x"),
        (b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: h2c\r\n\r\n", "switched protocols"),
        (b"HTTP/1.1 100 Continue\r\n\r\n" * 5000, "interim"),
    ],
    ids=["conflicting-lengths", "signed-length", "underscore-length", "gzip-coding", "negative-chunk", "0x-chunk",
         "chunk-without-crlf", "endless-trailers", "unicode-digit-status", "four-digit-status", "unasked-101",
         "endless-100-continue"],
)  # fmt: skip
def test_a_badly_framed_answer_is_a_protocol_error(
    serve: Callable[[Script], ScriptedServer], raw: bytes, why: str
) -> None:
    # RFC 9112 6.3: a framing the client cannot be sure of is an error, never a guess (nor a ValueError)
    server = serve(_one_answer(raw))
    with pytest.raises(ProtocolError, match=why):
        _get(Pool(10, 10, max_idle=4), server)
    assert len(server.requests) == 1


@pytest.mark.parametrize(
    "raw",
    [
        b"HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok",  # HTTP/1.0 closes unless it says keep-alive
        b"HTTP/1.1 200 OK\r\nConnection: Keep-Alive, close\r\nContent-Length: 2\r\n\r\nok",
        # both framings: a response-splitting attempt may hide behind it, nothing may follow on that connection
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 99\r\n\r\n2\r\nok\r\n0\r\n\r\n",
    ],
    ids=["http10", "close-token", "chunked-with-length"],
)
def test_an_answer_that_ends_its_connection_is_not_kept(serve: Callable[[Script], ScriptedServer], raw: bytes) -> None:
    server = serve(_one_answer(raw))  # a lenient server: it would go on answering on the same connection
    pool = Pool(10, 10, max_idle=4)
    assert [_get(pool, server), _get(pool, server)] == [b"ok", b"ok"]
    assert server.connections == 2


def test_a_hostile_url_or_header_sends_nothing(serve: Callable[[Script], ScriptedServer]) -> None:
    def never(conn: socket.socket, number: int, served: int) -> bool:
        raise AssertionError("nothing may be sent")

    server = serve(never)
    pool = Pool(10, 10, max_idle=4)
    base = f"127.0.0.1:{server.port}"
    for url, why in [
        ("http://user:secret@127.0.0.1:99999/v2/?X-Amz-Signature=secret", "invalid port"),
        ("http://127.0.0.1:port/v2/", "invalid port"),
        (f"ftp://{base}/v2/", "not http"),  # a Location may name any scheme
        ("http:///v2/", "without a host"),
    ]:
        with pytest.raises(ProtocolError, match=why) as raised:
            pool.request("GET", url, {}, None, None)
        assert "secret" not in str(raised.value)
    for headers in [{"Content-Type": "a/b\r\nX-Injected: 1"}, {"Authorization": "Bearer \u2603"}]:
        with pytest.raises(ProtocolError, match="request header"):
            pool.request("GET", f"http://{base}/v2/", headers, None, None)
    assert server.connections == 0


def test_a_tunnel_to_an_ipv6_registry_names_it_in_brackets(
    serve: Callable[[Script], ScriptedServer], monkeypatch: pytest.MonkeyPatch
) -> None:
    # a scripted proxy (tinyproxy cannot reach an IPv6 registry here): it records the CONNECT line and refuses it
    proxy = serve(_one_answer(b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n"))
    monkeypatch.setenv("https_proxy", f"http://127.0.0.1:{proxy.port}")
    with pytest.raises(ProxyRefused, match=r"HTTP 403"):
        Pool(10, 10, max_idle=4).request("GET", "https://[::1]:5000/v2/", {}, None, None)
    assert proxy.requests == [b"CONNECT [::1]:5000 HTTP/1.1"]


@pytest.mark.parametrize(
    ("pieces", "why"),
    [([b"12345", b"GET /smuggled HTTP/1.1\r\nHost: x\r\n\r\n"], "longer"), ([b"123"], "ended 2 bytes before")],
)
def test_a_streamed_body_must_match_its_content_length(
    serve: Callable[[Script], ScriptedServer], pieces: list[bytes], why: str
) -> None:
    server = serve(lambda conn, number, served: True)  # never answers: the client must stop on its own
    with pytest.raises(ProtocolError, match=why):
        Pool(10, 10, max_idle=4).request(
            "PATCH", f"http://127.0.0.1:{server.port}/v2/", {"Content-Length": "5"}, iter(pieces), None
        )
    for _ in range(100):  # the server thread records the request line as it gets it
        if server.requests:
            break
        time.sleep(0.02)
    assert server.requests == [b"PATCH /v2/ HTTP/1.1"]  # the surplus never followed as a request of its own


def test_an_answer_refused_for_its_framing_closes_its_connection(serve: Callable[[Script], ScriptedServer]) -> None:
    server = serve(_one_answer(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 9\r\n\r\nok"))
    with pytest.raises(ProtocolError, match="invalid Content-Length") as raised:
        _get(Pool(10, 10, max_idle=4), server)
    # closed at once, not when the exception (kept as the context of the transport's own error) is collected
    assert server.hung_up.acquire(timeout=5)
    assert raised.value is not None


def test_tls_to_a_plain_http_port_says_why() -> None:
    import ssl

    listener = socket.create_server(("127.0.0.1", 0))
    answered = threading.Event()

    def plain_http() -> None:  # answers the TLS hello as a plain-HTTP server does
        conn, _ = listener.accept()
        with conn:
            conn.recv(4096)
            conn.sendall(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")
            answered.set()

    threading.Thread(target=plain_http, daemon=True).start()
    with listener, pytest.raises(TLSFailed, match=r"failed \(SSLError: WRONG_VERSION_NUMBER\)"):
        Pool(10, 10, max_idle=4).request(
            "GET", f"https://127.0.0.1:{listener.getsockname()[1]}/v2/", {}, None, ssl.create_default_context()
        )
    assert answered.wait(5)  # the plain-HTTP answer was really sent


def test_an_early_answer_to_a_body_is_read(serve: Callable[[Script], ScriptedServer]) -> None:
    def refuse_unread(conn: socket.socket, number: int, served: int) -> bool:
        conn.sendall(b"HTTP/1.1 413 Payload Too Large\r\nContent-Length: 8\r\nConnection: close\r\n\r\ntoo big!")
        return False  # closes with the body unread: the client's send fails

    server = serve(refuse_unread)
    sent: list[int] = []

    def body() -> Iterator[bytes]:
        for _ in range(64):
            sent.append(1)
            yield b"x" * (1 << 20)

    pool = Pool(10, 10, max_idle=4)
    url, size = f"http://127.0.0.1:{server.port}/v2/", {"Content-Length": str(64 << 20)}
    response = pool.request("PATCH", url, size, body(), None)
    assert (response.status_code, response.read()) == (413, b"too big!")  # the registry's own words, not "EPIPE"
    assert len(sent) < 64  # the send really failed part-way
    assert _get(pool, server) == b"too big!" and server.connections == 2  # that connection was not kept


def test_a_file_body_over_tls_goes_in_large_writes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import ssl

    from support.tls import issue_cert, make_ca

    ca = make_ca(tmp_path)
    server_cert = issue_cert(ca, tmp_path, "server")
    path = tmp_path / "blob"
    path.write_bytes(bytes(range(256)) * 12288)  # 3 MiB
    # the standard library's TLS fallback for sendfile writes 8 KiB at a time: it must not be taken
    monkeypatch.setattr(ssl.SSLSocket, "sendfile", lambda *args: pytest.fail("sendfile on a TLS socket"))
    server_context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_context.load_cert_chain(server_cert.cert_path, server_cert.key_path)
    received = bytearray()
    left, right = socket.socketpair()

    def serve() -> None:
        with server_context.wrap_socket(right, server_side=True) as tls:
            while data := tls.recv(1 << 20):
                received.extend(data)

    server = threading.Thread(target=serve)
    server.start()
    seen: list[int] = []
    with ssl.create_default_context(cafile=str(ca.cert_path)).wrap_socket(left, server_hostname="localhost") as tls:
        FileRangeBody(str(path), 7, 3 * 1024 * 1024 - 7, seen.append).send_to(tls)
        with pytest.raises(LayoutError, match="shorter than its descriptor"):
            FileRangeBody(str(path), 3 * 1024 * 1024 - 10, 20, seen.append).send_to(tls)
    server.join(10)
    assert bytes(received) == path.read_bytes()[7:] + path.read_bytes()[-10:]
    assert seen[0] == 3 * 1024 * 1024 - 7  # one step: progress heard once, after the whole range
