"""Pydantic models of descriptors, manifests, indexes and image configs.

Models are for reading and for building new documents. A document received from elsewhere is kept as its exact
bytes (`ManifestDocument.raw`, in ocipush.document, re-exported here) because its digest is the hash of those bytes;
it is never re-serialised."""

from __future__ import annotations

import json
import os
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from ocipush import mediatypes as mt
from ocipush.document import ManifestDocument as ManifestDocument
from ocipush.document import sniff_media_type as sniff_media_type
from ocipush.errors import UsageError


class _Model(BaseModel):
    # Unknown fields are kept so that a document we rewrite (a config we edit) loses nothing.
    model_config = ConfigDict(extra="allow", populate_by_name=True, defer_build=True)

    def to_json_bytes(self) -> bytes:
        """Canonical compact JSON of a document we create (sorted keys give stable digests)."""
        data = self.model_dump(mode="json", by_alias=True, exclude_none=True)
        return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


class Platform(_Model):
    architecture: str
    os: str
    os_version: str | None = Field(default=None, alias="os.version")
    os_features: list[str] | None = Field(default=None, alias="os.features")
    variant: str | None = None

    def __str__(self) -> str:
        return f"{self.os}/{self.architecture}" + (f"/{self.variant}" if self.variant else "")


class Descriptor(_Model):
    media_type: str = Field(alias="mediaType")
    digest: str
    size: int = Field(ge=0)
    urls: list[str] | None = None
    annotations: dict[str, str] | None = None
    platform: Platform | None = None
    artifact_type: str | None = Field(default=None, alias="artifactType")
    data: str | None = None


class Manifest(_Model):
    schema_version: int = Field(default=2, alias="schemaVersion")
    media_type: str | None = Field(default=mt.OCI_MANIFEST, alias="mediaType")
    artifact_type: str | None = Field(default=None, alias="artifactType")
    config: Descriptor
    layers: list[Descriptor]
    subject: Descriptor | None = None
    annotations: dict[str, str] | None = None


class Index(_Model):
    schema_version: int = Field(default=2, alias="schemaVersion")
    media_type: str | None = Field(default=mt.OCI_INDEX, alias="mediaType")
    artifact_type: str | None = Field(default=None, alias="artifactType")
    manifests: list[Descriptor]
    subject: Descriptor | None = None
    annotations: dict[str, str] | None = None


class ContainerConfig(_Model):
    user: str | None = Field(default=None, alias="User")
    exposed_ports: dict[str, dict[str, Any]] | None = Field(default=None, alias="ExposedPorts")
    env: list[str] | None = Field(default=None, alias="Env")
    entrypoint: list[str] | None = Field(default=None, alias="Entrypoint")
    cmd: list[str] | None = Field(default=None, alias="Cmd")
    volumes: dict[str, dict[str, Any]] | None = Field(default=None, alias="Volumes")
    working_dir: str | None = Field(default=None, alias="WorkingDir")
    labels: dict[str, str] | None = Field(default=None, alias="Labels")
    stop_signal: str | None = Field(default=None, alias="StopSignal")


class RootFS(_Model):
    type: str = "layers"
    diff_ids: list[str] = Field(default_factory=list)


class History(_Model):
    created: str | None = None
    created_by: str | None = None
    author: str | None = None
    comment: str | None = None
    empty_layer: bool | None = None


class ImageConfig(_Model):
    created: str | None = None
    author: str | None = None
    architecture: str
    os: str
    os_version: str | None = Field(default=None, alias="os.version")
    variant: str | None = None
    config: ContainerConfig | None = None
    rootfs: RootFS = Field(default_factory=RootFS)
    history: list[History] | None = None

    @property
    def platform(self) -> Platform:
        return Platform(architecture=self.architecture, os=self.os, os_version=self.os_version, variant=self.variant)

    @property
    def environment(self) -> dict[str, str]:
        """The container's `Env` as a mapping (entries without '=' are skipped)."""
        entries = (self.config.env or []) if self.config is not None else []
        return dict(item.split("=", 1) for item in entries if "=" in item)


_ARCH_ALIASES = {"x86_64": "amd64", "aarch64": "arm64", "armv7l": "arm", "i686": "386", "i386": "386"}


def host_platform() -> Platform:
    machine = os.uname().machine.lower()  # what platform.machine() reads, without importing it (~1 ms)
    arch = _ARCH_ALIASES.get(machine, machine)
    return Platform(architecture=arch, os="linux", variant="v8" if arch == "arm64" else None)


def parse_platform(text: str) -> Platform:
    """`os/arch[/variant]` as docker writes it; raises UsageError otherwise."""
    parts = text.strip().split("/")
    if len(parts) not in (2, 3) or not all(parts):
        raise UsageError(f"invalid platform {text!r}: expected os/arch[/variant], e.g. linux/amd64")
    return Platform(os=parts[0], architecture=parts[1], variant=parts[2] if len(parts) == 3 else None)


def platform_matches(wanted: Platform, candidate: Platform | None) -> bool:
    if candidate is None:
        return False
    if (wanted.os, wanted.architecture) != (candidate.os, candidate.architecture):
        return False
    # arm64 images often omit the variant: only a variant asked for explicitly must match.
    return wanted.variant is None or candidate.variant in (None, wanted.variant)
