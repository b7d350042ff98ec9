"""Store and remove registry credentials as `docker login` / `docker logout` do: through the credential helper the
docker config names (`credHelpers` for the host, else `credsStore`) by running `docker-credential-NAME store|erase`,
or else as an `auths` entry of the config file (`$DOCKER_CONFIG/config.json`, default `~/.docker/config.json`),
written atomically and readable by its owner only. Every other key of the config is kept as it was."""

from __future__ import annotations

import base64
import json
import os
import subprocess
from typing import Any

from ocipush.errors import AuthError, UsageError
from ocipush.fsutil import new_file_in
from ocipush.log import get_logger
from ocipush.registry.credentials import config_path, host_keys

_log = get_logger(__name__)


def _load(path: str) -> dict[str, Any]:
    try:
        with open(path, "rb") as f:
            config = json.load(f)
    except FileNotFoundError:
        return {}
    except ValueError:
        raise UsageError(f"docker config {os.path.basename(path)} is not valid JSON: fix or remove it") from None
    if not isinstance(config, dict):
        raise UsageError(f"docker config {os.path.basename(path)} is not a JSON object")
    return config


def _save(path: str, config: dict[str, Any]) -> None:
    directory = os.path.dirname(path)
    os.makedirs(directory, mode=0o700, exist_ok=True)
    fd, tmp = new_file_in(directory, ".config-")  # mode 0600
    try:
        with os.fdopen(fd, "w") as f:
            json.dump(config, f, indent="\t")
            f.write("\n")
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise


def _helper_for(config: dict[str, Any], host: str) -> str | None:
    helpers = config.get("credHelpers") or {}
    found = next((helpers[key] for key in host_keys(host) if key in helpers), None)
    return str(found or config.get("credsStore") or "") or None


def _run_helper(helper: str, action: str, data: bytes) -> subprocess.CompletedProcess[bytes]:
    program = f"docker-credential-{helper}"
    try:
        return subprocess.run([program, action], input=data, capture_output=True, timeout=60, check=False)
    except FileNotFoundError:
        raise AuthError(f"credential helper {program} (named in the docker config) is not on PATH") from None
    except subprocess.TimeoutExpired:
        raise AuthError(f"credential helper {program} timed out") from None


def store_credentials(host: str, username: str, password: str, docker_config: str | None = None) -> str:
    """Store credentials for registry `host`; returns where they went (a helper's name, or "config.json")."""
    path = config_path(docker_config)
    config = _load(path)
    key = host_keys(host)[0]
    helper = _helper_for(config, host)
    if helper:
        message = json.dumps({"ServerURL": key, "Username": username, "Secret": password}).encode()
        done = _run_helper(helper, "store", message)
        if done.returncode != 0:
            why = done.stdout.decode(errors="replace").strip() or f"exit status {done.returncode}"
            raise AuthError(f"credential helper docker-credential-{helper} could not store the credentials: {why}")
        _log.info("stored credentials for %s with docker-credential-%s", host, helper)
        return f"docker-credential-{helper}"
    auths = config.setdefault("auths", {})
    auths[key] = {"auth": base64.b64encode(f"{username}:{password}".encode()).decode()}
    _save(path, config)
    _log.info("stored credentials for %s in the docker config", host)
    return os.path.basename(path)


def erase_credentials(host: str, docker_config: str | None = None) -> bool:
    """Remove the stored credentials of registry `host`; False when there were none."""
    path = config_path(docker_config)
    config = _load(path)
    found = False
    helper = _helper_for(config, host)
    if helper:
        done = _run_helper(helper, "erase", host_keys(host)[0].encode())
        found = done.returncode == 0
    auths = config.get("auths") or {}
    keys = [key for key in host_keys(host) if key in auths]
    for key in keys:
        del auths[key]
    if keys:
        _save(path, config)
    return found or bool(keys)
