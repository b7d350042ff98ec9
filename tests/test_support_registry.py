"""The registry fixtures and LocalRegistry itself, proven with plain httpx."""

from __future__ import annotations

import os
import ssl
from pathlib import Path

import httpx
import pytest
from support import free_port
from support.handles import RegistryHandle
from support.v2 import digest_of, push_blob

from ocipush.errors import OcipushError
from ocipush.localregistry import LocalRegistry, LocalRegistryError

DATA = os.urandom(100_000)


def test_registry_round_trip_and_log(registry: LocalRegistry) -> None:
    assert registry.url == f"http://{registry.host}"
    digest = digest_of(DATA)
    with httpx.Client() as client:
        location = push_blob(client, registry.url, "demo/app", DATA, digest)
        assert location.endswith(f"/v2/demo/app/blobs/{digest}")
        resp = client.get(f"{registry.url}/v2/demo/app/blobs/{digest}")
    assert resp.status_code == 200
    assert resp.content == DATA
    log = registry.log_path.read_text()
    assert f'"GET /v2/demo/app/blobs/{digest} HTTP/1.1" 200' in log
    assert log.count('"POST /v2/demo/app/blobs/uploads/ HTTP/1.1" 202') == 1


def test_chunked_request_body(registry: LocalRegistry) -> None:
    digest = digest_of(DATA)
    with httpx.Client() as client:
        push_blob(client, registry.url, "demo/chunked", iter([DATA[:10], DATA[10:]]), digest)
        assert client.head(f"{registry.url}/v2/demo/chunked/blobs/{digest}").status_code == 200


def test_auth_registry_requires_credentials(auth_registry: RegistryHandle) -> None:
    resp = httpx.get(f"{auth_registry.url}/v2/")
    assert resp.status_code == 401
    assert resp.headers["WWW-Authenticate"].startswith("Basic ")
    assert httpx.get(f"{auth_registry.url}/v2/", auth=(auth_registry.username or "", "wrong")).status_code == 401
    assert httpx.get(f"{auth_registry.url}/v2/", auth=auth_registry.auth).status_code == 200


def test_long_password_matches_on_first_72_bytes(tmp_path: Path) -> None:
    password = "p" * 72 + "-and-the-rest-of-an-ecr-length-token"
    with LocalRegistry(htpasswd={"AWS": password}, log_path=tmp_path / "log") as reg:
        assert httpx.get(f"{reg.url}/v2/", auth=("AWS", password)).status_code == 200


def test_tls_registry_trusts_only_with_ca(tls_registry: RegistryHandle) -> None:
    assert tls_registry.url.startswith("https://127.0.0.1:")
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{tls_registry.url}/v2/")
    digest = digest_of(DATA)
    with httpx.Client(verify=ssl.create_default_context(cafile=tls_registry.ca_path)) as client:
        push_blob(client, tls_registry.url, "secure/app", DATA, digest)
        assert client.get(f"{tls_registry.url}/v2/secure/app/blobs/{digest}").content == DATA


def test_registry_stops_and_cleans_up(tmp_path: Path) -> None:
    reg = LocalRegistry(log_path=tmp_path / "log")
    with reg:
        url = reg.url
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{url}/v2/")
    assert (tmp_path / "log").exists()


def test_missing_binary_is_a_clear_error() -> None:
    with pytest.raises(LocalRegistryError, match="docker-registry"), LocalRegistry(binary="no-such-registry"):
        pass
    assert issubclass(LocalRegistryError, OcipushError)


def test_failed_start_reports_log_tail(tmp_path: Path) -> None:
    not_a_cert = tmp_path / "cert.pem"
    not_a_cert.write_text("garbage")
    with (
        pytest.raises(LocalRegistryError, match="exited") as info,
        LocalRegistry(tls_cert=not_a_cert, tls_key=not_a_cert, log_path=tmp_path / "log"),
    ):
        pass
    assert "registry" in str(info.value)


def test_free_port_is_bindable() -> None:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", free_port()))
