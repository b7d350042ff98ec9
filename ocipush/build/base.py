"""The base image of a build: `scratch`, an OCI layout (`oci:PATH[:tag]`) or a registry reference.

Manifests and configs are read here. A layout base's layers are linked into the output store; a registry base's
layers are never stored: the manifest names the base (annotations) and the push mounts or streams them (the base
index, base_index.py, reads their tar headers once per cache dir)."""

from __future__ import annotations

import contextlib
import os
import shutil
from dataclasses import dataclass
from typing import Any

from ocipush import mediatypes as mt
from ocipush.errors import BuildError
from ocipush.layout import OCILayout
from ocipush.locations import ArchiveLocation, LayoutLocation, OciArchiveLocation
from ocipush.models import Descriptor, ImageConfig, ManifestDocument, Platform, platform_matches
from ocipush.reference import parse_location


@dataclass(frozen=True)
class BaseImage:
    """One platform's base: its manifest (None for scratch), config bytes, and where its layer blobs live."""

    platform: Platform
    name: str | None = None
    manifest: ManifestDocument | None = None
    config_raw: bytes | None = None
    layout: OCILayout | None = None

    @property
    def docker(self) -> bool:
        return self.manifest is not None and self.manifest.media_type == mt.DOCKER_MANIFEST

    @property
    def layers(self) -> list[Descriptor]:
        return list(self.manifest.manifest.layers) if self.manifest else []

    @property
    def config(self) -> ImageConfig | None:
        return ImageConfig.model_validate_json(self.config_raw) if self.config_raw else None


@dataclass(frozen=True)
class Bases:
    """The base image of a build: one image, or one per platform of an index."""

    images: list[BaseImage]
    is_index: bool = False
    docker_index: bool = False


def resolve_bases(base: str, platforms: list[Platform], host: Platform, options: Any = None) -> Bases:
    """The base image for each platform asked for (the host's when none is), or a clear BuildError."""
    if base == "scratch":
        return Bases([BaseImage(p) for p in platforms or [host]])
    location = parse_location(base)
    if isinstance(location, ArchiveLocation | OciArchiveLocation):
        raise BuildError(f"base {base}: archive bases are not supported; use a registry or oci: layout")
    if isinstance(location, LayoutLocation):
        return _from_layout(location, platforms, host)
    return _from_registry(str(location), platforms, host, options)


def _pick(index: ManifestDocument, wanted: list[Platform], base: str) -> list[tuple[Platform, Descriptor]]:
    children = [m for m in index.index.manifests if m.media_type in mt.IMAGE_MANIFESTS]
    chosen = []
    for platform in wanted:
        match = next((m for m in children if platform_matches(platform, m.platform)), None)
        if match is None:
            have = ", ".join(sorted({str(m.platform) for m in children if m.platform})) or "none"
            raise BuildError(f"base {base} has no {platform} image (it has: {have})")
        chosen.append((platform, match))
    return chosen


def _single(document: ManifestDocument, config_raw: bytes, platforms: list[Platform], base: str) -> Platform:
    platform = ImageConfig.model_validate_json(config_raw).platform
    if len(platforms) > 1:
        asked = ", ".join(str(p) for p in platforms)
        raise BuildError(
            f"base {base} is a single-platform image ({platform}), so it cannot give the {len(platforms)} platforms "
            f"asked for ({asked}): build one platform (--platform {platform}, or none), or use a multi-platform "
            "base (an image index)"
        )
    if platforms and not platform_matches(platforms[0], platform):
        raise BuildError(f"base {base} is {platform}, not {platforms[0]}")
    return platform


def _from_layout(location: LayoutLocation, platforms: list[Platform], host: Platform) -> Bases:
    if not os.path.isdir(location.path):
        raise BuildError(f"base layout {location.path} does not exist")
    layout = OCILayout(location.path)
    top = layout.read_manifest(layout.resolve(location.tag, location.digest))
    name = str(location)
    if not top.is_index:
        config = layout.read_blob(top.manifest.config.digest)
        platform = _single(top, config, platforms, name)
        return Bases([BaseImage(platform, name, top, config, layout)])
    images = []
    for platform, child in _pick(top, platforms or [host], name):
        document = layout.read_manifest(child)
        images.append(BaseImage(platform, name, document, layout.read_blob(document.manifest.config.digest), layout))
    return Bases(images, True, top.media_type == mt.DOCKER_MANIFEST_LIST)


def _from_registry(reference: str, platforms: list[Platform], host: Platform, options: Any) -> Bases:
    from ocipush import api  # the transfer engine; imported only when a registry base is used

    top = api.fetch_manifest(reference, None, options)
    if not top.is_index:
        config = api.fetch_blob_bytes(reference, top.manifest.config.digest, options)
        return Bases([BaseImage(_single(top, config, platforms, reference), reference, top, config)])
    images = []
    for platform, child in _pick(top, platforms or [host], reference):
        document = api.fetch_manifest(f"{reference.split('@', 1)[0]}@{child.digest}", None, options)
        config = api.fetch_blob_bytes(reference, document.manifest.config.digest, options)
        images.append(BaseImage(platform, reference, document, config))
    return Bases(images, True, top.media_type == mt.DOCKER_MANIFEST_LIST)


def link_blob(source: str, store: OCILayout, digest: str) -> None:
    """Put an existing blob file into the store: a hard link when possible, a copy otherwise."""
    target = store.blob_path(digest)
    if os.path.exists(target) or os.path.abspath(source) == os.path.abspath(target):
        return
    os.makedirs(os.path.dirname(target), exist_ok=True)
    temporary = f"{target}.link-{os.getpid()}"
    try:
        try:
            os.link(source, temporary)
        except OSError:
            shutil.copyfile(source, temporary)
        os.replace(temporary, target)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)


def copy_base_layers(image: BaseImage, store: OCILayout) -> None:
    """A layout base's layer blobs into the output store (registry bases stay remote)."""
    if image.layout is None:
        return
    for layer in image.layers:
        if not image.layout.has_blob(layer.digest):
            raise BuildError(f"base {image.name} lacks layer blob {layer.digest}")
        link_blob(image.layout.blob_path(layer.digest), store, layer.digest)
