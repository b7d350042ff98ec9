"""What the image operations share: an image read from a registry (manifest and config), the reference a result
goes to, and an `ImageSource` over the documents an operation made plus the blobs of the images it started from.

The graph copy (`ocipush.transfer.transfer`) then moves the result: blobs the target repository lacks are mounted
from another repository of the same registry, streamed from another registry, or uploaded from memory or a file."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import cached_property
from typing import Any

from ocipush import mediatypes as mt
from ocipush.blobsource import BlobSource, BytesBlobSource
from ocipush.digest import check_digest, sha256_of
from ocipush.errors import NotFoundError, UsageError
from ocipush.log import get_logger
from ocipush.models import Descriptor, ImageConfig, Manifest, ManifestDocument, Platform
from ocipush.progress import ProgressCallback
from ocipush.records import Invalid
from ocipush.reference import Reference, is_valid_tag, parse_reference
from ocipush.referrers import Referrer
from ocipush.registry.session import RegistrySession
from ocipush.transfer import ImageSource, RegistrySource, RegistryTarget, TransferResult, select_platform, transfer

log = get_logger("ocipush.ops")


def read_small_blob(source: ImageSource, descriptor: Descriptor, what: str) -> bytes:
    """A config-sized blob in memory, verified against its digest."""
    raw = b"".join(source.blob(descriptor).read_range(0, descriptor.size))
    check_digest(descriptor.digest, sha256_of(raw), what)
    return raw


@dataclass
class Image:
    """One image manifest (exact bytes), the source holding its blobs, and its config."""

    source: ImageSource
    document: ManifestDocument
    config_raw: bytes

    @property
    def manifest(self) -> Manifest:
        return self.document.manifest

    @cached_property
    def config(self) -> ImageConfig:
        try:
            return ImageConfig.model_validate_json(self.config_raw)
        except Invalid:
            raise UsageError(f"{self.source.name}: the config is not an image config (an artifact?)") from None

    def blob_digests(self) -> list[str]:
        return [self.manifest.config.digest, *(layer.digest for layer in self.manifest.layers)]


def load_image(source: ImageSource, document: ManifestDocument) -> Image:
    config = document.manifest.config
    return Image(source, document, read_small_blob(source, config, f"config of {source.name}"))


def open_image(session: RegistrySession, reference: Reference, platform: Platform | None = None) -> Image:
    """The image `reference` names; from an index, the one for `platform` (required then)."""
    source = RegistrySource(session, reference)
    document = source.root()
    if document.is_index:
        if platform is None:
            raise UsageError(f"{reference} is an index: name one of its images with --platform (e.g. linux/amd64)")
        document = select_platform(source, document, platform)
    return load_image(source, document)


def writable_reference(text: str) -> Reference:
    """A reference a new document can be pushed to: a tag, never a digest (the result's digest is not known yet)."""
    reference = parse_reference(text)
    if reference.digest:
        raise UsageError(f"{text} names a digest: an operation makes a new document, so give a tag to write to")
    return reference


def output_reference(source: Reference, target: str) -> Reference:
    """`target` as a tag of `source`'s repository when it is a bare tag, else as a full reference."""
    return source.with_tag(target) if is_valid_tag(target) else writable_reference(target)


class ComposedSource:
    """Documents and blobs an operation made (kept here) plus those of existing images (left in their sources)."""

    def __init__(self, root: ManifestDocument, name: str) -> None:
        self.name = name
        self._root = root
        self._documents: dict[str, ManifestDocument] = {root.digest: root}
        self._local: dict[str, BlobSource] = {}
        self._origins: dict[str, ImageSource] = {}

    def add_document(self, document: ManifestDocument) -> None:
        self._documents[document.digest] = document

    def add_blob(self, blob: BlobSource) -> None:
        self._local[blob.digest] = blob

    def add_origin(self, source: ImageSource, digests: Iterable[str]) -> None:
        for digest in digests:
            self._origins.setdefault(digest, source)

    # --- ImageSource ---

    def root(self) -> ManifestDocument:
        return self._root

    def manifest(self, descriptor: Descriptor) -> ManifestDocument:
        document = self._documents.get(descriptor.digest)
        if document is None:
            origin = self._origin(descriptor)
            document = origin.manifest(descriptor)
            # What an existing manifest refers to lives where the manifest does.
            if document.is_index:
                self.add_origin(origin, (child.digest for child in document.index.manifests))
            else:
                self.add_origin(origin, (b.digest for b in [document.manifest.config, *document.manifest.layers]))
        return document

    def blob(self, descriptor: Descriptor) -> BlobSource:
        local = self._local.get(descriptor.digest)
        return local if local is not None else self._origin(descriptor).blob(descriptor)

    def mount_from(self, descriptor: Descriptor, host: str) -> list[str]:
        if descriptor.digest in self._local:
            return []
        return self._origin(descriptor).mount_from(descriptor, host)

    def attached(self, digest: str) -> list[Referrer]:
        # A composed manifest is new: nothing refers to it yet (the source's referrers name the source's digests).
        return []

    def _origin(self, descriptor: Descriptor) -> ImageSource:
        origin = self._origins.get(descriptor.digest)
        if origin is None:
            raise NotFoundError(f"{self.name}: no source holds {descriptor.digest}")
        return origin


def rewrite_image(
    image: Image,
    config: ImageConfig,
    annotations: Mapping[str, str],
    name: str,
    layers: list[Descriptor] | None = None,
    drop: Iterable[str] = (),
) -> ComposedSource:
    """A source for a new manifest: `image`'s with a new config, merged annotations (`drop` removed) and, if
    given, other layers. The image's layers stay where they are; the caller adds the origin of any other layer."""
    raw = config.to_json_bytes()
    digest = sha256_of(raw)
    manifest = image.manifest
    merged = {k: v for k, v in {**(manifest.annotations or {}), **annotations}.items() if k not in drop}
    if image.document.media_type in (mt.DOCKER_MANIFEST, mt.DOCKER_MANIFEST_LIST) and merged:
        # Docker v2.2 manifests have no annotations (see ocipush.baseinfo for where the base goes instead).
        log.warning("%s: annotations left out: %s is a Docker v2.2 image, whose manifests have none",
                    name, ", ".join(sorted(merged)))  # fmt: skip
        merged = {}
    update: dict[str, Any] = {
        "config": manifest.config.model_copy(update={"digest": digest, "size": len(raw)}),
        "annotations": merged or None,
    }
    if layers is not None:
        update["layers"] = layers
    source = ComposedSource(ManifestDocument.from_model(manifest.model_copy(update=update)), name)
    source.add_blob(BytesBlobSource(raw, digest, len(raw)))
    source.add_origin(image.source, (layer.digest for layer in manifest.layers))
    return source


def stage_locally(session: RegistrySession, image: Image, directory: str, progress: ProgressCallback) -> Image:
    """`image` copied into an OCI layout at `directory` (each blob downloaded once, in parallel, verified), for
    an operation that reads the layers more than once."""
    from ocipush.layout import OCILayout
    from ocipush.transfer import LayoutSource, LayoutTarget

    layout = OCILayout(directory, create=True, durable=False)  # a scratch directory
    source = ComposedSource(image.document, image.source.name)
    source.add_origin(image.source, image.blob_digests())
    transfer(source, LayoutTarget(layout, progress), [], jobs=session.options.jobs, progress=progress)
    return Image(LayoutSource(session, layout, None, image.document.digest), image.document, image.config_raw)


def publish(
    session: RegistrySession,
    source: ComposedSource,
    target: Reference,
    progress: ProgressCallback,
    extra_tags: Iterable[str] = (),
) -> TransferResult:
    """Push what `source` describes to `target` (its tag, plus `extra_tags`) with the graph copy."""
    tags = ([target.tag] if target.tag else []) + list(extra_tags)
    registry_target = RegistryTarget(session, target, progress)
    return transfer(source, registry_target, tags, jobs=session.options.jobs, progress=progress)
