"""The token-auth registry and token server, end to end with plain httpx."""

from __future__ import annotations

import base64
import json
import os
import re
from pathlib import Path

import httpx
from support.handles import RegistryHandle
from support.tokenserver import Scope, TokenServer
from support.v2 import digest_of, push_blob

from ocipush.localregistry import LocalRegistry, TokenAuth


def _challenge(resp: httpx.Response) -> dict[str, str]:
    header = resp.headers["WWW-Authenticate"]
    assert header.startswith("Bearer ")
    return dict(re.findall(r'(\w+)="([^"]*)"', header))


def _token(challenge: dict[str, str], auth: tuple[str, str] | None, *scopes: str) -> httpx.Response:
    params = [("service", challenge["service"]), *(("scope", s) for s in scopes)]
    return httpx.get(challenge["realm"], params=params, auth=auth)


def test_token_flow_end_to_end(token_registry: RegistryHandle) -> None:
    first = httpx.post(f"{token_registry.url}/v2/team/app/blobs/uploads/")
    assert first.status_code == 401
    challenge = _challenge(first)
    kind, name, actions = challenge["scope"].split(":")
    # distribution lists the actions in no fixed order
    assert (kind, name, sorted(actions.split(","))) == ("repository", "team/app", ["pull", "push"])
    answer = _token(challenge, token_registry.auth, challenge["scope"])
    assert answer.status_code == 200
    body = answer.json()
    assert body["token"] == body["access_token"] and body["expires_in"] > 0
    data = os.urandom(4096)
    digest = digest_of(data)
    with httpx.Client(headers={"Authorization": f"Bearer {body['token']}"}) as client:
        push_blob(client, token_registry.url, "team/app", data, digest)
        assert client.get(f"{token_registry.url}/v2/team/app/blobs/{digest}").content == data
        # The token is scoped: another repository is refused.
        assert client.get(f"{token_registry.url}/v2/other/blobs/{digest}").status_code == 401
    server = token_registry.token_server
    assert server is not None
    assert server.requests_by_scope[challenge["scope"]] == 1
    assert server.requests_by_user["alice"] == 1


def test_wrong_password_is_refused(token_registry: RegistryHandle) -> None:
    challenge = _challenge(httpx.get(f"{token_registry.url}/v2/"))
    resp = _token(challenge, ("alice", "wrong"), "repository:team/app:pull")
    assert resp.status_code == 401
    assert token_registry.token_server is not None and token_registry.token_server.failures == 1


def test_grant_is_the_intersection(token_registry: RegistryHandle) -> None:
    challenge = _challenge(httpx.get(f"{token_registry.url}/v2/"))
    token = _token(challenge, ("reader", "reader-password"), "repository:team/app:pull,push").json()["token"]
    claims = json.loads(base64.urlsafe_b64decode(token.split(".")[1] + "=="))
    assert claims["access"] == [{"type": "repository", "name": "team/app", "actions": ["pull"]}]
    resp = httpx.post(f"{token_registry.url}/v2/team/app/blobs/uploads/", headers={"Authorization": f"Bearer {token}"})
    assert resp.status_code == 401


def test_several_scope_params_and_anonymous(token_registry: RegistryHandle) -> None:
    challenge = _challenge(httpx.get(f"{token_registry.url}/v2/"))
    scopes = ("repository:a:pull", "repository:b:pull,push")
    token = _token(challenge, None, *scopes).json()["token"]
    claims = json.loads(base64.urlsafe_b64decode(token.split(".")[1] + "=="))
    assert [a["actions"] for a in claims["access"]] == [[], []]
    server = token_registry.token_server
    assert server is not None and all(server.requests_by_scope[s] == 1 for s in scopes)


def test_scope_name_may_carry_a_port() -> None:
    assert Scope.parse("repository:127.0.0.1:5000/app:pull,push") == Scope(
        "repository", "127.0.0.1:5000/app", ("pull", "push")
    )


def test_kid_header_is_accepted_too(tmp_path: Path) -> None:
    with TokenServer(directory=tmp_path, users={"u": "p"}, key_header="kid") as server:
        auth = TokenAuth(server.realm, server.service, server.issuer, server.rootcertbundle)
        with LocalRegistry(token=auth, log_path=tmp_path / "log") as reg:
            challenge = _challenge(httpx.get(f"{reg.url}/v2/"))
            token = _token(challenge, ("u", "p")).json()["token"]
            assert httpx.get(f"{reg.url}/v2/", headers={"Authorization": f"Bearer {token}"}).status_code == 200
