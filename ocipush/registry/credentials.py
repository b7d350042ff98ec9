"""Credentials for a registry host: explicit ones, then `~/.docker/config.json` (`auths`, `credHelpers`,
`credsStore`, `$DOCKER_CONFIG`), then `$REGISTRY_AUTH_FILE` (podman/skopeo `auth.json`). Never writes anything,
so a read-only HOME (AWS Lambda) is fine."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass

from ocipush.errors import AuthError

_HUB_KEYS = ("https://index.docker.io/v1/", "index.docker.io", "docker.io", "registry-1.docker.io")


@dataclass(frozen=True)
class Credentials:
    """A user name and password (or, under the user name `<token>`, an identity token) for a registry."""

    username: str
    password: str

    @property
    def is_identity_token(self) -> bool:
        return self.username == "<token>"

    def __repr__(self) -> str:  # never show the secret in logs or tracebacks
        return f"Credentials(username={self.username!r}, password=***)"


def basic_authorization(username: str, password: str) -> str:
    """An `Authorization` (or `Proxy-Authorization`) value for HTTP Basic."""
    import base64  # here: only Basic needs it

    return "Basic " + base64.b64encode(f"{username}:{password}".encode()).decode()


def config_path(docker_config: str | None = None) -> str:
    """The docker config file: in `docker_config` (a directory), else `$DOCKER_CONFIG`, else `~/.docker`."""
    directory = docker_config or os.environ.get("DOCKER_CONFIG") or os.path.join(os.path.expanduser("~"), ".docker")
    return os.path.join(directory, "config.json")


def _config_paths(docker_config: str | None) -> list[str]:
    paths = [config_path(docker_config)]
    if os.environ.get("REGISTRY_AUTH_FILE"):
        paths.append(os.environ["REGISTRY_AUTH_FILE"])
    xdg = os.environ.get("XDG_RUNTIME_DIR")
    if xdg:
        paths.append(os.path.join(xdg, "containers", "auth.json"))
    return paths


def host_keys(host: str) -> list[str]:
    """The keys a docker config may file `host` under; the first is the one `docker login` writes."""
    if host in ("docker.io", "registry-1.docker.io", "index.docker.io"):
        return list(_HUB_KEYS)
    return [host, f"https://{host}", f"http://{host}", f"https://{host}/v1/", f"https://{host}/v2/"]


def _from_helper(helper: str, host: str) -> Credentials | None:
    import subprocess  # here: only docker configs with credential helpers need it

    try:
        done = subprocess.run(
            [f"docker-credential-{helper}", "get"], input=host.encode(), capture_output=True, timeout=60, check=False
        )
    except FileNotFoundError:
        raise AuthError(
            f"credential helper docker-credential-{helper} (configured for {host}) is not on PATH"
        ) from None
    except subprocess.TimeoutExpired:
        raise AuthError(f"credential helper docker-credential-{helper} timed out for {host}") from None
    if done.returncode != 0:
        # "credentials not found" is a normal answer: fall through to anonymous access.
        return None
    try:
        data = json.loads(done.stdout)
        return Credentials(data["Username"], data["Secret"])
    except (ValueError, KeyError, TypeError):
        raise AuthError(f"credential helper docker-credential-{helper} gave an unreadable answer for {host}") from None


def _from_auth_entry(entry: object) -> Credentials | None:
    if not isinstance(entry, dict):
        return None
    if entry.get("identitytoken"):
        return Credentials("<token>", str(entry["identitytoken"]))
    if entry.get("auth"):
        import base64  # here: most registries are asked with no docker config entry

        try:
            user, _, password = base64.b64decode(entry["auth"]).decode().partition(":")
        except (ValueError, UnicodeDecodeError):
            return None
        return Credentials(user, password)
    if entry.get("username"):
        return Credentials(str(entry["username"]), str(entry.get("password", "")))
    return None


def lookup_credentials(host: str, docker_config: str | None = None) -> Credentials | None:
    """The configured credentials for `host`, or None (anonymous)."""
    for path in _config_paths(docker_config):
        try:
            with open(path, "rb") as f:
                config = json.load(f)
        except FileNotFoundError:
            continue
        except ValueError:
            raise AuthError(f"docker config {os.path.basename(path)} is not valid JSON") from None
        except OSError as exc:
            raise AuthError(f"cannot read docker config {os.path.basename(path)}: {exc.strerror}") from None
        if not isinstance(config, dict):
            continue
        keys = host_keys(host)
        helpers = config.get("credHelpers") or {}
        for key in keys:
            if key in helpers:
                return _from_helper(helpers[key], host)
        auths = config.get("auths") or {}
        for key in keys:
            found = _from_auth_entry(auths.get(key))
            if found:
                return found
        if config.get("credsStore"):
            found = _from_helper(config["credsStore"], host)
            if found:
                return found
    return None
