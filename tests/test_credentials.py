"""Where credentials come from: docker config auths, credential helpers, credsStore, podman's auth file; and the
cache dir when HOME is read-only (AWS Lambda)."""

from __future__ import annotations

import base64
import json
import os
import stat
import tempfile
from pathlib import Path

import pytest
from support.handles import RegistryHandle
from transferhelpers import make_image, options

from ocipush import api
from ocipush.cachedir import cache_dir
from ocipush.errors import AuthError
from ocipush.registry.credentials import Credentials, lookup_credentials

HELPER = """#!/bin/sh
read host
if [ "$host" = "{host}" ]; then
  printf '{{"Username":"{user}","Secret":"{secret}"}}'
else
  echo "credentials not found in native keychain" >&2; exit 1
fi
"""


def _helper(bin_dir: Path, name: str, host: str, user: str, secret: str) -> None:
    bin_dir.mkdir(exist_ok=True)
    path = bin_dir / f"docker-credential-{name}"
    path.write_text(HELPER.format(host=host, user=user, secret=secret))
    path.chmod(path.stat().st_mode | stat.S_IEXEC)


def _config(directory: Path, data: dict[str, object]) -> Path:
    directory.mkdir(exist_ok=True)
    (directory / "config.json").write_text(json.dumps(data))
    return directory


def test_auths_entries(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    auth = base64.b64encode(b"user:pa:ss").decode()
    config = _config(tmp_path / "d", {"auths": {
        "https://index.docker.io/v1/": {"auth": auth},
        "ghcr.io": {"identitytoken": "refresh-me"},
        "quay.io": {"username": "q", "password": "p"},
    }})  # fmt: skip
    monkeypatch.setenv("DOCKER_CONFIG", str(config))
    assert lookup_credentials("docker.io") == Credentials("user", "pa:ss")
    assert lookup_credentials("ghcr.io") == Credentials("<token>", "refresh-me")
    assert lookup_credentials("quay.io") == Credentials("q", "p")
    assert lookup_credentials("example.com") is None
    assert "pa:ss" not in repr(lookup_credentials("docker.io"))


def test_cred_helpers_and_store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _helper(tmp_path / "bin", "team", "registry.example", "robot", "s3cret")
    _helper(tmp_path / "bin", "store", "other.example", "u2", "p2")
    monkeypatch.setenv("PATH", f"{tmp_path / 'bin'}{os.pathsep}{os.environ['PATH']}")
    config = _config(tmp_path / "d", {"credHelpers": {"registry.example": "team"}, "credsStore": "store"})
    monkeypatch.setenv("DOCKER_CONFIG", str(config))
    assert lookup_credentials("registry.example") == Credentials("robot", "s3cret")
    assert lookup_credentials("other.example") == Credentials("u2", "p2")
    assert lookup_credentials("nobody.example") is None  # the store says "not found": anonymous
    _config(tmp_path / "d", {"credHelpers": {"registry.example": "missing"}})
    with pytest.raises(AuthError, match="docker-credential-missing"):
        lookup_credentials("registry.example")


def test_podman_auth_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path / "none"))
    auth_file = tmp_path / "auth.json"
    auth_file.write_text(json.dumps({"auths": {"registry.example": {"auth": base64.b64encode(b"a:b").decode()}}}))
    monkeypatch.setenv("REGISTRY_AUTH_FILE", str(auth_file))
    assert lookup_credentials("registry.example") == Credentials("a", "b")


def test_push_with_a_credential_helper(
    auth_registry: RegistryHandle, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    user, password = auth_registry.auth
    _helper(tmp_path / "bin", "test", auth_registry.host, user, password)
    monkeypatch.setenv("PATH", f"{tmp_path / 'bin'}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("DOCKER_CONFIG", str(_config(tmp_path / "d", {"credHelpers": {auth_registry.host: "test"}})))
    source, descriptor = make_image(tmp_path / "src")
    result = api.push(f"oci:{source.path}:v1", f"{auth_registry.host}/app:v1", options=options(tmp_path))
    assert result.digest == descriptor.digest


def test_cache_dir_falls_back_to_tmp_when_home_is_read_only(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.delenv("XDG_CACHE_HOME", raising=False)
    monkeypatch.delenv("OCIPUSH_CACHE_DIR", raising=False)
    assert cache_dir() == str(home / ".cache" / "ocipush")
    other = tmp_path / "home2"
    other.mkdir()
    monkeypatch.setenv("HOME", str(other))
    # a file where the cache dir would go makes it unusable, as a read-only HOME does (the tests run as root)
    (other / ".cache").write_text("")
    fallback = cache_dir()
    assert fallback == os.path.join(tempfile.gettempdir(), f"ocipush-cache-{os.getuid()}")
    assert os.access(fallback, os.W_OK)
