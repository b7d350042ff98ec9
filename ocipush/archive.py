"""docker-archive (`docker save` / `docker load`) tarballs: write one from the layout, import one into it.

Layers are written *uncompressed* (`<diff_id>.tar`), as `docker save` and skopeo's own writer do: the file then
hashes to the diff_id the config lists, which every reader accepts. (docker load and skopeo 1.9 also decompress
gzip layers, but older and simpler readers key layers by the file's digest.) On import, layers are kept as they
are in the archive: compressed ones keep their bytes and digest, plain ones become `tar` layers."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tarfile
import tempfile
from dataclasses import dataclass, field
from typing import BinaryIO, cast

from ocipush import mediatypes as mt
from ocipush.digest import HashingReader, check_digest, hex_part, sha256_of
from ocipush.errors import LayoutError, NotFoundError, UsageError
from ocipush.extract import corrupt_stream_errors, decompress_stream
from ocipush.fsutil import atomic_writer
from ocipush.layout import OCILayout
from ocipush.limits import MAX_ARCHIVE_MANIFEST_BYTES, read_limited
from ocipush.models import (
    Descriptor,
    ImageConfig,
    Manifest,
    ManifestDocument,
    Platform,
    host_platform,
    platform_matches,
)
from ocipush.records import Invalid, OpenRecord, options
from ocipush.reference import DOCKER_HUB, Reference, parse_reference

COPY_SIZE = 1 << 20
BLOCK = 512
_MAGIC = {b"\x1f\x8b": "gzip", b"\x28\xb5\x2f\xfd": "zstd"}
_LAYER_TYPES = {"gzip": mt.OCI_LAYER_GZIP, "zstd": mt.OCI_LAYER_ZSTD, "none": mt.OCI_LAYER}


@dataclass(kw_only=True)
class ArchiveEntry(OpenRecord):
    """One image in an archive's `manifest.json`."""

    config: str = field(metadata=options(alias="Config"))
    repo_tags: list[str] | None = field(default=None, metadata=options(alias="RepoTags"))
    layers: list[str] = field(metadata=options(alias="Layers"))


# --- writing -----------------------------------------------------------------------------------------------


def write_docker_archive(
    layout: OCILayout,
    descriptor: Descriptor,
    path: str,
    reference: str | None,
    platform: Platform | None = None,
) -> None:
    """Write the image `descriptor` names (an index picks `platform`, default the host's) as a docker archive.

    `reference` (e.g. `myapp:1`) becomes its RepoTag. The file appears only once complete."""
    manifest = _image_manifest(layout, descriptor, platform or host_platform())
    config_raw = layout.read_blob(manifest.config.digest)
    diff_ids = _parse_config(config_raw, manifest.config.digest).rootfs.diff_ids
    if len(diff_ids) != len(manifest.layers):
        raise LayoutError(
            f"config {manifest.config.digest} lists {len(diff_ids)} diff_ids for {len(manifest.layers)} layers"
        )
    config_name = hex_part(manifest.config.digest) + ".json"
    repo_tags = [_repo_tag(reference)] if reference else []
    layer_names: list[str] = []
    with atomic_writer(path) as out:
        tar = _TarWriter(out)
        tar.add_bytes(config_name, config_raw)
        for layer, diff_id in zip(manifest.layers, diff_ids, strict=True):
            name = hex_part(diff_id) + ".tar"
            if name not in layer_names:  # an image may repeat a layer; store it once
                _write_layer(layout, layer, diff_id, name, tar)
            layer_names.append(name)
        entry = {"Config": config_name, "RepoTags": repo_tags, "Layers": layer_names}
        tar.add_bytes("manifest.json", json.dumps([entry], separators=(",", ":")).encode())
        tar.close()


def _image_manifest(layout: OCILayout, descriptor: Descriptor, platform: Platform) -> Manifest:
    document = layout.read_manifest(descriptor)
    if not document.is_index:
        return document.manifest
    children = document.index.manifests
    for child in children:
        if child.media_type in mt.IMAGE_MANIFESTS and platform_matches(platform, child.platform):
            return layout.read_manifest(child).manifest
    available = ", ".join(str(c.platform) for c in children if c.platform) or "none"
    raise NotFoundError(f"index {descriptor.digest} has no image for {platform} (available: {available})")


def _parse_config(raw: bytes, digest: str) -> ImageConfig:
    try:
        return ImageConfig.model_validate_json(raw)
    except Invalid as exc:
        raise LayoutError(f"image config {digest} is not valid: {exc}") from None


def _repo_tag(reference: str) -> str:
    """`name:tag` in docker's short form (docker.io and library/ dropped), as `docker save` writes it."""
    ref = parse_reference(reference)
    if ref.digest or not ref.tag:
        raise UsageError(f"{reference!r}: a docker archive names images by tag, not by digest")
    name = ref.repository if ref.registry == DOCKER_HUB else f"{ref.registry}/{ref.repository}"
    return f"{name.removeprefix('library/') if ref.registry == DOCKER_HUB else name}:{ref.tag}"


def _write_layer(layout: OCILayout, layer: Descriptor, diff_id: str, name: str, tar: _TarWriter) -> None:
    """Stream one layer decompressed into the archive, checking both its digest and its diff_id."""
    with layout.open_blob(layer.digest) as blob:
        compressed = HashingReader(blob, layer.digest.split(":", 1)[0])
        plain = HashingReader(decompress_stream(compressed, mt.layer_compression(layer.media_type)))
        try:
            tar.add_stream(name, plain)
        except corrupt_stream_errors() as exc:
            raise LayoutError(f"layer {layer.digest} is damaged: {exc}") from None
        while compressed.read(COPY_SIZE):
            pass
    check_digest(layer.digest, compressed.digest, f"layer {layer.digest}")
    check_digest(diff_id, plain.digest, f"uncompressed layer {layer.digest} (diff_id)")


class _TarWriter:
    """A minimal tar writer that can stream an entry of unknown size: the header is patched once it is known.

    GNU headers keep the header a fixed 512 bytes for any size (base-256 above 8 GiB), so patching is in place."""

    def __init__(self, out: BinaryIO) -> None:
        self._out = out

    @staticmethod
    def _header(name: str, size: int) -> bytes:
        info = tarfile.TarInfo(name)
        info.size, info.mode, info.mtime = size, 0o644, 0
        header = info.tobuf(tarfile.GNU_FORMAT, "utf-8", "surrogateescape")
        assert len(header) == BLOCK, "names are short ASCII digests"
        return header

    def _pad(self, size: int) -> None:
        self._out.write(b"\0" * (-size % BLOCK))

    def add_bytes(self, name: str, data: bytes) -> None:
        self._out.write(self._header(name, len(data)))
        self._out.write(data)
        self._pad(len(data))

    def add_stream(self, name: str, stream: HashingReader) -> None:
        start = self._out.tell()
        self._out.write(self._header(name, 0))
        while chunk := stream.read(COPY_SIZE):
            self._out.write(chunk)
        end = self._out.tell()
        self._out.seek(start)
        self._out.write(self._header(name, stream.size))
        self._out.seek(end)
        self._pad(stream.size)

    def close(self) -> None:
        self._out.write(b"\0" * (2 * BLOCK))


# --- reading -----------------------------------------------------------------------------------------------


def read_docker_archive(path: str, reference: str | None, store: OCILayout, tag: str | None) -> Descriptor:
    """Import the image `reference` (a RepoTag, `@N` for the N-th image, or None when there is one) from a
    docker archive into `store` as an OCI image, tagged `tag`. Nothing is added to the store on failure."""
    try:
        with tarfile.open(path, "r:*") as tar:
            entry = _choose(_read_entries(tar, path), reference, path)
            config_raw = _member(tar, entry.config, path).read()
            config_desc = Descriptor(media_type=mt.OCI_CONFIG, digest=sha256_of(config_raw), size=len(config_raw))
            config = _parse_config(config_raw, f"{entry.config} in {path}")
            if len(config.rootfs.diff_ids) != len(entry.layers):
                raise LayoutError(
                    f"{path}: {entry.config} lists {len(config.rootfs.diff_ids)} diff_ids "
                    f"for {len(entry.layers)} layers"
                )
            with _Staging(store) as stage:
                stage.add_bytes(config_desc.digest, config_raw)
                layers = [
                    stage.add_layer(_member(tar, name, path), diff_id, f"{name} in {path}")
                    for name, diff_id in zip(entry.layers, config.rootfs.diff_ids, strict=True)
                ]
                stage.commit()
    except FileNotFoundError:
        raise UsageError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise LayoutError(f"{path} is a directory, not a docker archive") from None
    except corrupt_stream_errors() as exc:
        reason = (str(exc).splitlines() or [type(exc).__name__])[0].rstrip(":")
        raise LayoutError(f"{path} is not a readable docker archive: {reason}") from None
    document = ManifestDocument.from_model(Manifest(config=config_desc, layers=layers))
    return store.add_manifest(document, [tag] if tag else [], platform=config.platform)


def _read_entries(tar: tarfile.TarFile, path: str) -> list[ArchiveEntry]:
    try:
        member = tar.getmember("manifest.json")
    except KeyError:
        raise LayoutError(f"{path} is not a docker archive: it has no manifest.json") from None
    stream = tar.extractfile(member)
    if stream is None:
        raise LayoutError(f"{path}: manifest.json is not a file")
    try:
        chunks = iter(lambda: stream.read(COPY_SIZE), b"")
        entries = json.loads(read_limited(chunks, MAX_ARCHIVE_MANIFEST_BYTES, f"{path}: manifest.json", LayoutError))
        if not isinstance(entries, list):
            raise Invalid("", "expected a list of images")
        return [ArchiveEntry.model_validate(entry, str(i)) for i, entry in enumerate(entries)]
    except (Invalid, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise LayoutError(f"{path}: manifest.json is malformed: {exc}") from None


def _choose(entries: list[ArchiveEntry], reference: str | None, path: str) -> ArchiveEntry:
    tags = [t for e in entries for t in e.repo_tags or []]
    if reference is None:
        if len(entries) == 1:
            return entries[0]
        raise UsageError(f"{path} holds {len(entries)} images; name one ({', '.join(tags) or 'use @N'})")
    if reference.startswith("@") and reference[1:].isdigit():
        if int(reference[1:]) < len(entries):
            return entries[int(reference[1:])]
        raise NotFoundError(f"{path} holds {len(entries)} images; {reference} is out of range")
    wanted = parse_reference(reference)
    for entry in entries:
        if any(_same_ref(wanted, t) for t in entry.repo_tags or []):
            return entry
    raise NotFoundError(f"{reference!r} is not in {path} (it holds: {', '.join(tags) or 'untagged images'})")


def _same_ref(wanted: Reference, repo_tag: str) -> bool:
    try:
        return parse_reference(repo_tag) == wanted
    except UsageError:
        return False


def _member(tar: tarfile.TarFile, name: str, path: str) -> BinaryIO:
    try:
        # extractfile follows in-archive symlinks such as skopeo's `<id>/layer.tar`.
        stream = cast(BinaryIO | None, tar.extractfile(name))
    except KeyError:
        stream = None
    if stream is None:
        raise LayoutError(f"{path}: {name!r}, listed in manifest.json, is not a file in the archive")
    return stream


class _Staging:
    """Blobs are written to a private directory in the layout and moved into `blobs/` only when all are good."""

    def __init__(self, store: OCILayout) -> None:
        self._store = store
        ingest = os.path.join(store.path, ".ingest")
        os.makedirs(ingest, exist_ok=True)
        self._dir = tempfile.mkdtemp(prefix="archive-", dir=ingest)
        self._staged: list[str] = []

    def __enter__(self) -> _Staging:
        return self

    def __exit__(self, *exc: object) -> None:
        shutil.rmtree(self._dir, ignore_errors=True)

    def _path(self, digest: str) -> str:
        return os.path.join(self._dir, hex_part(digest))

    def add_bytes(self, digest: str, data: bytes) -> None:
        with open(self._path(digest), "wb") as f:
            f.write(data)
            os.fsync(f.fileno())
        self._staged.append(digest)

    def add_layer(self, stream: BinaryIO, diff_id: str, what: str) -> Descriptor:
        """Stage a layer as it is; its digest is learned while copying, its diff_id checked after."""
        head = stream.read(4)
        compression = next((c for magic, c in _MAGIC.items() if head.startswith(magic)), "none")
        stream.seek(0)
        with tempfile.NamedTemporaryFile(dir=self._dir, delete=False) as out:
            reader = HashingReader(stream)
            while chunk := reader.read(COPY_SIZE):
                out.write(chunk)
            out.flush()
            os.fsync(out.fileno())
        digest = reader.digest
        os.replace(out.name, self._path(digest))
        self._staged.append(digest)
        if compression == "none":
            check_digest(diff_id, digest, what)
        else:
            with open(self._path(digest), "rb") as staged:
                plain = HashingReader(decompress_stream(staged, compression))
                while plain.read(COPY_SIZE):
                    pass
            check_digest(diff_id, plain.digest, f"{what} (uncompressed)")
        return Descriptor(media_type=_LAYER_TYPES[compression], digest=digest, size=reader.size)

    def commit(self) -> None:
        for digest in self._staged:
            target = self._store.blob_path(digest)
            if self._store.has_blob(digest):
                continue
            os.makedirs(os.path.dirname(target), exist_ok=True)
            with contextlib.suppress(FileNotFoundError):  # a blob staged twice was moved already
                os.replace(self._path(digest), target)
