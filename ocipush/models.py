"""Typed records (ocipush.records) of descriptors, manifests, indexes and image configs.

Models are for reading and for building new documents. A document received from elsewhere is kept as its exact
bytes (`ManifestDocument.raw`, in ocipush.document, re-exported here) because its digest is the hash of those bytes;
it is never re-serialised."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

from ocipush import mediatypes as mt
from ocipush.document import ManifestDocument as ManifestDocument
from ocipush.document import sniff_media_type as sniff_media_type
from ocipush.errors import UsageError
from ocipush.records import OpenRecord, options


def _not_negative(value: int) -> int:
    if value < 0:
        raise ValueError(f"must be at least 0, not {value}")
    return value


@dataclass(kw_only=True)
class Platform(OpenRecord):
    """The platform an image is for (an index entry's `platform`)."""

    architecture: str
    os: str
    os_version: str | None = field(default=None, metadata=options(alias="os.version"))
    os_features: list[str] | None = field(default=None, metadata=options(alias="os.features"))
    variant: str | None = None

    def __str__(self) -> str:
        return f"{self.os}/{self.architecture}" + (f"/{self.variant}" if self.variant else "")


@dataclass(kw_only=True)
class Descriptor(OpenRecord):
    """A reference to content by media type, digest and size."""

    media_type: str = field(metadata=options(alias="mediaType"))
    digest: str
    size: int = field(metadata=options(check=_not_negative))
    urls: list[str] | None = None
    annotations: dict[str, str] | None = None
    platform: Platform | None = None
    artifact_type: str | None = field(default=None, metadata=options(alias="artifactType"))
    data: str | None = None


@dataclass(kw_only=True)
class Manifest(OpenRecord):
    """An image manifest (OCI or Docker v2.2): config and layers."""

    schema_version: int = field(default=2, metadata=options(alias="schemaVersion"))
    media_type: str | None = field(default=mt.OCI_MANIFEST, metadata=options(alias="mediaType"))
    artifact_type: str | None = field(default=None, metadata=options(alias="artifactType"))
    config: Descriptor
    layers: list[Descriptor]
    subject: Descriptor | None = None
    annotations: dict[str, str] | None = None


@dataclass(kw_only=True)
class Index(OpenRecord):
    """An image index or Docker manifest list."""

    schema_version: int = field(default=2, metadata=options(alias="schemaVersion"))
    media_type: str | None = field(default=mt.OCI_INDEX, metadata=options(alias="mediaType"))
    artifact_type: str | None = field(default=None, metadata=options(alias="artifactType"))
    manifests: list[Descriptor]
    subject: Descriptor | None = None
    annotations: dict[str, str] | None = None


@dataclass(kw_only=True)
class ContainerConfig(OpenRecord):
    """The execution settings of an image config (its `config`)."""

    user: str | None = field(default=None, metadata=options(alias="User"))
    exposed_ports: dict[str, dict[str, Any]] | None = field(default=None, metadata=options(alias="ExposedPorts"))
    env: list[str] | None = field(default=None, metadata=options(alias="Env"))
    entrypoint: list[str] | None = field(default=None, metadata=options(alias="Entrypoint"))
    cmd: list[str] | None = field(default=None, metadata=options(alias="Cmd"))
    volumes: dict[str, dict[str, Any]] | None = field(default=None, metadata=options(alias="Volumes"))
    working_dir: str | None = field(default=None, metadata=options(alias="WorkingDir"))
    labels: dict[str, str] | None = field(default=None, metadata=options(alias="Labels"))
    stop_signal: str | None = field(default=None, metadata=options(alias="StopSignal"))


@dataclass(kw_only=True)
class RootFS(OpenRecord):
    """An image config's layers, by diff ID."""

    type: str = "layers"
    diff_ids: list[str] = field(default_factory=list)


@dataclass(kw_only=True)
class History(OpenRecord):
    """One entry of an image config's history."""

    created: str | None = None
    created_by: str | None = None
    author: str | None = None
    comment: str | None = None
    empty_layer: bool | None = None


@dataclass(kw_only=True)
class ImageConfig(OpenRecord):
    """An image config: platform, execution settings, layers and history."""

    created: str | None = None
    author: str | None = None
    architecture: str
    os: str
    os_version: str | None = field(default=None, metadata=options(alias="os.version"))
    variant: str | None = None
    config: ContainerConfig | None = None
    rootfs: RootFS = field(default_factory=RootFS)
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
