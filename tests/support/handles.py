"""What the registry fixtures yield: the running registry plus what a client needs to talk to it."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from ocipush.localregistry import LocalRegistry

from .tokenserver import TokenServer


@dataclass
class RegistryHandle:
    registry: LocalRegistry
    username: str | None = None
    password: str | None = None
    ca_path: Path | None = None
    token_server: TokenServer | None = None
    s3_endpoint_url: str | None = None
    bucket: str | None = None
    aws_env: dict[str, str] = field(default_factory=dict)

    @property
    def url(self) -> str:
        return self.registry.url

    @property
    def host(self) -> str:
        return self.registry.host

    @property
    def log_path(self) -> Path:
        return self.registry.log_path

    @property
    def auth(self) -> tuple[str, str]:
        assert self.username is not None and self.password is not None, "registry has no credentials"
        return self.username, self.password
