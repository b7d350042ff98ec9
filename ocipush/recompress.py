"""Layer compression on the way: an image source whose layers are (re)compressed into a scratch layout, with new
manifests (and index) naming them; everything else is served by the source as it is.

A `docker save` tarball holds plain tar layers (an 18 KB layer that is 2 KB gzipped): pushed as they are, they cost
registry storage and pull time. By default only plain layers are compressed, so that layers already compressed keep
their bytes and digests; asking for a compression converts every layer that is not in it. The config is unchanged:
diff_ids name the uncompressed bytes, and each converted layer is checked against its diff_id."""

from __future__ import annotations

import json
from typing import Literal

from ocipush import mediatypes as mt
from ocipush.blobsource import BlobSource, FileBlobSource
from ocipush.build.compress import BlobPipeline, Compression
from ocipush.digest import check_digest, sha256_of
from ocipush.errors import UsageError
from ocipush.extract import ChunkReader, decompress_stream
from ocipush.layout import OCILayout
from ocipush.models import Descriptor, ImageConfig, ManifestDocument, Platform
from ocipush.transfer import ImageSource, is_foreign, select_platform

COPY_SIZE = 1 << 20
Which = Literal["plain", "all"]
_TAR_LAYERS = mt.GZIP_LAYERS | mt.ZSTD_LAYERS | mt.PLAIN_LAYERS
_OCI_TYPES: dict[str, str] = {"gzip": mt.OCI_LAYER_GZIP, "zstd": mt.OCI_LAYER_ZSTD, "none": mt.OCI_LAYER}
_DOCKER_TYPES: dict[str, str] = {"gzip": mt.DOCKER_LAYER_GZIP, "none": mt.DOCKER_LAYER}


class RecompressedSource:
    """`inner` with its layers in `compression`: plain layers only (`which="plain"`), or every layer. With
    `platform`, only that image of an index is looked at (and becomes the root)."""

    def __init__(
        self,
        inner: ImageSource,
        store: OCILayout,
        compression: Compression,
        which: Which = "all",
        platform: Platform | None = None,
    ) -> None:
        self.inner, self.store = inner, store
        self.compression, self.which, self.platform = compression, which, platform
        self.name = inner.name
        self._documents: dict[str, ManifestDocument] = {}  # new digest -> document we made
        self._blobs: dict[str, Descriptor] = {}  # new layer digest -> its descriptor
        self._root: ManifestDocument | None = None

    def root(self) -> ManifestDocument:
        if self._root is None:
            root = self.inner.root()
            if self.platform is not None and root.is_index:
                root = select_platform(self.inner, root, self.platform)
            self._root = self._convert(root)
        return self._root

    def manifest(self, descriptor: Descriptor) -> ManifestDocument:
        return self._documents.get(descriptor.digest) or self.inner.manifest(descriptor)

    def blob(self, descriptor: Descriptor) -> BlobSource:
        if descriptor.digest in self._blobs:
            return FileBlobSource(self.store.blob_path(descriptor.digest), descriptor.digest, descriptor.size)
        return self.inner.blob(descriptor)

    def mount_from(self, descriptor: Descriptor, host: str) -> list[str]:
        return [] if descriptor.digest in self._blobs else self.inner.mount_from(descriptor, host)

    # --- conversion ------------------------------------------------------------------------------------------

    def _convert(self, document: ManifestDocument) -> ManifestDocument:
        """The document with converted layers (a new one), or the same document when nothing changes."""
        if document.is_index:
            return self._convert_index(document)
        manifest = document.manifest
        todo = [i for i, layer in enumerate(manifest.layers) if self._wants(layer)]
        if not todo:
            return document
        if document.media_type == mt.DOCKER_MANIFEST and self.compression not in _DOCKER_TYPES:
            raise UsageError(f"{self.name}: a Docker v2.2 manifest cannot name {self.compression} layers (use gzip)")
        diff_ids = self._diff_ids(manifest.config)
        data = json.loads(document.raw)
        for i in todo:
            layer = manifest.layers[i]
            expected = diff_ids[i] if diff_ids and i < len(diff_ids) else None
            converted = self._convert_layer(layer, document.media_type, expected)
            data["layers"][i].update(converted.model_dump(mode="json", by_alias=True, exclude_none=True))
        return self._made(data, document.media_type)

    def _convert_index(self, document: ManifestDocument) -> ManifestDocument:
        data = json.loads(document.raw)
        changed = False
        for i, child in enumerate(document.index.manifests):
            if child.media_type not in mt.MANIFESTS:
                continue
            before = self.inner.manifest(child)
            after = self._convert(before)
            if after.digest != before.digest:
                data["manifests"][i].update({"mediaType": after.media_type, "digest": after.digest,
                                             "size": len(after.raw)})  # fmt: skip
                changed = True
        return self._made(data, document.media_type) if changed else document

    def _made(self, data: dict[str, object], media_type: str) -> ManifestDocument:
        made = ManifestDocument(json.dumps(data, separators=(",", ":")).encode(), media_type)
        self._documents[made.digest] = made
        return made

    def _wants(self, layer: Descriptor) -> bool:
        if layer.media_type not in _TAR_LAYERS or is_foreign(layer):
            return False
        current = mt.layer_compression(layer.media_type)
        return current != self.compression and (self.which == "all" or current == "none")

    def _diff_ids(self, config: Descriptor) -> list[str] | None:
        if config.media_type not in (mt.OCI_CONFIG, mt.DOCKER_CONFIG):
            return None
        raw = b"".join(self.inner.blob(config).read_range(0, config.size))
        check_digest(config.digest, sha256_of(raw), f"config of {self.name}")
        return ImageConfig.model_validate_json(raw).rootfs.diff_ids

    def _convert_layer(self, layer: Descriptor, manifest_type: str, diff_id: str | None) -> Descriptor:
        compressed = ChunkReader(self.inner.blob(layer).read_range(0, layer.size))
        plain = decompress_stream(compressed, mt.layer_compression(layer.media_type))
        with BlobPipeline(self.store, self.compression) as pipe:
            while chunk := plain.read(COPY_SIZE):
                pipe.write(chunk)
            result = pipe.finish()
        if diff_id is not None:
            check_digest(diff_id, result.diff_id, f"layer {layer.digest} of {self.name} (uncompressed)")
        types = _DOCKER_TYPES if manifest_type == mt.DOCKER_MANIFEST else _OCI_TYPES
        converted = Descriptor(media_type=types[self.compression], digest=result.digest, size=result.size)
        self._blobs[converted.digest] = converted
        return converted
