"""`ocipush login` / `logout` against real registries (htpasswd and token auth): credentials checked first, then
stored docker's way, in config.json or through a credential helper. The helper is a small script this test writes
on PATH: it speaks the docker-credential protocol (store/get/erase) into a JSON file, as the real helpers do into a
keychain that does not exist here."""

from __future__ import annotations

import base64
import json
import os
import stat
import sys
from pathlib import Path

import pytest
from support.handles import RegistryHandle
from transferhelpers import assert_one_line_error, make_image, run_cli

from ocipush import api
from ocipush.errors import AuthError
from ocipush.registry.options import RegistryOptions

HELPER = """#!{python}
import json, os, sys
path = os.environ["FAKE_KEYCHAIN"]
store = json.load(open(path)) if os.path.exists(path) else {{}}
action, data = sys.argv[1], sys.stdin.read()
if action == "store":
    entry = json.loads(data)
    store[entry["ServerURL"]] = {{"Username": entry["Username"], "Secret": entry["Secret"]}}
elif action == "get":
    if data.strip() not in store:
        print("credentials not found in native keychain")
        sys.exit(1)
    print(json.dumps({{"ServerURL": data.strip(), **store[data.strip()]}}))
elif action == "erase":
    if store.pop(data.strip(), None) is None:
        print("credentials not found in native keychain")
        sys.exit(1)
json.dump(store, open(path, "w"))
"""


def _env(tmp_path: Path) -> dict[str, str]:
    return {"DOCKER_CONFIG": str(tmp_path / "docker"), "FAKE_KEYCHAIN": str(tmp_path / "keychain.json"),
            "PATH": f"{tmp_path / 'bin'}{os.pathsep}{os.environ['PATH']}"}  # fmt: skip


def _install_helper(tmp_path: Path) -> None:
    script = tmp_path / "bin" / "docker-credential-fake"
    script.parent.mkdir()
    script.write_text(HELPER.format(python=sys.executable))
    script.chmod(0o755)


def test_login_stores_in_config_json_and_logout_removes(auth_registry: RegistryHandle, tmp_path: Path) -> None:
    env = _env(tmp_path)
    user, password = auth_registry.auth
    host = auth_registry.host
    config = tmp_path / "docker" / "config.json"
    config.parent.mkdir()
    config.write_text(json.dumps({"auths": {"other.example": {"auth": "eDp5"}}, "proxies": {"default": {}}}))

    wrong = run_cli("login", host, "-u", user, "--password-stdin", stdin="nope\n", env=env)
    assert_one_line_error(wrong, "rejected the credentials")
    assert wrong.returncode == 4 and host not in config.read_text()  # checked before anything is stored

    done = run_cli("login", host, "-u", user, "--password-stdin", stdin=password + "\n", env=env)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "Login Succeeded (credentials stored in config.json)"
    saved = json.loads(config.read_text())
    assert base64.b64decode(saved["auths"][host]["auth"]).decode() == f"{user}:{password}"
    assert saved["auths"]["other.example"] == {"auth": "eDp5"} and saved["proxies"] == {"default": {}}
    assert stat.S_IMODE(config.stat().st_mode) == 0o600
    source, _ = make_image(tmp_path / "src")
    pushed = run_cli("push", source.path, f"{host}/app:v1", "--cache-dir", str(tmp_path / "c"), env=env)
    assert pushed.returncode == 0, pushed.stderr

    out = run_cli("logout", host, env=env)
    assert out.returncode == 0 and out.stdout.strip() == f"Removed login credentials for {host}"
    assert host not in json.loads(config.read_text())["auths"]
    assert_one_line_error(run_cli("digest", f"{host}/app:v1", env=env), "requires credentials", "ocipush login")
    again = run_cli("logout", host, env=env)
    assert again.returncode == 0 and again.stdout.strip() == f"Not logged in to {host}"


@pytest.mark.parametrize("where", ["credsStore", "credHelpers"])
def test_login_uses_the_configured_credential_helper(where: str, auth_registry: RegistryHandle, tmp_path: Path) -> None:
    _install_helper(tmp_path)
    env = _env(tmp_path)
    user, password = auth_registry.auth
    host = auth_registry.host
    config = tmp_path / "docker" / "config.json"
    config.parent.mkdir()
    config.write_text(json.dumps({"credsStore": "fake"} if where == "credsStore" else {"credHelpers": {host: "fake"}}))

    done = run_cli("login", host, "--username", user, "--password-stdin", "--json", stdin=password, env=env)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == {"server": host, "storedIn": "docker-credential-fake"}
    keychain = json.loads((tmp_path / "keychain.json").read_text())
    assert keychain == {host: {"Username": user, "Secret": password}}
    assert password not in config.read_text()  # the secret went to the helper only
    assert run_cli("tags", f"{host}/nothing", env=env).returncode == 3  # authenticated (helper `get`): not found

    assert run_cli("logout", host, env=env).stdout.strip() == f"Removed login credentials for {host}"
    assert json.loads((tmp_path / "keychain.json").read_text()) == {}


def test_login_with_token_auth_and_from_the_library(token_registry: RegistryHandle, tmp_path: Path) -> None:
    user, password = token_registry.auth
    server = token_registry.token_server
    assert server is not None
    options = RegistryOptions(docker_config=str(tmp_path / "docker"))
    assert api.login(token_registry.host, user, password, options=options) == "config.json"
    assert server.requests_by_user[user] == 1  # the token service checked the password
    with pytest.raises(AuthError, match="rejected the credentials"):
        api.login(token_registry.host, user, "wrong", options=options)
    assert server.failures == 1
    stored = json.loads((tmp_path / "docker" / "config.json").read_text())["auths"][token_registry.host]
    assert base64.b64decode(stored["auth"]).decode() == f"{user}:{password}"
    assert api.logout(token_registry.host, options=options) is True
    assert api.logout(token_registry.host, options=options) is False
