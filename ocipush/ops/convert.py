"""Conversions on the way through `copy`/`push`: layer compression (gzip, zstd, or as it is) and manifest format
(OCI or Docker v2.2). A converted layer is decompressed as it streams from the source, recompressed by the build
pipeline into a scratch layout and checked against the config's diff_id, so the filesystem is unchanged; the
digests of the converted layers, manifests and index are new. Nothing that needs no change is re-serialised."""

from __future__ import annotations

from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Literal

from ocipush import mediatypes as mt
from ocipush.blobsource import BlobSource, FileBlobSource
from ocipush.digest import check_digest
from ocipush.errors import UsageError
from ocipush.extract import decompress_stream
from ocipush.layout import OCILayout
from ocipush.log import get_logger
from ocipush.models import Descriptor, ImageConfig, ManifestDocument, Platform
from ocipush.ops.layers import BlobReader
from ocipush.ops.source import ComposedSource, read_small_blob
from ocipush.transfer import ImageSource, select_platform

LayerCompression = Literal["gzip", "zstd", "keep"]
ManifestFormat = Literal["oci", "docker"]
COMPRESSIONS: tuple[LayerCompression, ...] = ("gzip", "zstd", "keep")
FORMATS: tuple[ManifestFormat, ...] = ("oci", "docker")
log = get_logger("ocipush.ops.convert")


@dataclass(frozen=True)
class Conversion:
    """What to change: `compression` of the layers ('keep': as they are) and the manifest `format` (None: as is)."""

    compression: LayerCompression = "keep"
    format: ManifestFormat | None = None

    def __post_init__(self) -> None:
        if self.compression not in COMPRESSIONS:
            raise UsageError(f"invalid compression {self.compression!r}: expected one of {', '.join(COMPRESSIONS)}")
        if self.format is not None and self.format not in FORMATS:
            raise UsageError(f"invalid manifest format {self.format!r}: expected oci or docker")
        if self.format == "docker" and self.compression == "zstd":
            raise UsageError("a Docker v2.2 manifest cannot hold zstd layers: use --format oci with zstd")

    @property
    def changes_nothing(self) -> bool:
        return self.compression == "keep" and self.format is None


def convert(
    source: ImageSource,
    conversion: Conversion,
    scratch: str,
    *,
    platform: Platform | None = None,
    jobs: int = 2,
) -> ImageSource:
    """`source`'s image (or, with `platform`, that image of its index) converted; new layers go to `scratch`."""
    root = source.root()
    if platform is not None and root.is_index:
        root = select_platform(source, root, platform)
    with ThreadPoolExecutor(max_workers=max(1, jobs), thread_name_prefix="ocipush-convert") as pool:
        work = _Converter(source, conversion, OCILayout(scratch, create=True, durable=False), pool)
        new_root = work.document(root)
    result = ComposedSource(new_root, f"{source.name} ({_describe(conversion)})")
    for document in work.documents:
        result.add_document(document)
    for blob in work.local:
        result.add_blob(blob)
    result.add_origin(source, work.kept)
    if new_root.digest != root.digest:
        log.info("%s converted (%s): digest %s -> %s", source.name, _describe(conversion), root.digest, new_root.digest)
    return result


def is_plain_layer(layer: Descriptor) -> bool:
    """A tar layer (plain, gzip or zstd) held in the registry; foreign and unknown layers are passed on untouched."""
    standard = mt.GZIP_LAYERS | mt.ZSTD_LAYERS | mt.PLAIN_LAYERS
    return not layer.urls and layer.media_type != mt.DOCKER_FOREIGN_LAYER and layer.media_type in standard


def retype_layer(layer: Descriptor, docker: bool, where: str, advice: str = "add --compression gzip") -> Descriptor:
    """The same blob with the layer media type of the Docker v2.2 or the OCI family (which one a manifest holds);
    `advice` ends the error for a zstd layer, which has no Docker type."""
    from ocipush.build.image import LAYER_TYPES

    if not is_plain_layer(layer):
        return layer
    compression = mt.layer_compression(layer.media_type)
    if docker and compression == "zstd":
        raise UsageError(f"{where} has zstd layers, which a Docker v2.2 manifest cannot hold: {advice}")
    return layer.model_copy(update={"media_type": LAYER_TYPES[(docker, compression)]})


def _describe(conversion: Conversion) -> str:
    parts = [] if conversion.compression == "keep" else [f"{conversion.compression} layers"]
    return ", ".join(parts + ([f"{conversion.format} manifests"] if conversion.format else []))


@dataclass
class _Converter:
    """Rewrites one image's blobs and manifests into a scratch layout."""

    source: ImageSource
    conversion: Conversion
    store: OCILayout
    pool: ThreadPoolExecutor
    documents: list[ManifestDocument] = field(default_factory=list)
    local: list[BlobSource] = field(default_factory=list)
    kept: list[str] = field(default_factory=list)  # digests taken from the source as they are

    def document(self, document: ManifestDocument) -> ManifestDocument:
        new = self._index(document) if document.is_index else self._image(document)
        if new.digest == document.digest:
            self.kept.append(document.digest)
            return document
        self.documents.append(new)
        return new

    def _docker(self, media_type: str) -> bool:
        return self.conversion.format == "docker" or (self.conversion.format is None and media_type in (
            mt.DOCKER_MANIFEST, mt.DOCKER_MANIFEST_LIST))  # fmt: skip

    def _index(self, document: ManifestDocument) -> ManifestDocument:
        index = document.index
        children: list[Descriptor] = []
        for child in index.manifests:
            if child.media_type in mt.MANIFESTS:
                converted = self.document(self.source.manifest(child))
                moved = {"media_type": converted.media_type, "digest": converted.digest, "size": len(converted.raw)}
                children.append(child.model_copy(update=moved))
            else:
                self.kept.append(child.digest)
                children.append(child)
        docker = self._docker(document.media_type)
        if docker and any(c.media_type not in (mt.DOCKER_MANIFEST, mt.DOCKER_MANIFEST_LIST) for c in children):
            raise UsageError(f"{self.source.name}: an entry of the index is not an image; a Docker manifest list "
                             "cannot hold it (use --format oci)")  # fmt: skip
        media_type = mt.DOCKER_MANIFEST_LIST if docker else mt.OCI_INDEX
        if children == index.manifests and media_type == document.media_type:
            return document
        # The Docker format has no annotations; an OCI index keeps its own.
        update: dict[str, Any] = {"media_type": media_type, "manifests": children}
        if docker:
            update["annotations"] = None
        return ManifestDocument.from_model(index.model_copy(update=update))

    def _image(self, document: ManifestDocument) -> ManifestDocument:
        manifest = document.manifest
        docker = self._docker(document.media_type)
        if docker and (manifest.subject is not None or manifest.artifact_type is not None):
            raise UsageError(f"{self.source.name}: an artifact or referrer has no Docker v2.2 form (use --format oci)")
        config_raw = read_small_blob(self.source, manifest.config, f"config of {self.source.name}")
        diff_ids = ImageConfig.model_validate_json(config_raw).rootfs.diff_ids
        if len(diff_ids) != len(manifest.layers):
            raise UsageError(f"{self.source.name}: {len(manifest.layers)} layers but {len(diff_ids)} diff_ids")
        futures = [
            self._layer(layer, diff_id, docker) for layer, diff_id in zip(manifest.layers, diff_ids, strict=True)
        ]
        layers = [future.result() for future in futures]
        config_type = mt.DOCKER_CONFIG if docker else mt.OCI_CONFIG
        self.kept.append(manifest.config.digest)
        media_type = mt.DOCKER_MANIFEST if docker else mt.OCI_MANIFEST
        if (
            layers == manifest.layers
            and media_type == document.media_type
            and config_type == manifest.config.media_type
        ):
            return document
        update: dict[str, Any] = {
            "media_type": media_type,
            "config": manifest.config.model_copy(update={"media_type": config_type}),
            "layers": layers,
        }
        if docker:
            update["annotations"] = None
        return ManifestDocument.from_model(manifest.model_copy(update=update))

    def _layer(self, layer: Descriptor, diff_id: str, docker: bool) -> Future[Descriptor]:
        from ocipush.build.image import LAYER_TYPES

        have = mt.layer_compression(layer.media_type)
        want = have if self.conversion.compression == "keep" else self.conversion.compression
        if not is_plain_layer(layer) or want == have:
            self.kept.append(layer.digest)
            done: Future[Descriptor] = Future()
            done.set_result(retype_layer(layer, docker, self.source.name))
            return done
        return self.pool.submit(self._recompress, layer, diff_id, LAYER_TYPES[(docker, want)], want)

    def _recompress(self, layer: Descriptor, diff_id: str, media_type: str, want: str) -> Descriptor:
        from ocipush.build.compress import BlobPipeline
        from ocipush.build.tarstream import CHUNK_SIZE, Chunker

        reader = BlobReader(self.source.blob(layer))
        try:
            plain = decompress_stream(reader, mt.layer_compression(layer.media_type))
            with BlobPipeline(self.store, want) as pipeline:  # type: ignore[arg-type]
                chunker = Chunker(pipeline.write, CHUNK_SIZE)
                while data := plain.read(CHUNK_SIZE):
                    chunker.write(data)
                chunker.close()
                result = pipeline.finish()
            reader.verify(f"layer {layer.digest} of {self.source.name}")
        finally:
            reader.close()
        check_digest(diff_id, result.diff_id, f"layer {layer.digest} of {self.source.name} (uncompressed)")
        self.local.append(FileBlobSource(self.store.blob_path(result.digest), result.digest, result.size))
        return Descriptor(media_type=media_type, digest=result.digest, size=result.size)
