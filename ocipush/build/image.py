"""Base + layers + config edits -> config, manifest (and an index for several platforms) in an OCI layout.

The documents are created here, so they are serialised canonically (sorted keys, compact) and their digests
depend only on the inputs. The manifest family follows the base: a Docker v2.2 base gives a Docker manifest, unless
the new layers need OCI (zstd) or the caller asks for OCI (an `oci:` output: skopeo and umoci see only OCI manifests
in a layout, and skopeo converts the same way when it copies to one); then the base's layers and config take their
OCI names (same bytes), so that one manifest never mixes the two families. Docker manifests have no annotations:
as buildah does, they are left out (with a warning for the user's own). The base's name also goes on the layout's
index.json entry, which is where a push of a layout without the base's layers finds the base's registry, whatever
the manifest's family."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from ocipush import mediatypes as mt
from ocipush.baseinfo import BASE_DIGEST, BASE_NAME, record_base
from ocipush.build.base import BaseImage, Bases, copy_base_layers, resolve_bases
from ocipush.build.cache import LayerCache
from ocipush.build.compress import BlobWatcher
from ocipush.build.config import edit_container_config
from ocipush.build.destination import BasePlacer
from ocipush.build.layers import Candidate, KnownLayers, LayerOptions, LayerResult, build_layer, check_source
from ocipush.build.spec import BuildSpec
from ocipush.build.tarstream import Ownership, Placement
from ocipush.layout import OCILayout
from ocipush.log import get_logger
from ocipush.models import (
    Descriptor,
    History,
    ImageConfig,
    Index,
    Manifest,
    ManifestDocument,
    host_platform,
)
from ocipush.progress import ProgressCallback, ProgressEvent, ignore_progress

if TYPE_CHECKING:
    from ocipush.build.python import DependencyLayer

log = get_logger("ocipush.build")
LAYER_TYPES = {
    (False, "gzip"): mt.OCI_LAYER_GZIP,
    (False, "zstd"): mt.OCI_LAYER_ZSTD,
    (False, "none"): mt.OCI_LAYER,
    (True, "gzip"): mt.DOCKER_LAYER_GZIP,
    (True, "none"): mt.DOCKER_LAYER,
}


@dataclass(frozen=True)
class BuildResult:
    """The tagged root (a manifest, or an index for several platforms), each platform's manifest, the layers."""

    descriptor: Descriptor
    manifests: list[Descriptor]
    layers: list[LayerResult]
    tag: str | None = None
    warnings: list[str] = field(default_factory=list)


def rfc3339(epoch: int) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def build_image(
    spec: BuildSpec,
    store: OCILayout,
    tag: str | None = None,
    progress: ProgressCallback | None = None,
    previous: list[ManifestDocument] | None = None,
    fetch_options: Any = None,
    watch: BlobWatcher | None = None,
    oci: bool = False,
    check: Callable[[list[Descriptor]], None] | None = None,
) -> BuildResult:
    """Build `spec` into `store` and point `tag` at it.

    `previous` are manifests of the image the tag currently names (its layers are reused by diff_id);
    `fetch_options` is passed to `ocipush.api` when the base is in a registry; `watch` is told about each new
    blob as it starts to be written (build-push uploads it while it grows); `oci` asks for OCI manifests whatever
    the base's family; `check` is given each platform's manifest once it is in the store, before anything is
    tagged (an error it raises leaves the tag as it was)."""
    emit = progress or ignore_progress
    options = LayerOptions(
        spec.compression, spec.compression_level, spec.source_date_epoch,
        Ownership(*spec.chown) if spec.chown else Ownership(), spec.ignore_file, spec.verify,
    )  # fmt: skip
    for layer in spec.layers:
        check_source(layer, options)
    bases = resolve_bases(spec.base, spec.platforms, host_platform(), fetch_options)
    cache = LayerCache(spec.cache_dir) if spec.use_cache else None
    known = KnownLayers(_candidates(bases, store, previous or [], options), cache, options)
    for image in bases.images:
        copy_base_layers(image, store)
    with BasePlacer(fetch_options, spec.cache_dir, spec.use_cache, emit) as placer:
        placements = placer.layers(spec.layers, bases.images)
        per_image, layers = _build_layers(spec, store, options, known, emit, watch, placements)
        deps = _dependency_layers(spec, bases, store, options, known, previous or [], emit, placer)
    every_layer = [d.layer for d in deps if d is not None] + layers
    if cache is not None:
        for built in (b for b in every_layer if store.has_blob(b.digest)):
            blob = store.blob_path(built.digest)
            cache.record(built.diff_id, options.compression, options.level, _descriptor(built, False), blob)
    docker = bases.images[0].docker and spec.compression != "zstd" and not oci
    warnings = []
    if docker and spec.annotations:
        warnings.append("annotations are left out: the base is a Docker v2.2 image, whose manifests have none")
        log.warning(warnings[-1])
    manifests = [
        _write_manifest(spec, store, image, image_layers, docker, dep)
        for image, image_layers, dep in zip(bases.images, per_image, deps, strict=True)
    ]
    for manifest in manifests:
        store.write_blob(manifest.raw, manifest.digest)
    entries = [m.descriptor(platform=i.platform) for m, i in zip(manifests, bases.images, strict=True)]
    if check is not None:
        check(entries)
    tags = [tag] if tag else []
    if len(manifests) == 1:
        descriptor = store.add_manifest(manifests[0], tags, _base_record(bases.images[0]))
        return BuildResult(descriptor, [manifests[0].descriptor()], every_layer, tag, warnings)
    index = Index(
        media_type=mt.DOCKER_MANIFEST_LIST if docker else mt.OCI_INDEX,
        manifests=entries,
        annotations=None if docker else dict(spec.annotations) or None,
    )
    document = ManifestDocument.from_model(index)
    descriptor = store.add_manifest(document, tags, _base_record(bases.images[0]))
    return BuildResult(descriptor, entries, every_layer, tag, warnings)


def _base_record(image: BaseImage) -> dict[str, str] | None:
    """The base's name for the layout's index.json entry: a push takes the layers the layout lacks from there."""
    return {BASE_NAME: image.name} if image.manifest is not None and image.name and image.layout is None else None


def _build_layers(
    spec: BuildSpec,
    store: OCILayout,
    options: LayerOptions,
    known: KnownLayers,
    emit: ProgressCallback,
    watch: BlobWatcher | None,
    placements: list[list[Placement | None]],
) -> tuple[list[list[LayerResult]], list[LayerResult]]:
    """Each platform's layers (`placements` has one row per platform), and every distinct layer built.

    A layer is built once per distinct placement: platforms whose bases agree on its destination share it."""
    jobs = list(dict.fromkeys((index, place) for column in placements for index, place in enumerate(column)))

    def one(job: tuple[int, Placement | None]) -> LayerResult:
        index, place = job
        layer = spec.layers[index]
        emit(ProgressEvent("start", "", message=f"layer {index + 1}: {layer.source} -> {layer.dest}"))
        result = build_layer(layer, store, options, known, watch, place)
        emit(ProgressEvent("skip" if result.reused else "done", result.digest, result.size, result.size,
                           f"layer {index + 1}: {'reused' if result.reused else 'built'}"))  # fmt: skip
        return result

    if len(jobs) <= 1:
        results = [one(job) for job in jobs]
    else:
        # Each layer already keeps two cores busy; a few at once hide the per-file system-call latency.
        with ThreadPoolExecutor(max_workers=min(len(jobs), os.cpu_count() or 2)) as pool:
            results = list(pool.map(one, jobs))
    built = dict(zip(jobs, results, strict=True))
    per_image = [[built[job] for job in enumerate(column)] for column in placements]
    return per_image, list(dict.fromkeys(results))


def _dependency_layers(
    spec: BuildSpec,
    bases: Bases,
    store: OCILayout,
    options: LayerOptions,
    known: KnownLayers,
    previous: list[ManifestDocument],
    emit: ProgressCallback,
    placer: BasePlacer,
) -> list[DependencyLayer | None]:
    """Each platform's Python dependency layer (None for all when the spec has no Python dependencies)."""
    if spec.python is None:
        return [None] * len(bases.images)
    from ocipush.build.python import dependency_layers

    emit(ProgressEvent("start", "", message="python dependencies"))
    # --no-cache installs afresh: the target tag's recorded keys are a cache too.
    configs = _previous_configs(store, previous) if spec.use_cache else []
    found = dependency_layers(spec.python, bases.images, store, options, known, configs, placer, spec.cache_dir)
    for dep in found:
        emit(ProgressEvent("skip" if dep.layer.reused else "done", dep.layer.digest, dep.layer.size, dep.layer.size,
                           f"python dependencies: {'reused' if dep.layer.reused else 'installed'}"))  # fmt: skip
    return list(found)


def _previous_configs(store: OCILayout, previous: Iterable[ManifestDocument]) -> list[ImageConfig]:
    """The configs of the image the target tag names now (those the store has)."""
    digests = [document.manifest.config.digest for document in previous]
    return [ImageConfig.model_validate_json(store.read_blob(d)) for d in digests if store.has_blob(d)]


def _candidates(
    bases: Bases,
    store: OCILayout,
    previous: Iterable[ManifestDocument],
    options: LayerOptions,
) -> dict[str, Candidate]:
    """Blobs whose diff_id is known from the base's layers and the previous image's."""
    found: dict[str, Candidate] = {}

    def add(diff_ids: list[str], layers: list[Descriptor], layout: OCILayout | None, previous: bool) -> None:
        for diff_id, layer in zip(diff_ids, layers, strict=False):
            compression = mt.layer_compression(layer.media_type)
            if compression == options.compression and diff_id not in found:
                blob = layout.blob_path(layer.digest) if layout and layout.has_blob(layer.digest, layer.size) else None
                found[diff_id] = Candidate(layer.digest, layer.size, options.compression, blob, previous)

    for image in bases.images:
        config = image.config
        if config is not None:
            add(config.rootfs.diff_ids, image.layers, image.layout, previous=False)
    for document in previous:
        manifest = document.manifest
        if store.has_blob(manifest.config.digest):
            config = ImageConfig.model_validate_json(store.read_blob(manifest.config.digest))
            add(config.rootfs.diff_ids, list(manifest.layers), store, previous=True)
    return found


def _descriptor(layer: LayerResult, docker: bool) -> Descriptor:
    return Descriptor(media_type=LAYER_TYPES[(docker, layer.compression)], digest=layer.digest, size=layer.size)


def _write_manifest(
    spec: BuildSpec,
    store: OCILayout,
    image: BaseImage,
    layers: list[LayerResult],
    docker: bool,
    dep: DependencyLayer | None = None,
) -> ManifestDocument:
    config = _edit_config(spec, image, layers, dep)
    if dep is not None:
        layers = [dep.layer, *layers]
    annotations = dict(spec.annotations)
    if image.manifest is not None:
        # A layout base's name is a path on this machine: only the digest goes into the image.
        name = {BASE_NAME: image.name} if image.name and image.layout is None else {}
        record_base({**name, BASE_DIGEST: image.manifest.digest}, docker, annotations, config)
    config_raw = config.to_json_bytes()
    config_digest = store.write_blob(config_raw)
    base_layers = image.layers
    if not docker:  # a Docker base's layers under their OCI names: the same bytes
        base_layers = [
            layer.model_copy(update={"media_type": mt.DOCKER_TO_OCI.get(layer.media_type, layer.media_type)})
            for layer in base_layers
        ]
    manifest = Manifest(
        media_type=mt.DOCKER_MANIFEST if docker else mt.OCI_MANIFEST,
        config=Descriptor(
            media_type=mt.DOCKER_CONFIG if docker else mt.OCI_CONFIG, digest=config_digest, size=len(config_raw)
        ),
        layers=base_layers + [_descriptor(layer, docker) for layer in layers],
        annotations=None if docker else annotations or None,
    )
    return ManifestDocument.from_model(manifest)


def _edit_config(
    spec: BuildSpec, image: BaseImage, layers: list[LayerResult], dep: DependencyLayer | None = None
) -> ImageConfig:
    created = rfc3339(spec.source_date_epoch)
    platform = image.platform
    config = image.config or ImageConfig(architecture=platform.architecture, os=platform.os, variant=platform.variant)
    edit_container_config(config, spec, dep.env if dep else None)
    config.created = created
    config.rootfs.diff_ids = list(config.rootfs.diff_ids) + [layer.diff_id for layer in layers]
    history = list(config.history or [])
    if dep is not None:
        config.rootfs.diff_ids.insert(len(config.rootfs.diff_ids) - len(layers), dep.layer.diff_id)
        history.append(History(created=created, created_by=dep.history))
    history += [History(created=created, created_by=_created_by(spec, i)) for i in range(len(layers))]
    config.history = history
    return config


def _created_by(spec: BuildSpec, index: int) -> str:
    layer = spec.layers[index]
    # The tar's file name, not its path: the same inputs give the same image wherever they are built.
    return (
        f"ocipush build: layer tar {os.path.basename(layer.source)}"
        if layer.tar
        else f"ocipush build: layer {layer.dest}"
    )


def previous_manifests(store: OCILayout, tag: str | None) -> list[ManifestDocument]:
    """The image manifests `tag` names in `store` now (an index's children), for layer reuse; [] if none."""
    from ocipush.errors import OcipushError

    if not tag:
        return []
    try:
        top = store.read_manifest(store.resolve(tag))
        if not top.is_index:
            return [top]
        return [store.read_manifest(child) for child in top.index.manifests if child.media_type in mt.IMAGE_MANIFESTS]
    except OcipushError:
        return []
