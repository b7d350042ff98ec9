"""Security and integrity cases shown against the real registry (token, htpasswd) and real files: secrets kept
out of repr(), planted symlinks and FIFOs in a layout, credentials kept to the hosts that may have them."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import pytest
from support.handles import RegistryHandle
from transferhelpers import make_image, options

from ocipush import api
from ocipush.errors import LayoutError
from ocipush.layout import OCILayout
from ocipush.localregistry import LocalRegistry
from ocipush.models import Descriptor
from ocipush.registry.session import RegistrySession


def test_repr_never_shows_password_or_bearer_token(token_registry: RegistryHandle, tmp_path: Path) -> None:
    user, password = token_registry.auth
    opts = options(tmp_path, username=user, password=password)
    source, _ = make_image(tmp_path / "src")
    api.push(f"oci:{source.path}:v1", f"{token_registry.host}/app:v1", options=opts)
    with RegistrySession(opts) as session:
        client = session.client(api._reference(f"{token_registry.host}/app"))
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
