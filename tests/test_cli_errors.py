"""Bad input and odd answers end in one line and the documented exit code (item 13 of issue 9), against the real
registry wherever it can show the case; a token server that sends a non-ASCII token is played by a tiny HTTP server
because no real one does."""

from __future__ import annotations

import json
import os
import random
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from support.server import BackgroundServer, QuietHandler
from transferhelpers import assert_one_line_error, make_image, options, run_cli

from ocipush import api
from ocipush.localregistry import LocalRegistry
from ocipush.registry import retry


def _cache(tmp_path: Path) -> list[str]:
    return ["--cache-dir", str(tmp_path / "cache")]


@pytest.mark.parametrize("port", ["99999", "0"])
def test_an_impossible_port_is_bad_input_at_once(port: str) -> None:
    done = run_cli("digest", f"127.0.0.1:{port}/app:v1")
    assert_one_line_error(done, f"port {port} is not in 1-65535")
    assert done.returncode == 2


@pytest.mark.parametrize("endpoint", ["h=http://[bad", "h=http://127.0.0.1:99999"])
def test_a_malformed_endpoint_is_bad_input(endpoint: str) -> None:
    done = run_cli("digest", "h/app:v1", "--endpoint", endpoint)
    assert_one_line_error(done, f"endpoint {endpoint}")
    assert done.returncode == 2


def test_a_missing_ca_file_is_named(tmp_path: Path) -> None:
    missing = str(tmp_path / "nope.pem")
    done = run_cli("digest", "127.0.0.1:5000/app:v1", "--ca-file", missing)
    assert_one_line_error(done, missing)
    assert done.returncode == 2


def test_a_malformed_remote_manifest_is_a_registry_error(registry: LocalRegistry, tmp_path: Path) -> None:
    import httpx

    source, descriptor = make_image(tmp_path / "src")
    api.push(f"oci:{source.path}:v1", f"{registry.host}/bad:v0", options=options(tmp_path))
    manifest = json.loads(source.read_blob(descriptor.digest))
    manifest["config"]["size"] = -1
    put = httpx.put(
        f"{registry.url}/v2/bad/manifests/v1",
        content=json.dumps(manifest).encode(),
        headers={"Content-Type": descriptor.media_type},
    )
    assert put.status_code == 201, put.text  # distribution stores it: the client must judge it
    done = run_cli("pull", f"{registry.host}/bad:v1", str(tmp_path / "out"), *_cache(tmp_path))
    assert_one_line_error(done, "malformed", "size")
    assert done.returncode == 5


def test_a_directory_where_a_file_should_be_is_a_layout_error(registry: LocalRegistry, tmp_path: Path) -> None:
    source, _ = make_image(tmp_path / "src")
    index = Path(source.path) / "index.json"
    index.unlink()
    index.mkdir()
    done = run_cli("push", f"oci:{source.path}:v1", f"{registry.host}/app:v1", *_cache(tmp_path))
    assert_one_line_error(done, "index.json is not a regular file")
    assert done.returncode == 9
    (tmp_path / "archive").mkdir()
    done = run_cli("push", f"docker-archive:{tmp_path / 'archive'}", f"{registry.host}/app:v1", *_cache(tmp_path))
    assert_one_line_error(done, "is a directory, not a docker archive")
    assert done.returncode == 9
    done = run_cli("pull", f"{registry.host}/app:v1", f"docker-archive:{tmp_path / 'archive'}", *_cache(tmp_path))
    assert_one_line_error(done, "is a directory, not a docker archive")
    assert done.returncode == 9


def test_a_missing_relative_path_is_never_a_docker_hub_name(registry: LocalRegistry, tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "ocipush.cli", "push", "nope_dir", f"{registry.host}/x:v1", *_cache(tmp_path)],
        cwd=tmp_path, capture_output=True, text=True, timeout=60, check=False,
        # a proxy that refuses everything: had the name gone to Docker Hub, the error would say "connect"
        env={**os.environ, "HTTPS_PROXY": "http://127.0.0.1:1", "NO_PROXY": "127.0.0.1"},
    )  # fmt: skip
    assert_one_line_error(done, "nope_dir: no such file or directory")
    assert done.returncode == 2


def test_a_digest_on_an_oci_target_is_honoured_or_refused(registry: LocalRegistry, tmp_path: Path) -> None:
    source, descriptor = make_image(tmp_path / "src")
    api.push(f"oci:{source.path}:v1", f"{registry.host}/app:v1", options=options(tmp_path))
    wrong = "sha256:" + "0" * 64
    done = run_cli("pull", f"{registry.host}/app:v1", f"oci:{tmp_path / 'w'}@{wrong}", *_cache(tmp_path))
    assert_one_line_error(done, f"names digest {wrong}", descriptor.digest)
    assert done.returncode == 2 and not (tmp_path / "w").exists()
    done = run_cli("pull", f"{registry.host}/app:v1", f"oci:{tmp_path / 'r'}@{descriptor.digest}", *_cache(tmp_path))
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "r" / "blobs" / "sha256" / descriptor.digest[7:]).is_file()


@pytest.mark.parametrize("header", ["0", "-5"])
def test_retry_after_zero_or_negative_still_backs_off(header: str, monkeypatch: pytest.MonkeyPatch) -> None:
    drawn: list[float] = []

    def uniform(low: float, high: float) -> float:
        drawn.append(high)
        return high

    monkeypatch.setattr(random, "uniform", uniform)
    budget = retry.RetryBudget(max_attempts=5, max_seconds=60)
    assert budget.next_delay(header) == 0.5 and budget.next_delay(header) == 1.0
    assert drawn == [0.5, 1.0]  # the backoff was drawn: the header's "no pause" did not replace it
    assert retry.RetryBudget(max_attempts=5, max_seconds=60).next_delay("3") == 3.0


class _NonAsciiToken(QuietHandler):
    """A registry whose token service hands out a token with non-ASCII characters."""

    def do_GET(self) -> None:
        owner = self.server.owner  # type: ignore[attr-defined]
        if self.path.startswith("/token"):
            owner.token_requests += 1
            body = json.dumps({"token": "t\u00f6k\u00e9n", "expires_in": 300}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
        else:
            body = b'{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}'
            self.send_response(401)
            self.send_header("WWW-Authenticate", f'Bearer realm="{owner.url}/token",service="x"')
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_HEAD = do_GET


@pytest.fixture
def non_ascii_token() -> Iterator[BackgroundServer]:
    with BackgroundServer(_NonAsciiToken) as server:
        server.token_requests = 0  # type: ignore[attr-defined]
        yield server


def test_a_non_ascii_token_is_an_auth_error(non_ascii_token: BackgroundServer) -> None:
    done = run_cli("tags", f"{non_ascii_token.host}/app")
    assert_one_line_error(done, "not printable ASCII")
    assert done.returncode == 4
    assert non_ascii_token.token_requests >= 1  # type: ignore[attr-defined]


def test_a_second_ctrl_c_during_shutdown_leaves_without_a_traceback(tmp_path: Path) -> None:
    # A server that accepts and never answers keeps the pull busy until the first Ctrl-C. The child's stderr is a
    # pipe filled to the brim beforehand, so the shutdown that Ctrl-C starts blocks on writing its message: the
    # second Ctrl-C lands in the middle of that shutdown, every time.
    listener = socket.create_server(("127.0.0.1", 0))
    held: list[socket.socket] = []
    threading.Thread(target=lambda: [held.append(listener.accept()[0]) for _ in range(8)], daemon=True).start()
    port = listener.getsockname()[1]
    read_end, write_end = os.pipe()
    os.set_blocking(write_end, False)
    filler = 0
    try:
        while True:
            filler += os.write(write_end, b"f" * 4096)
    except BlockingIOError:
        pass
    os.set_blocking(write_end, True)
    child = subprocess.Popen(
        [sys.executable, "-m", "ocipush.cli", "pull", f"127.0.0.1:{port}/app:v1", str(tmp_path / "o"),
         *_cache(tmp_path)],
        stderr=write_end,
    )  # fmt: skip
    os.close(write_end)
    deadline = time.monotonic() + 30
    while not held and time.monotonic() < deadline:
        time.sleep(0.05)
    assert held, "the pull never connected"
    child.send_signal(signal.SIGINT)
    time.sleep(1.0)  # the shutdown is now blocked writing "interrupted" into the full pipe
    assert child.poll() is None
    child.send_signal(signal.SIGINT)
    with os.fdopen(read_end, "rb") as pipe:
        err = pipe.read()[filler:].decode()
    child.wait(timeout=60)
    listener.close()
    assert child.returncode == 130, err
    assert "Traceback" not in err and "interrupted again: leaving now" in err
