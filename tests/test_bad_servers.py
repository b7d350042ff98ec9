"""Registries that misbehave in ways a real one cannot be made to: answers cut short, bodies that are not JSON.
A tiny socket server on 127.0.0.1 plays them; every case must end in one ocipush error, never a traceback."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator

import pytest
from transferhelpers import assert_one_line_error, run_cli

from ocipush import api
from ocipush.errors import RegistryError, TransportError
from ocipush.registry.options import RegistryOptions

DISTRIBUTION = b"Docker-Distribution-Api-Version: registry/2.0\r\n"


def _serve(answer: bytes) -> Iterator[str]:
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(0.2)
    stop = threading.Event()

    def loop() -> None:
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            with conn:
                conn.recv(65536)
                conn.sendall(answer)

    thread = threading.Thread(target=loop, daemon=True)
    thread.start()
    yield f"127.0.0.1:{listener.getsockname()[1]}"
    stop.set()
    thread.join()
    listener.close()


@pytest.fixture
def cut_short() -> Iterator[str]:
    """Promises 1,000 bytes, sends 10, closes."""
    yield from _serve(b"HTTP/1.1 200 OK\r\n" + DISTRIBUTION + b"Content-Length: 1000\r\n\r\n0123456789")


@pytest.fixture
def not_json() -> Iterator[str]:
    body = b"<html>a login page</html>"
    yield from _serve(
        b"HTTP/1.1 200 OK\r\n" + DISTRIBUTION + b"Content-Type: text/html\r\nContent-Length: %d\r\n\r\n%b"
        % (len(body), body)
    )


def test_cut_short_answers_are_retried_then_one_error(cut_short: str) -> None:
    with pytest.raises(TransportError, match="gave up after 2 attempts"):
        api.list_tags(f"{cut_short}/app", options=RegistryOptions(max_attempts=2))
    assert_one_line_error(run_cli("tags", f"{cut_short}/app"), "connection failed")


def test_answers_that_are_not_json(not_json: str) -> None:
    with pytest.raises(RegistryError, match="not a JSON tags list"):
        api.list_tags(f"{not_json}/app", options=RegistryOptions())
    assert_one_line_error(run_cli("catalog", not_json), "not a JSON repositories list")


@pytest.mark.parametrize(
    ("body", "command"),
    [
        (b'{"tags":"abc"}', "tags"),  # a string is not split into a, b, c
        (b'{"tags":[1,2]}', "tags"),
        (b'{"tags":{"a":1}}', "tags"),
        (b'{"repositories":[{"name":"x"}]}', "catalog"),
        (b'["app"]', "catalog"),
    ],
)
def test_listings_that_are_not_lists_of_strings(body: bytes, command: str) -> None:
    answer = b"HTTP/1.1 200 OK\r\n" + DISTRIBUTION + b"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n%b"
    for host in _serve(answer % (len(body), body)):
        key = "tags" if command == "tags" else "repositories"
        with pytest.raises(RegistryError, match=f"not a JSON {key} list"):
            if command == "tags":
                api.list_tags(f"{host}/app", options=RegistryOptions())
            else:
                api.catalog(host, options=RegistryOptions())
        done = run_cli(command, f"{host}/app" if command == "tags" else host)
        assert_one_line_error(done, f"not a JSON {key} list")
        assert done.returncode == 5 and done.stdout == ""
