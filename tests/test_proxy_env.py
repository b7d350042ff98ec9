"""Proxies from the environment, through a real forward proxy (tinyproxy): plain HTTP goes as absolute-form requests,
HTTPS through a CONNECT tunnel with TLS end to end, NO_PROXY goes direct, and a proxy's own credentials come from
its URL and never show in an error."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from support.handles import RegistryHandle
from support.httpproxy import TinyProxy
from transferhelpers import assert_one_line_error, make_image, options, run_cli

from ocipush import api
from ocipush.localregistry import LocalRegistry
from ocipush.registry.proxy import Proxy, bypassed, proxy_for

PROXY_VARIABLES = ("http_proxy", "https_proxy", "all_proxy", "no_proxy")


@pytest.fixture
def clean_proxy_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[pytest.MonkeyPatch]:
    for name in PROXY_VARIABLES:
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.upper(), raising=False)
    yield monkeypatch


def _relayed(proxy: TinyProxy) -> list[str]:
    """The request lines the proxy relayed, in order."""
    return [line.split("): ", 1)[1] for line in proxy.log().splitlines() if "]: Request (file descriptor" in line]


def test_plain_http_goes_through_http_proxy(
    registry: LocalRegistry, tmp_path: Path, clean_proxy_env: pytest.MonkeyPatch
) -> None:
    source, _ = make_image(tmp_path / "src")
    with TinyProxy(tmp_path) as proxy:
        clean_proxy_env.setenv("HTTP_PROXY", proxy.url)
        api.push(f"oci:{source.path}:v1", f"{registry.host}/proxied/app:v1", options=options(tmp_path))
        api.pull(f"{registry.host}/proxied/app:v1", f"oci:{tmp_path / 'back'}:v1", options=options(tmp_path))
        relayed = _relayed(proxy)
    base = f"http://{registry.host}/v2/proxied/app"
    assert f"PUT {base}/manifests/v1 HTTP/1.1" in relayed
    assert any(line.startswith(f"GET {base}/blobs/sha256:") for line in relayed), relayed
    assert (tmp_path / "back" / "index.json").is_file()


def test_https_goes_through_a_connect_tunnel(
    tls_registry: RegistryHandle, tmp_path: Path, clean_proxy_env: pytest.MonkeyPatch
) -> None:
    source, descriptor = make_image(tmp_path / "src")
    with TinyProxy(tmp_path) as proxy:
        clean_proxy_env.setenv("HTTPS_PROXY", proxy.url)
        opts = options(tmp_path, ca_file=str(tls_registry.ca_path))
        api.push(f"oci:{source.path}:v1", f"{tls_registry.host}/tunnel/app:v1", options=opts)
        assert api.resolve_digest(f"{tls_registry.host}/tunnel/app:v1", options=opts) == descriptor.digest
        relayed = _relayed(proxy)
    # the proxy saw only the tunnels: every registry request went inside TLS
    assert relayed and all(line == f"CONNECT {tls_registry.host} HTTP/1.1" for line in relayed), relayed


def test_no_proxy_goes_direct(registry: LocalRegistry, tmp_path: Path, clean_proxy_env: pytest.MonkeyPatch) -> None:
    source, _ = make_image(tmp_path / "src")
    with TinyProxy(tmp_path) as proxy:
        clean_proxy_env.setenv("HTTP_PROXY", proxy.url)
        clean_proxy_env.setenv("NO_PROXY", "example.com, 127.0.0.1")
        api.push(f"oci:{source.path}:v1", f"{registry.host}/direct/app:v1", options=options(tmp_path))
        assert _relayed(proxy) == []


def test_proxy_credentials_from_its_url_and_never_shown(
    registry: LocalRegistry, tls_registry: RegistryHandle, tmp_path: Path
) -> None:
    source, _ = make_image(tmp_path / "src")
    api.push(f"oci:{source.path}:v1", f"{registry.host}/auth/app:v1", options=options(tmp_path))
    with TinyProxy(tmp_path, basic_auth=("squid", "s3cret-pw")) as proxy:
        env = {name: "" for name in (*PROXY_VARIABLES, *(n.upper() for n in PROXY_VARIABLES))}
        good = run_cli("digest", f"{registry.host}/auth/app:v1",
                       env={**env, "HTTP_PROXY": f"http://squid:s3cret-pw@127.0.0.1:{proxy.port}"})  # fmt: skip
        # tinyproxy answers a refused plain-HTTP request with 401, like a registry would; a tunnel with 407
        bad = run_cli("digest", f"{tls_registry.host}/auth/app:v1", "--ca-file", str(tls_registry.ca_path),
                      env={**env, "HTTPS_PROXY": f"http://squid:wrong-pw@127.0.0.1:{proxy.port}"})  # fmt: skip
        relayed = _relayed(proxy)
    assert good.returncode == 0, good.stderr
    assert any(line.startswith(f"HEAD http://{registry.host}/v2/auth/app/manifests/v1") for line in relayed)
    assert_one_line_error(bad, "refused a tunnel", "USER:PASSWORD")
    assert bad.returncode == 6  # a network failure
    assert "wrong-pw" not in bad.stderr + bad.stdout


@pytest.mark.parametrize(
    ("host", "no_proxy", "expected"),
    [
        ("registry.example.com", "example.com", True),
        ("registry.example.com", ".example.com", True),
        ("example.com", ".example.com", True),
        ("badexample.com", "example.com", False),
        ("10.0.0.7", "10.0.0.7", True),
        ("registry.internal", "registry.internal:5000", True),
        ("[::1]", "::1", True),
        ("[::1]", "[::1]:5000", True),
        ("registry.example.com", "*.example.com", True),
        ("example.com", "*.example.com", True),
        ("badexample.com", "*.example.com", False),
        ("anything", "*", True),
        ("anything", "", False),
    ],
)
def test_no_proxy_matching(host: str, no_proxy: str, expected: bool) -> None:
    assert bypassed(host, no_proxy) is expected


def test_a_cgi_request_cannot_name_the_proxy(clean_proxy_env: pytest.MonkeyPatch) -> None:
    # httpoxy: a CGI server turns a client's "Proxy:" header into HTTP_PROXY; the lower-case name is the user's own
    clean_proxy_env.setenv("REQUEST_METHOD", "GET")
    clean_proxy_env.setenv("HTTP_PROXY", "http://attacker.example:3128")
    assert proxy_for("http", "registry.example") is None
    clean_proxy_env.setenv("http_proxy", "http://proxy.example:3128")
    assert proxy_for("http", "registry.example") == Proxy("proxy.example", 3128)
