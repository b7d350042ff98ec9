"""Settings shared by every registry call: TLS, insecure hosts, endpoint overrides, credentials, concurrency."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from ocipush.errors import UsageError

DEFAULT_CHUNK_SIZE = 32 << 20
MIN_CHUNK_SIZE = 5 << 20  # ECR rejects smaller non-final parts
DEFAULT_DEADLINE = 300.0


def _env_map(value: str) -> dict[str, str]:
    pairs = (item.split("=", 1) for item in value.split(",") if "=" in item)
    return {host.strip(): url.strip().rstrip("/") for host, url in pairs}


@dataclass
class RegistryOptions:
    """How to reach registries. Every field has a sensible default.

    The rule for the environment: every `RegistryOptions` (however made) fills the fields the caller left unset
    from `OCIPUSH_*` when it is created; what the caller gave wins. `OCIPUSH_ENDPOINTS` (`host=url,host=url`) and
    `OCIPUSH_INSECURE` (comma-separated hosts) are merged with the given ones (given ones win for the same host);
    `OCIPUSH_CA_FILE` fills `ca_file`; `OCIPUSH_DEADLINE` fills `deadline` when it is the default;
    `OCIPUSH_USERNAME` + `OCIPUSH_PASSWORD` fill the credentials when no username is given. `environment=False`
    ignores the environment altogether."""

    insecure: set[str] = field(default_factory=set)
    ca_file: str | None = None
    endpoints: dict[str, str] = field(default_factory=dict)
    username: str | None = None
    password: str | None = field(default=None, repr=False)  # never in a log line or traceback
    docker_config: str | None = None
    aws_profile: str | None = None
    jobs: int = 4
    chunk_size: int | None = None  # None: parts of DEFAULT_CHUNK_SIZE on ECR, one streamed request elsewhere
    timeout: float = 60.0  # per connect / read / write
    # Seconds a registry has to answer a request completely (counted from the last byte sent), and to send each
    # MiB of a blob: a server that trickles bytes ends there. None: no limit. `OCIPUSH_DEADLINE`, `--deadline`.
    deadline: float | None = DEFAULT_DEADLINE
    max_attempts: int = 6
    max_retry_seconds: float = 120.0
    cache_dir: str | None = None
    cert_file: str | None = None  # client certificate (PEM) for registries that require mTLS, with key_file
    key_file: str | None = None
    certs_dir: str | None = None  # a docker-style certs.d directory (HOST/ca.crt, client.cert, client.key)
    environment: bool = True

    def __post_init__(self) -> None:
        self.check()
        if self.environment:
            self._fill_from(os.environ)
            self.check()  # what came from the environment must hold too

    def _fill_from(self, env: Mapping[str, str]) -> None:
        if "OCIPUSH_ENDPOINTS" in env:
            self.endpoints = {**_env_map(env["OCIPUSH_ENDPOINTS"]), **self.endpoints}
        if "OCIPUSH_INSECURE" in env:
            self.insecure = self.insecure | {h.strip() for h in env["OCIPUSH_INSECURE"].split(",") if h.strip()}
        self.ca_file = self.ca_file or env.get("OCIPUSH_CA_FILE")
        if self.deadline == DEFAULT_DEADLINE and env.get("OCIPUSH_DEADLINE"):
            self.deadline = parse_deadline(env["OCIPUSH_DEADLINE"], "OCIPUSH_DEADLINE")
        if self.username is None and env.get("OCIPUSH_USERNAME"):
            self.username = env["OCIPUSH_USERNAME"]
            self.password = env.get("OCIPUSH_PASSWORD", "")

    @classmethod
    def from_env(cls, **overrides: object) -> RegistryOptions:
        """The same as `RegistryOptions(**overrides)` (kept for callers written before the rule above)."""
        return cls(**overrides)  # type: ignore[arg-type]

    def check(self) -> None:
        """Raise UsageError naming the first field whose type or value cannot work."""
        def whole(name: str, value: object, least: float) -> None:
            if isinstance(value, bool) or not isinstance(value, int | float) or value < least:
                raise UsageError(f"RegistryOptions.{name} must be a number of at least {least:g}, not {value!r}")

        whole("jobs", self.jobs, 1)
        whole("timeout", self.timeout, 0.001)
        whole("max_attempts", self.max_attempts, 1)
        whole("max_retry_seconds", self.max_retry_seconds, 0)
        if self.deadline is not None:
            whole("deadline", self.deadline, 0.001)
        if not isinstance(self.jobs, int):
            raise UsageError(f"RegistryOptions.jobs must be a whole number, not {self.jobs!r}")
        if self.chunk_size is not None:
            whole("chunk_size", self.chunk_size, MIN_CHUNK_SIZE)
        if not isinstance(self.insecure, set | frozenset) or not all(isinstance(h, str) for h in self.insecure):
            raise UsageError(f"RegistryOptions.insecure must be a set of host names, not {self.insecure!r}")
        if not isinstance(self.endpoints, dict):
            raise UsageError("RegistryOptions.endpoints must map host names to http(s):// URLs")
        for host, url in self.endpoints.items():
            if not isinstance(host, str) or not isinstance(url, str) or not _is_http_url(url):
                raise UsageError(f"endpoint {host}={url}: expected HOST=http(s)://ADDRESS[:PORT]")
        for name in ("ca_file", "username", "password", "docker_config", "aws_profile", "cache_dir", "cert_file",
                     "key_file", "certs_dir"):
            value = getattr(self, name)
            if value is not None and not isinstance(value, str):
                raise UsageError(f"RegistryOptions.{name} must be a string, not {type(value).__name__}")
        if self.ca_file and not os.path.isfile(self.ca_file):
            raise UsageError(f"CA file {self.ca_file}: no such file")

    def base_url(self, host: str) -> str:
        """Where requests for registry `host` go: an override, else HTTPS."""
        return self.endpoints.get(host, f"https://{host}")

    def route(self, url: str) -> str:
        """`url`, sent to the endpoint override of its host when that host has one (a token service on the
        registry's own host goes through the same VPC endpoint or proxy as the registry)."""
        scheme, netloc = urlsplit(url)[:2]
        endpoint = self.endpoints.get(netloc)
        return url if endpoint is None else endpoint + url[len(f"{scheme}://{netloc}") :]

    def may_use_http(self, host: str) -> bool:
        """Whether plain HTTP is allowed for `host` (marked insecure, or loopback as docker allows)."""
        return host not in self.endpoints and (host in self.insecure or is_loopback(host))


def _is_http_url(url: str) -> bool:
    try:
        parts = urlsplit(url)
        port = parts.port  # raises on a port that is not a number in 0-65535
    except ValueError:
        return False
    return parts.scheme in ("http", "https") and bool(parts.hostname) and port != 0


def parse_deadline(value: str, where: str) -> float | None:
    """Seconds from text ("0" or "none": no deadline)."""
    if value.strip().lower() in ("0", "none"):
        return None
    try:
        seconds = float(value)
    except ValueError:
        seconds = -1.0
    if not seconds > 0:
        raise UsageError(f"{where} {value!r}: expected a number of seconds (0 or none for no deadline)")
    return seconds


def is_loopback(host: str) -> bool:
    bare = host.rsplit(":", 1)[0] if not host.endswith("]") else host
    return bare in ("localhost", "127.0.0.1", "[::1]")
