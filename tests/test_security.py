"""Security and integrity cases shown against the real registry (token, htpasswd) and real files: secrets kept
out of repr(), planted symlinks and FIFOs in a layout, credentials kept to the hosts that may have them."""

from __future__ import annotations

from pathlib import Path

from support.handles import RegistryHandle
from transferhelpers import make_image, options

from ocipush import api
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
