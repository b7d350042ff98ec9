"""A throw-away distribution registry (`docker-registry serve`) on 127.0.0.1 for demos, benchmarks and tests.

The binary is the distribution 2.8 server (Debian package `docker-registry`). Its config is written as JSON,
which YAML parsers accept, so no YAML library is needed.
"""

from __future__ import annotations

import http.client
import json
import os
import secrets
import shutil
import socket
import ssl
import subprocess
import tempfile
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

from ocipush.errors import OcipushError

# distribution compares only the first 72 bytes of a bcrypt password (Go's bcrypt limit); longer secrets
# such as ECR tokens must be hashed truncated or they never match.
_BCRYPT_MAX = 72
_BIND_RETRIES = 5
# REGISTRY_* variables override the config file; AWS_* ones change the S3 driver (AWS_CA_BUNDLE even makes
# distribution 2.8 panic). The registry must run only on the config written here.
_FOREIGN_ENV = ("REGISTRY_", "AWS_")


class LocalRegistryError(OcipushError):
    """The local registry could not be configured or started."""


@dataclass(frozen=True)
class S3Storage:
    """S3-compatible storage; blob GETs then answer 307 to a presigned URL on `endpoint_url`."""

    endpoint_url: str
    bucket: str
    access_key: str
    secret_key: str
    region: str = "us-east-1"
    root_directory: str = ""


@dataclass(frozen=True)
class TokenAuth:
    """Docker token authentication: the registry trusts JWTs signed by a cert chaining to `rootcertbundle`."""

    realm: str
    service: str
    issuer: str
    rootcertbundle: Path


def free_port() -> int:
    """A port that was free a moment ago on 127.0.0.1 (callers must survive losing the race for it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def write_htpasswd(path: Path, users: Mapping[str, str]) -> Path:
    """Write a bcrypt htpasswd file for `users` (user -> password)."""
    lines = [f"{user}:{_bcrypt_hash(password)}" for user, password in users.items()]
    path.write_text("\n".join(lines) + "\n")
    return path


def _bcrypt_hash(password: str) -> str:
    secret = password.encode()[:_BCRYPT_MAX]
    try:
        import bcrypt
    except ImportError:
        return _htpasswd_tool_hash(secret)
    hashed: bytes = bcrypt.hashpw(secret, bcrypt.gensalt(rounds=5))
    return hashed.decode()


def _htpasswd_tool_hash(secret: bytes) -> str:
    tool = shutil.which("htpasswd")
    if tool is None:
        raise LocalRegistryError("writing an htpasswd file needs the Python 'bcrypt' package or 'htpasswd'")
    done = subprocess.run([tool, "-niBC", "5", "user"], input=secret, capture_output=True, check=False)
    if done.returncode != 0:
        raise LocalRegistryError(f"htpasswd failed: {done.stderr.decode(errors='replace').strip()}")
    return done.stdout.decode().strip().split(":", 1)[1]


class LocalRegistry:
    """A `docker-registry serve` process on 127.0.0.1; use as a context manager.

    With neither `storage_dir` nor `s3`, blobs go to a directory inside the registry's temp dir.
    `htpasswd` is an existing file or a mapping user -> password. With `tls_cert` and `tls_key` it serves HTTPS;
    with `tls_client_ca` as well, only to clients presenting a certificate that CA signed (mTLS).
    `catalog_max_entries` caps `_catalog` pages (distribution's `catalog.maxentries`, default 1000).
    `foreign_layer_urls` is a regular expression of the `urls` that manifests may give foreign layers
    (distribution refuses all by default). `log_path` (default: in the temp dir, removed on exit) receives the
    registry's stdout and stderr, access log included; the attribute of that name is final once started.
    """

    def __init__(
        self,
        *,
        storage_dir: Path | None = None,
        s3: S3Storage | None = None,
        htpasswd: Path | Mapping[str, str] | None = None,
        token: TokenAuth | None = None,
        tls_cert: Path | None = None,
        tls_key: Path | None = None,
        tls_client_ca: Path | None = None,
        delete_enabled: bool = True,
        log_level: str = "info",
        log_path: Path | None = None,
        binary: str = "docker-registry",
        start_timeout: float = 30.0,
        catalog_max_entries: int | None = None,
        foreign_layer_urls: str | None = None,
    ) -> None:
        if storage_dir is not None and s3 is not None:
            raise LocalRegistryError("choose either storage_dir or s3, not both")
        if htpasswd is not None and token is not None:
            raise LocalRegistryError("choose either htpasswd or token auth, not both")
        if (tls_cert is None) != (tls_key is None):
            raise LocalRegistryError("TLS needs both a certificate and a key")
        self._storage_dir = storage_dir
        self._s3 = s3
        self._htpasswd = htpasswd
        self._token = token
        self._tls = (tls_cert, tls_key) if tls_cert is not None and tls_key is not None else None
        if tls_client_ca is not None and self._tls is None:
            raise LocalRegistryError("client certificates (tls_client_ca) need TLS (tls_cert and tls_key)")
        self._tls_client_ca = tls_client_ca
        self._delete_enabled = delete_enabled
        self._log_level = log_level
        self._log_path_option = log_path
        self._binary = binary
        self._start_timeout = start_timeout
        self._catalog_max_entries = catalog_max_entries
        self._foreign_layer_urls = foreign_layer_urls
        self._tmp: Path | None = None
        self._proc: subprocess.Popen[bytes] | None = None
        self._port = 0
        self.log_path: Path = log_path or Path("registry.log")

    @property
    def scheme(self) -> str:
        return "https" if self._tls else "http"

    @property
    def port(self) -> int:
        return self._port

    @property
    def host(self) -> str:
        """`127.0.0.1:PORT`, as used in image references."""
        return f"127.0.0.1:{self._port}"

    @property
    def url(self) -> str:
        return f"{self.scheme}://{self.host}"

    def __enter__(self) -> LocalRegistry:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def start(self) -> LocalRegistry:
        binary = shutil.which(self._binary)
        if binary is None:
            raise LocalRegistryError(
                f"'{self._binary}' not found: install the Debian package 'docker-registry' (distribution 2.8)"
            )
        self._tmp = Path(tempfile.mkdtemp(prefix="ocipush-registry-"))
        self.log_path = self._log_path_option or self._tmp / "registry.log"
        try:
            for _attempt in range(_BIND_RETRIES):
                self._port = free_port()
                config = self._tmp / "config.yml"
                config.write_text(json.dumps(self._config(self._tmp), indent=2))
                if self._launch(binary, config):
                    return self
            raise LocalRegistryError(
                f"registry could not bind a free port after {_BIND_RETRIES} tries:\n{self._log_tail()}"
            )
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        proc, self._proc = self._proc, None
        if proc is not None and proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        tmp, self._tmp = self._tmp, None
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)

    def _launch(self, binary: str, config: Path) -> bool:
        """Start the process and wait until it answers; False when it lost the race for its port."""
        with self.log_path.open("ab") as log:
            env = {k: v for k, v in os.environ.items() if not k.startswith(_FOREIGN_ENV)}
            self._proc = subprocess.Popen(
                [binary, "serve", str(config)],
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=env,
            )
        deadline = time.monotonic() + self._start_timeout
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                if "address already in use" in self._log_tail():
                    return False
                raise LocalRegistryError(f"registry exited with status {self._proc.returncode}:\n{self._log_tail()}")
            if self._answers():
                return True
            time.sleep(0.05)
        raise LocalRegistryError(f"registry did not answer within {self._start_timeout:.0f} s:\n{self._log_tail()}")

    def _answers(self) -> bool:
        conn: http.client.HTTPConnection
        if self._tls:
            # Only a liveness probe: whether the client trusts the cert is the tests' business.
            context = ssl.create_default_context()
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
            conn = http.client.HTTPSConnection("127.0.0.1", self._port, timeout=2, context=context)
        else:
            conn = http.client.HTTPConnection("127.0.0.1", self._port, timeout=2)
        try:
            conn.request("GET", "/v2/")
            conn.getresponse().read()
            return True
        except ssl.SSLError:
            # A registry that demands client certificates refuses this probe at the TLS level: it is up.
            return self._tls_client_ca is not None
        except (OSError, http.client.HTTPException):
            return False
        finally:
            conn.close()

    def _log_tail(self, lines: int = 20) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return "(no registry log)"
        return "\n".join(text.splitlines()[-lines:])

    def _config(self, tmp: Path) -> dict[str, Any]:
        storage: dict[str, Any] = {
            "delete": {"enabled": self._delete_enabled},
            "maintenance": {"uploadpurging": {"enabled": False}},
        }
        if self._s3 is not None:
            storage["s3"] = {
                "accesskey": self._s3.access_key,
                "secretkey": self._s3.secret_key,
                "region": self._s3.region,
                "regionendpoint": self._s3.endpoint_url,
                "bucket": self._s3.bucket,
                "rootdirectory": self._s3.root_directory,
                "secure": self._s3.endpoint_url.startswith("https://"),
                "v4auth": True,
                # distribution 2.8 ignores this key but forces path-style itself when regionendpoint is set;
                # newer releases need it.
                "forcepathstyle": True,
            }
            storage["redirect"] = {"disable": False}
        else:
            storage["filesystem"] = {"rootdirectory": str(self._storage_dir or tmp / "storage")}
        http_section: dict[str, Any] = {"addr": self.host, "secret": secrets.token_hex(16)}
        if self._tls:
            http_section["tls"] = {"certificate": str(self._tls[0]), "key": str(self._tls[1])}
            if self._tls_client_ca is not None:  # mTLS: only clients with a certificate this CA signed get in
                http_section["tls"]["clientcas"] = [str(self._tls_client_ca)]
        config: dict[str, Any] = {
            "version": "0.1",
            "log": {"level": self._log_level, "formatter": "text", "accesslog": {"disabled": False}},
            "storage": storage,
            "http": http_section,
        }
        if self._catalog_max_entries is not None:
            config["catalog"] = {"maxentries": self._catalog_max_entries}  # larger `n` is refused with 400
        if self._foreign_layer_urls is not None:
            config["validation"] = {"manifests": {"urls": {"allow": [self._foreign_layer_urls]}}}
        auth = self._auth(tmp)
        if auth:
            config["auth"] = auth
        return config

    def _auth(self, tmp: Path) -> dict[str, Any]:
        if self._token is not None:
            return {
                "token": {
                    "realm": self._token.realm,
                    "service": self._token.service,
                    "issuer": self._token.issuer,
                    "rootcertbundle": str(self._token.rootcertbundle),
                }
            }
        if self._htpasswd is None:
            return {}
        path = self._htpasswd
        if not isinstance(path, Path):
            path = write_htpasswd(tmp / "htpasswd", path)
        return {"htpasswd": {"realm": "ocipush-local", "path": str(path)}}
