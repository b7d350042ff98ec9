"""Settings shared by every registry call: TLS, insecure hosts, endpoint overrides, credentials, concurrency."""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from ocipush.errors import UsageError

DEFAULT_CHUNK_SIZE = 32 << 20
MIN_CHUNK_SIZE = 5 << 20  # ECR rejects smaller non-final parts


def _env_map(value: str) -> dict[str, str]:
    pairs = (item.split("=", 1) for item in value.split(",") if "=" in item)
    return {host.strip(): url.strip().rstrip("/") for host, url in pairs}


@dataclass
class RegistryOptions:
    """How to reach registries. Every field has a sensible default; env vars fill in what is not given:
    `OCIPUSH_ENDPOINTS` (`host=url,host=url`), `OCIPUSH_INSECURE` (comma-separated hosts),
    `OCIPUSH_CA_FILE`, `OCIPUSH_USERNAME` + `OCIPUSH_PASSWORD`."""

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
    deadline: float | None = 300.0
    max_attempts: int = 6
    max_retry_seconds: float = 120.0
    cache_dir: str | None = None
    cert_file: str | None = None  # client certificate (PEM) for registries that require mTLS, with key_file
    key_file: str | None = None
    certs_dir: str | None = None  # a docker-style certs.d directory (HOST/ca.crt, client.cert, client.key)

    @classmethod
    def from_env(cls, **overrides: object) -> RegistryOptions:
        options = cls(**overrides)  # type: ignore[arg-type]
        env = os.environ
        if "OCIPUSH_ENDPOINTS" in env:
            options.endpoints = {**_env_map(env["OCIPUSH_ENDPOINTS"]), **options.endpoints}
        if "OCIPUSH_INSECURE" in env:
            options.insecure |= {h.strip() for h in env["OCIPUSH_INSECURE"].split(",") if h.strip()}
        options.ca_file = options.ca_file or env.get("OCIPUSH_CA_FILE")
        if "deadline" not in overrides and env.get("OCIPUSH_DEADLINE"):
            options.deadline = parse_deadline(env["OCIPUSH_DEADLINE"], "OCIPUSH_DEADLINE")
        if options.username is None and env.get("OCIPUSH_USERNAME"):
            options.username = env["OCIPUSH_USERNAME"]
            options.password = env.get("OCIPUSH_PASSWORD", "")
        return options

    def base_url(self, host: str) -> str:
        """Where requests for registry `host` go: an override, else HTTPS."""
        return self.endpoints.get(host, f"https://{host}")

    def may_use_http(self, host: str) -> bool:
        """Whether plain HTTP is allowed for `host` (marked insecure, or loopback as docker allows)."""
        return host not in self.endpoints and (host in self.insecure or is_loopback(host))


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
