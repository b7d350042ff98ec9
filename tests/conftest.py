"""Fixtures that run real components on 127.0.0.1: distribution registries (plain, htpasswd, token, TLS, S3,
ECR-like), a token server, moto, and a fault-injecting proxy. Ports are picked free and state lives in tmp
dirs, so tests run in parallel under xdist. Registries are per test (they start in well under a second)."""

from __future__ import annotations

import base64
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import boto3
import pytest
from moto.server import ThreadedMotoServer
from support.bases import cached_base
from support.handles import RegistryHandle
from support.proxy import FaultProxy
from support.runtime import Buildah, Podman
from support.tls import issue_cert, make_ca
from support.tokenserver import TokenServer

from ocipush.localregistry import LocalRegistry, S3Storage, TokenAuth

AWS_REGION = "us-east-1"
# Dummy credentials: moto accepts anything, and they must never resolve to a real account.
AWS_DUMMY = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
}
USER, PASSWORD = "ocipush", "test-password"
TOKEN_USERS = {"alice": "alice-password", "reader": "reader-password"}


@pytest.fixture
def registry(tmp_path: Path) -> Iterator[LocalRegistry]:
    """A plain registry (no auth) with filesystem storage; `.url`, `.host`, `.log_path`."""
    with LocalRegistry(storage_dir=tmp_path / "storage", log_path=tmp_path / "registry.log") as running:
        yield running


@pytest.fixture
def auth_registry(tmp_path: Path) -> Iterator[RegistryHandle]:
    """An htpasswd registry; `.auth` is (USER, PASSWORD)."""
    reg = LocalRegistry(htpasswd={USER: PASSWORD}, log_path=tmp_path / "registry.log")
    with reg as running:
        yield RegistryHandle(running, USER, PASSWORD)


@pytest.fixture
def token_server(tmp_path: Path) -> Iterator[TokenServer]:
    """Token server: alice may do anything, reader may only pull."""
    server = TokenServer(
        directory=tmp_path / "token",
        users=TOKEN_USERS,
        permissions={"reader": {"*": frozenset({"pull"})}},
    )
    with server:
        yield server


@pytest.fixture
def token_registry(tmp_path: Path, token_server: TokenServer) -> Iterator[RegistryHandle]:
    """A registry with token auth; `.auth` is alice's (full rights), `.token_server` counts token requests."""
    auth = TokenAuth(token_server.realm, token_server.service, token_server.issuer, token_server.rootcertbundle)
    with LocalRegistry(token=auth, log_path=tmp_path / "registry.log") as running:
        yield RegistryHandle(running, "alice", TOKEN_USERS["alice"], token_server=token_server)


@pytest.fixture
def tls_registry(tmp_path: Path) -> Iterator[RegistryHandle]:
    """A plain registry on https://127.0.0.1:PORT; `.ca_path` is the CA bundle a client must trust."""
    ca = make_ca(tmp_path / "tls")
    server = issue_cert(ca, tmp_path / "tls", "registry")
    reg = LocalRegistry(tls_cert=server.cert_path, tls_key=server.key_path, log_path=tmp_path / "registry.log")
    with reg as running:
        yield RegistryHandle(running, ca_path=ca.cert_path)


@pytest.fixture(scope="session")
def moto_server() -> Iterator[str]:
    """One moto server per xdist worker; yields its endpoint URL. Tests share it: use unique names."""
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture
def aws_env(moto_server: str, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """Points boto3 (and ocipush's ECR code) at moto with dummy credentials; returns the variables set."""
    env = {**AWS_DUMMY, "AWS_ENDPOINT_URL": moto_server, "AWS_DEFAULT_REGION": AWS_REGION}
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    for name in ("AWS_PROFILE", "AWS_CONFIG_FILE", "AWS_SHARED_CREDENTIALS_FILE"):
        monkeypatch.delenv(name, raising=False)
    return env


@pytest.fixture
def s3_registry(tmp_path: Path, moto_server: str, aws_env: dict[str, str]) -> Iterator[RegistryHandle]:
    """A registry storing into a fresh moto S3 bucket; blob GETs answer 307 to moto (`.s3_endpoint_url`)."""
    bucket = f"registry-{uuid.uuid4().hex[:12]}"
    boto3.client("s3", endpoint_url=moto_server, region_name=AWS_REGION).create_bucket(Bucket=bucket)
    storage = S3Storage(moto_server, bucket, AWS_DUMMY["AWS_ACCESS_KEY_ID"], AWS_DUMMY["AWS_SECRET_ACCESS_KEY"])
    with LocalRegistry(s3=storage, log_path=tmp_path / "registry.log") as running:
        yield RegistryHandle(running, s3_endpoint_url=moto_server, bucket=bucket, aws_env=aws_env)


@pytest.fixture
def ecr_registry(tmp_path: Path, aws_env: dict[str, str]) -> Iterator[RegistryHandle]:
    """An htpasswd registry accepting moto's ECR token (user AWS); AWS env vars point at moto (`.aws_env`)."""
    ecr = boto3.client("ecr", region_name=AWS_REGION)
    token = ecr.get_authorization_token()["authorizationData"][0]["authorizationToken"]
    user, _, password = base64.b64decode(token).decode().partition(":")
    with LocalRegistry(htpasswd={user: password}, log_path=tmp_path / "registry.log") as running:
        yield RegistryHandle(running, user, password, aws_env=aws_env)


@pytest.fixture
def fault_proxy() -> Iterator[Callable[..., FaultProxy]]:
    """Factory: `fault_proxy(upstream_url, ecr=False, redirect_blobs=False)` -> a started FaultProxy."""
    proxies: list[FaultProxy] = []

    def make(upstream_url: str, *, ecr: bool = False, redirect_blobs: bool = False) -> FaultProxy:
        proxy = FaultProxy(upstream_url, ecr=ecr, redirect_blobs=redirect_blobs).start()
        proxies.append(proxy)
        return proxy

    yield make
    for proxy in proxies:
        proxy.stop()


@pytest.fixture(scope="session")
def container_root(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Storage and configuration shared by podman and buildah (one per xdist worker); reset at the end."""
    root = tmp_path_factory.mktemp("containers")
    yield root
    Podman(root).reset()


@pytest.fixture(scope="session")
def podman(container_root: Path) -> Podman:
    """podman as root in this sandbox (runc, cgroupfs, explicit ulimits, storage in a temp dir)."""
    return Podman(container_root)


@pytest.fixture(scope="session")
def buildah(container_root: Path) -> Buildah:
    """buildah with podman's storage, so that podman runs what buildah commits."""
    return Buildah(container_root)


@pytest.fixture(scope="session")
def debian_base() -> Path:
    """OCI layout (tag latest) of Debian bookworm minbase made by debootstrap + umoci; cached between runs."""
    return cached_base("debian")


@pytest.fixture(scope="session")
def busybox_base() -> Path:
    """OCI layout (tag latest) of a busybox-static base with a real /bin directory; cached between runs."""
    return cached_base("busybox")


@pytest.fixture(scope="session")
def debian_python_base() -> Path:
    """OCI layout (tag latest) of Debian bookworm minbase with Debian's python3; cached between runs."""
    return cached_base("debian-python")
