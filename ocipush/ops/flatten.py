"""Flatten an image into one layer, or export its filesystem as one tar stream, with whiteouts, opaque
directories, replaced directories and links resolved as a runtime unpacking the layers would. The layers are
downloaded once into a scratch layout and streamed from there twice; memory grows with the number of paths in
the image, never with file sizes. The new layer is compressed as it is written."""

from __future__ import annotations

import tarfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, BinaryIO, Protocol

from ocipush import mediatypes as mt
from ocipush.arguments import checked
from ocipush.errors import UsageError
from ocipush.extract import MAX_SYMLINKS, OPAQUE, WHITEOUT, layer_members, split_path
from ocipush.log import get_logger
from ocipush.models import Descriptor, History, Platform, parse_platform
from ocipush.ops.layers import BlobReader, open_layer
from ocipush.ops.source import open_image, output_reference, publish, rewrite_image, stage_locally
from ocipush.progress import ProgressCallback, ignore_progress
from ocipush.reference import parse_reference
from ocipush.registry.options import RegistryOptions
from ocipush.registry.session import RegistrySession
from ocipush.transfer import ImageSource, TransferResult

if TYPE_CHECKING:
    from ocipush.build.compress import Compression

log = get_logger("ocipush.ops.flatten")


class Writable(Protocol):
    def write(self, data: bytes, /) -> object: ...


Key = tuple[int, int]  # (layer, position of the entry in the layer's tar)


@dataclass
class _Node:
    """What a path of the flattened tree is, and which layer's entry supplies it."""

    layer: int  # the layer that last wrote it (a whiteout spares what its own layer wrote)
    key: Key | None  # the entry that supplies it; None for a directory a path implied
    is_dir: bool = False
    symlink: str | None = None
    hardlink: tuple[str, Key | None] | None = None  # target path and the entry it was when linked


@dataclass
class _Tree:
    """The filesystem the layers make, as metadata only: which entry supplies each path. Entries are applied in
    order exactly as `extract` applies them (parents resolved through symbolic links inside the image)."""

    nodes: dict[str, _Node] = field(default_factory=lambda: {"": _Node(-1, None, is_dir=True)})
    children: dict[str, set[str]] = field(default_factory=dict)

    def apply(self, member: tarfile.TarInfo, key: Key) -> None:
        parts = split_path(member.name, "entry")
        if not parts:
            return  # the root directory itself
        *parent, base = parts
        layer = key[0]
        if base.startswith(WHITEOUT):
            if base != OPAQUE and base[len(WHITEOUT) :].startswith(WHITEOUT):
                return  # aufs metadata such as .wh..wh.plnk
            directory = self._resolve(parent, member.name, layer, create=False)
            if directory is not None:
                if base == OPAQUE:
                    self._prune(directory, layer)
                else:
                    self._whiteout(_join(directory, base[len(WHITEOUT) :]), layer)
            return
        directory = self._resolve(parent, member.name, layer, create=True)
        assert directory is not None  # created when missing
        path = _join(directory, base)
        existing = self.nodes.get(path)
        if member.isdir() and existing is not None and existing.is_dir:
            existing.layer, existing.key = layer, key  # the directory stays; its metadata is the new entry's
            return
        hardlink = self._hardlink(member, layer) if member.islnk() else None
        self._remove(path)
        self._add(path, _Node(layer, key, member.isdir(), member.linkname if member.issym() else None, hardlink))

    def lookup(self, path: str) -> tuple[str, _Node] | None:
        """The real path (parents' symbolic links followed) and the node of `path` in the final filesystem."""
        *parent, base = split_path(path, "path")
        directory = self._resolve(parent, path, -1, create=False)
        if directory is None:
            return None
        real = _join(directory, base)
        node = self.nodes.get(real)
        return (real, node) if node is not None else None

    def chosen(self) -> dict[Key, str]:
        """Entry -> the path it ends up at, for every entry still visible."""
        return {node.key: path for path, node in self.nodes.items() if node.key is not None}

    def _hardlink(self, member: tarfile.TarInfo, layer: int) -> tuple[str, Key | None]:
        *parent, base = split_path(member.linkname, "hard link target of") or [""]
        directory = self._resolve(parent, member.name, layer, create=False)
        target = _join(directory, base) if directory is not None else member.linkname
        node = self.nodes.get(target)
        return target, node.key if node is not None else None

    def _resolve(self, parts: list[str], name: str, layer: int, create: bool) -> str | None:
        resolved: list[str] = []
        pending = list(parts)
        hops = 0
        while pending:
            component = pending.pop(0)
            if component in ("", "."):
                continue
            if component == "..":
                if resolved:
                    resolved.pop()
                continue
            path = "/".join([*resolved, component])
            node = self.nodes.get(path)
            if node is None:
                if not create:
                    return None
                self._add(path, _Node(layer, None, is_dir=True))
            elif node.symlink is not None:
                hops += 1
                if hops > MAX_SYMLINKS:
                    raise UsageError(f"{name}: too many levels of symbolic links")
                if node.symlink.startswith("/"):
                    resolved = []  # an absolute link is read inside the image, as a container sees it
                pending[:0] = node.symlink.split("/")
                continue
            elif not node.is_dir:
                raise UsageError(f"{name}: {path} is not a directory in the image")
            resolved.append(component)
        return "/".join(resolved)

    def _add(self, path: str, node: _Node) -> None:
        self.nodes[path] = node
        self.children.setdefault(path.rpartition("/")[0], set()).add(path)

    def _remove(self, path: str) -> None:
        if self.nodes.pop(path, None) is None:
            return
        self.children.get(path.rpartition("/")[0], set()).discard(path)
        for child in list(self.children.pop(path, ())):
            self._remove(child)

    def _whiteout(self, path: str, layer: int) -> None:
        node = self.nodes.get(path)
        if node is None:
            return
        if node.layer != layer:
            self._remove(path)
        elif node.is_dir:
            self._prune(path, layer)

    def _prune(self, directory: str, layer: int) -> None:
        """Delete what lower layers put under a directory, keeping what this layer wrote."""
        for child in list(self.children.get(directory, ())):
            self._whiteout(child, layer)


def _join(directory: str, name: str) -> str:
    return f"{directory}/{name}" if directory else name


def layer_tree(source: ImageSource, layers: Sequence[Descriptor]) -> _Tree:
    """Which entry supplies each path of the filesystem `layers` make, from their headers (contents skipped)."""
    tree = _Tree()
    for index, layer in enumerate(layers):
        reader = BlobReader(source.blob(layer))
        try:
            for position, member in enumerate(layer_members(reader, layer.digest, layer.media_type)):
                tree.apply(member, (index, position))
        finally:
            reader.close()
    return tree


def write_flat_tar(source: ImageSource, layers: Sequence[Descriptor], out: Writable) -> int:
    """Write the filesystem `layers` make as one tar stream into `out`; returns the number of entries written.

    Two passes over the layers: the first (headers only) works out which entry supplies each path, the second
    copies those entries, bottom layer first, so that parents and hard-link targets come before what needs them."""
    tree = layer_tree(source, layers)
    chosen = tree.chosen()
    written = 0
    with tarfile.open(fileobj=out, mode="w|", format=tarfile.PAX_FORMAT) as output:  # type: ignore[call-overload]
        for index, layer in enumerate(layers):
            with open_layer(source, layer) as (tar, reader):
                for position, member in enumerate(tar):
                    path = chosen.get((index, position))
                    if path is None:
                        continue
                    node = tree.nodes[path]
                    if node.hardlink is not None:
                        target, target_key = node.hardlink
                        if target_key is None or tree.nodes.get(target, _Node(-1, None)).key != target_key:
                            # The linked file was replaced or deleted above: the link has nothing left to share.
                            log.warning("dropping hard link %s: %s changed in a later layer", path, target)
                            continue
                        member.linkname = target
                    _rename(member, path)
                    output.addfile(member, tar.extractfile(member) if member.isreg() else None)
                    written += 1
                reader.verify(f"layer {layer.digest}")
    return written


def _rename(member: tarfile.TarInfo, path: str) -> None:
    """Set the final name; the PAX records that carried the old names would take priority when written."""
    member.name = path
    member.pax_headers = {k: v for k, v in member.pax_headers.items() if k not in ("path", "linkpath")}


@checked
def flatten(
    reference: str,
    target: str,
    *,
    platform: Platform | str | None = None,
    compression: Compression = "gzip",
    options: RegistryOptions | None = None,
    progress: ProgressCallback = ignore_progress,
) -> TransferResult:
    """Push to `target` the image `reference` names as one layer (its filesystem, whiteouts applied)."""
    from ocipush.baseinfo import BASE_KEYS, record_base
    from ocipush.blobsource import FileBlobSource
    from ocipush.build.compress import BlobPipeline
    from ocipush.build.image import LAYER_TYPES
    from ocipush.build.tarstream import CHUNK_SIZE, Chunker
    from ocipush.cachedir import scratch_dir
    from ocipush.layout import OCILayout

    source_ref = parse_reference(reference)
    destination = output_reference(source_ref, target)
    wanted = parse_platform(platform) if isinstance(platform, str) else platform
    with RegistrySession(options) as session, scratch_dir(session.options.cache_dir) as scratch:
        image = open_image(session, source_ref, wanted)
        docker = image.document.media_type == mt.DOCKER_MANIFEST
        if docker and compression == "zstd":
            raise UsageError("a Docker v2.2 manifest cannot hold zstd layers: flatten with --compression gzip")
        local = stage_locally(session, image, scratch, progress)
        store = OCILayout(scratch, durable=False)
        with BlobPipeline(store, compression) as pipeline:
            chunker = Chunker(pipeline.write, CHUNK_SIZE)
            entries = write_flat_tar(local.source, image.manifest.layers, chunker)
            chunker.close()
            blob = pipeline.finish()
        layer = Descriptor(media_type=LAYER_TYPES[(docker, compression)], digest=blob.digest, size=blob.size)
        config = image.config.model_copy(deep=True)
        config.rootfs.diff_ids = [blob.diff_id]
        config.history = [History(created=config.created, created_by="ocipush flatten")]
        log.info("flattened %s: %d layers, %d entries", source_ref, len(image.manifest.layers), entries)
        # One layer is no longer the base's layers plus others: a recorded base would mislead a rebase.
        record_base({}, docker, {}, config)
        result = rewrite_image(image, config, {}, f"{source_ref} flattened", [layer], drop=BASE_KEYS)
        result.add_blob(FileBlobSource(store.blob_path(blob.digest), blob.digest, blob.size))
        return publish(session, result, destination, progress)


@checked
def export(
    reference: str,
    out: BinaryIO,
    *,
    platform: Platform | str | None = None,
    options: RegistryOptions | None = None,
    progress: ProgressCallback = ignore_progress,
) -> int:
    """Write the filesystem of the image `reference` names as one uncompressed tar stream into `out`; returns the
    number of entries."""
    from ocipush.cachedir import scratch_dir

    wanted = parse_platform(platform) if isinstance(platform, str) else platform
    with RegistrySession(options) as session, scratch_dir(session.options.cache_dir) as scratch:
        image = open_image(session, parse_reference(reference), wanted)
        local = stage_locally(session, image, scratch, progress)
        return write_flat_tar(local.source, image.manifest.layers, out)
