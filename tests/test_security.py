"""Security and integrity cases shown against the real registry (token, htpasswd) and real files: secrets kept
out of repr(), planted symlinks and FIFOs in a layout, credentials kept to the hosts that may have them."""

from __future__ import annotations

import base64
import io
import json
import os
import tarfile
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from support.handles import RegistryHandle
from support.hostile import HostileRegistry
from support.tokenserver import TokenServer
from transferhelpers import make_image, options

from ocipush import api
from ocipush.errors import AuthError, LayoutError
from ocipush.layout import OCILayout
from ocipush.localregistry import LocalRegistry, TokenAuth
from ocipush.models import Descriptor
from ocipush.reference import parse_reference
from ocipush.registry.session import RegistrySession


def test_repr_never_shows_password_or_bearer_token(token_registry: RegistryHandle, tmp_path: Path) -> None:
    user, password = token_registry.auth
    opts = options(tmp_path, username=user, password=password)
    source, _ = make_image(tmp_path / "src")
    api.push(f"oci:{source.path}:v1", f"{token_registry.host}/app:v1", options=opts)
    with RegistrySession(opts) as session:
        client = session.client(parse_reference(f"{token_registry.host}/app"))
        assert client.list_tags() == ["v1"]
        tokens = list(client.transport.auth._tokens.values())
        assert tokens, "the registry's bearer challenge was never answered"
        shown = repr(opts) + repr(session.options) + repr(tokens)
    assert password not in shown
    assert all(token.value not in shown for token in tokens)


def _layer_digest(source: OCILayout, descriptor: Descriptor) -> str:
    return source.read_manifest(descriptor).manifest.layers[0].digest


PLANTED = {
    "partial download": lambda hexd: os.path.join(".ingest", f"{hexd}.partial"),
    "per-blob lock": lambda hexd: os.path.join(".ingest", f"{hexd}.partial.lock"),
    "layout lock": lambda hexd: ".lock",
}


@pytest.mark.parametrize("where", PLANTED)
def test_pull_never_writes_through_a_planted_symlink(where: str, registry: LocalRegistry, tmp_path: Path) -> None:
    source, descriptor = make_image(tmp_path / "src")
    api.push(f"oci:{source.path}:v1", f"{registry.host}/app:v1", options=options(tmp_path))
    target = tmp_path / "dst"
    OCILayout(str(target), create=True)
    planted = target / PLANTED[where](_layer_digest(source, descriptor).split(":")[1])
    planted.parent.mkdir(exist_ok=True)
    victim = tmp_path / "victim"
    planted.symlink_to(victim)
    with pytest.raises(LayoutError, match="symbolic link"):
        api.pull(f"{registry.host}/app:v1", f"oci:{target}", options=options(tmp_path))
    assert planted.is_symlink()
    assert not victim.exists()


def test_pull_refuses_a_symlinked_ingest_directory(registry: LocalRegistry, tmp_path: Path) -> None:
    source, _ = make_image(tmp_path / "src")
    api.push(f"oci:{source.path}:v1", f"{registry.host}/app:v1", options=options(tmp_path))
    target, elsewhere = tmp_path / "dst", tmp_path / "elsewhere"
    OCILayout(str(target), create=True)
    elsewhere.mkdir()
    (target / ".ingest").symlink_to(elsewhere)
    with pytest.raises(LayoutError, match="not a directory"):
        api.pull(f"{registry.host}/app:v1", f"oci:{target}", options=options(tmp_path))
    assert list(elsewhere.iterdir()) == []


def test_a_fifo_posing_as_a_blob_does_not_hang_push(registry: LocalRegistry, tmp_path: Path) -> None:
    source, descriptor = make_image(tmp_path / "src")
    blob = Path(source.blob_path(_layer_digest(source, descriptor)))
    blob.unlink()
    os.mkfifo(blob)
    errors: list[BaseException] = []

    def push() -> None:
        try:
            api.push(f"oci:{source.path}:v1", f"{registry.host}/app:v1", options=options(tmp_path))
        except BaseException as exc:
            errors.append(exc)

    worker = threading.Thread(target=push, daemon=True)
    worker.start()
    worker.join(60)
    if worker.is_alive():  # unblock the open() that hangs on the FIFO so the thread can end
        with open(blob, "wb"):
            pass
        pytest.fail("push hung on a FIFO in blobs/")
    assert len(errors) == 1 and isinstance(errors[0], LayoutError)
    assert "not a regular file" in str(errors[0])


ECR_HOST = "123456789012.dkr.ecr.us-east-1.amazonaws.com"


@pytest.fixture
def plain_http_realm(tmp_path: Path, token_server: TokenServer) -> Iterator[tuple[LocalRegistry, HostileRegistry]]:
    """A real token-auth registry whose challenge names a plain-HTTP token service on a non-loopback address
    (127.0.0.2 is reachable here, but is not one of the loopback names that may use HTTP). The token service is a
    recorder: what matters is what the client sends it."""
    with HostileRegistry(address="127.0.0.2") as realm:
        assert isinstance(realm, HostileRegistry)
        auth = TokenAuth(f"{realm.url}/token", token_server.service, token_server.issuer, token_server.rootcertbundle)
        with LocalRegistry(token=auth, log_path=tmp_path / "registry.log") as running:
            yield running, realm


def test_credentials_never_go_to_a_plain_http_token_service(
    plain_http_realm: tuple[LocalRegistry, HostileRegistry], tmp_path: Path
) -> None:
    registry, realm = plain_http_realm
    opts = options(tmp_path, username="alice", password="alice-password")
    with pytest.raises(AuthError, match=r"plain HTTP: refusing to send credentials"):
        api.list_tags(f"{registry.host}/app", options=opts)
    assert realm.authorizations == []
    # Anonymous access still asks the token service (nothing secret is sent), and --insecure allows it all.
    with pytest.raises(AuthError):
        api.list_tags(f"{registry.host}/app", options=options(tmp_path))
    assert realm.count("GET", "/token") == 1 and realm.authorizations == []
    with pytest.raises(AuthError):
        api.list_tags(
            f"{registry.host}/app", options=options(tmp_path, username="alice", password="x", insecure={realm.host})
        )
    assert realm.authorizations == ["Basic " + base64.b64encode(b"alice:x").decode()]


def test_the_ecr_token_goes_only_to_the_ecr_host(
    token_registry: RegistryHandle, aws_env: dict[str, str], tmp_path: Path
) -> None:
    # A registry in ECR's name that asks for a bearer token (ECR itself only ever asks for Basic).
    opts = options(tmp_path, endpoints={ECR_HOST: token_registry.url})
    with pytest.raises(AuthError, match="Amazon ECR never does"):
        api.list_tags(f"{ECR_HOST}/app", options=opts)
    assert token_registry.token_server is not None
    assert sum(token_registry.token_server.requests_by_user.values()) == 0


def test_a_huge_docker_archive_manifest_is_refused_while_reading(tmp_path: Path) -> None:
    archive = tmp_path / "big.tar"
    entry = {"Config": "c.json", "RepoTags": ["x:" + "y" * 100] * 20000, "Layers": []}
    data = json.dumps([entry]).encode()
    assert len(data) > 2 << 20
    with tarfile.open(archive, "w") as tar:
        info = tarfile.TarInfo("manifest.json")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    with pytest.raises(LayoutError, match=r"manifest\.json is larger than 1 MiB"):
        api.copy(f"docker-archive:{archive}", f"oci:{tmp_path / 'out'}", options=options(tmp_path))
