"""One layer from a directory or a tarball into the store, reusing an existing blob when its diff_id is known.

A directory's entries are fingerprinted first by a stat-only walk: names, kinds, modes, sizes, link targets and,
for regular files, mtime, ctime and inode, as git's index does. When the local cache has seen that fingerprint
and still has the blob of the diff_id it gave, the layer is settled without reading a file (`verify` reads them:
the tar is hashed to confirm the diff_id). A fingerprint is kept only when no stamp in it is within RACY_NS of
the pass that read the files. On a miss with a previous image to match, the tar is hashed first (a layer it
already has is not compressed); otherwise the single compressing pass runs straight away: a first hash-only pass
on every build would cost a whole extra tar pass whenever the content did change (measured: 941 MB tree, 1.3 s).
Every pass walks the tree afresh, so memory does not grow with the number of files."""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

from ocipush.build.base import link_blob
from ocipush.build.cache import LayerCache
from ocipush.build.compress import BlobPipeline, BlobResult, BlobWatcher, Compression, DiffIdHasher
from ocipush.build.ignore import IgnoreMatcher
from ocipush.build.spec import LayerSpec
from ocipush.build.tarfile_input import detect_compression, iter_tar_bytes
from ocipush.build.tarstream import (
    CHUNK_SIZE,
    Chunker,
    Entry,
    Fingerprint,
    Ownership,
    Placement,
    iter_tree,
    new_placement,
    write_tar,
)
from ocipush.errors import BuildError
from ocipush.layout import OCILayout

# A file changed this close to the pass that read it may keep its time stamps: its fingerprint is not kept.
RACY_NS = 1_000_000_000


@dataclass(frozen=True)
class Candidate:
    """A compressed blob known to hold some diff_id; `blob_file` is None when it lives only in a registry."""

    digest: str
    size: int
    compression: Compression
    blob_file: str | None = None
    previous: bool = False  # a layer of the image the target tag names now (not only of the base)


@dataclass(frozen=True)
class LayerResult:
    """A layer of the build: where it goes in the image, its digests, and whether an earlier build's was reused."""

    diff_id: str
    digest: str
    size: int
    compression: Compression
    dest: str
    reused: bool


class KnownLayers:
    """Blobs whose diff_id is known: from the base and previous image (`known`), then the local cache."""

    def __init__(self, known: dict[str, Candidate], cache: LayerCache | None, options: LayerOptions) -> None:
        self._known, self._cache, self._options = known, cache, options

    def worth_hashing_first(self, predicted: str | None) -> bool:
        """Hash the tar before compressing it when that may spare the compression: the cache predicts a known
        blob, or the previous image has layers the new one may repeat."""
        return (predicted is not None and self.find(predicted) is not None) or any(
            c.previous for c in self._known.values()
        )

    def nothing_to_reuse(self) -> bool:
        """No previous image and an empty cache: no fingerprint can help, so the walk need not come first."""
        return not any(c.previous for c in self._known.values()) and not (
            self._cache is not None and self._cache.has_fingerprints()
        )

    def predicted_diff_id(self, stamp: str) -> str | None:
        return self._cache.predicted_diff_id(stamp) if self._cache else None

    def remember(self, stamp: str, diff_id: str) -> None:
        if self._cache:
            self._cache.record_fingerprint(stamp, diff_id)

    def find(self, diff_id: str) -> Candidate | None:
        found = self._known.get(diff_id)
        if found is not None or self._cache is None:
            return found
        hit = self._cache.lookup(diff_id, self._options.compression, self._options.level)
        if hit is None:
            return None
        descriptor, blob = hit
        return Candidate(descriptor.digest, descriptor.size, self._options.compression, blob)


@dataclass(frozen=True)
class LayerOptions:
    """How every layer of a build is made: compression, timestamps, ownership, ignore file."""

    compression: Compression
    level: int | None
    mtime: int
    owner: Ownership
    ignore_file: str | None = None
    verify: bool = False  # read every file even when the stat fingerprint says the layer is unchanged


def _matcher(layer: LayerSpec, options: LayerOptions) -> IgnoreMatcher | None:
    explicit = layer.ignore_file or options.ignore_file
    path = explicit or os.path.join(layer.source, ".dockerignore")
    if not explicit and not os.path.isfile(path):
        return None
    matcher = IgnoreMatcher.from_file(path)
    return matcher if matcher else None


def check_source(layer: LayerSpec, options: LayerOptions) -> None:
    """Fail before anything is written when a layer's input is missing or of the wrong kind."""
    if layer.tar:
        detect_compression(layer.source)
    elif not os.path.isdir(layer.source):
        what = "does not exist" if not os.path.exists(layer.source) else "is not a directory"
        raise BuildError(f"layer directory {layer.source} {what}")
    else:
        _matcher(layer, options)


def _feed_chunks(blocks: Iterable[bytes], write: Callable[[bytearray], None]) -> None:
    # Fixed chunk boundaries: the compressed bytes must not depend on how the input happened to be read.
    chunker = Chunker(write, CHUNK_SIZE)
    for block in blocks:
        chunker.write(block)
    chunker.close()


def build_layer(
    layer: LayerSpec,
    store: OCILayout,
    options: LayerOptions,
    known: KnownLayers,
    watch: BlobWatcher | None = None,
    placement: Placement | None = None,
) -> LayerResult:
    """Write (or reuse) the compressed blob of one layer in `store`; `watch` is told about a blob as it starts.

    `placement` says where a directory layer's contents go in the base (default: under DEST as on scratch)."""
    if layer.tar:
        return _tar_layer(layer, store, options, known, watch)
    place = placement or new_placement(layer.dest)
    matcher = _matcher(layer, options)

    def walk() -> Iterator[Entry]:
        # Each pass walks the tree again: holding the entries between passes would grow with the file count.
        return iter_tree(layer.source, place, matcher)

    if not known.nothing_to_reuse():
        # A stat-only pass: no file is opened. An unchanged fingerprint whose blob is at hand settles the layer.
        stamp = Fingerprint(place, options)
        for _ in stamp.watch(walk()):
            pass
        predicted = known.predicted_diff_id(stamp.hexdigest())
        if predicted is not None and not options.verify:
            reused = reuse_layer(predicted, known, store, options, layer.dest)
            if reused:
                return reused
        if known.worth_hashing_first(predicted):
            reused = _hash_pass(walk(), layer, store, options, known, Fingerprint(place, options))
            if reused:
                return reused
    stamp, started = Fingerprint(place, options), time.time_ns()
    blob = _compress(stamp.watch(walk()), store, options, watch)
    _remember(known, stamp, started, blob.diff_id)
    # Compressed anyway, but a blob the base or the previous image already has is not uploaded again.
    same = reuse_layer(blob.diff_id, known, store, options, layer.dest)
    return same or LayerResult(blob.diff_id, blob.digest, blob.size, options.compression, layer.dest, False)


def _hash_pass(
    entries: Iterator[Entry],
    layer: LayerSpec,
    store: OCILayout,
    options: LayerOptions,
    known: KnownLayers,
    stamp: Fingerprint,
) -> LayerResult | None:
    """The tar hashed without compressing it: the layer of a known blob when its diff_id is one."""
    started = time.time_ns()
    diff_id = _diff_id(lambda sink: write_tar(stamp.watch(entries), sink, options.mtime, options.owner))
    reused = reuse_layer(diff_id, known, store, options, layer.dest)
    if reused:
        _remember(known, stamp, started, diff_id)
    return reused


def _diff_id(feed: Callable[[Callable[[bytearray], None]], None]) -> str:
    """The diff_id of the tar that `feed` writes into the sink it is given: hashed, never compressed."""
    hasher = DiffIdHasher()
    try:
        feed(hasher.write)
    except BaseException:
        hasher.abort()
        raise
    return hasher.finish()


def _remember(known: KnownLayers, stamp: Fingerprint, started_ns: int, diff_id: str) -> None:
    """Keep fingerprint -> diff_id unless a file changed so near the pass that its stamp may not show a later
    change (file times are taken from a coarse clock, and some file systems keep whole seconds)."""
    if stamp.newest_ns < started_ns - RACY_NS:
        known.remember(stamp.hexdigest(), diff_id)


def _compress(
    entries: Iterator[Entry], store: OCILayout, options: LayerOptions, watch: BlobWatcher | None
) -> BlobResult:
    with BlobPipeline(store, options.compression, options.level, watch) as pipeline:
        write_tar(entries, pipeline.write, options.mtime, options.owner)
        return pipeline.finish()


def _tar_layer(
    layer: LayerSpec, store: OCILayout, options: LayerOptions, known: KnownLayers, watch: BlobWatcher | None
) -> LayerResult:
    diff_id = _diff_id(lambda sink: _feed_chunks(iter_tar_bytes(layer.source), sink))
    reused = reuse_layer(diff_id, known, store, options, layer.dest)
    if reused:
        return reused
    if detect_compression(layer.source) == options.compression:
        # Already compressed the way we want: stored byte for byte.
        with BlobPipeline(store, "none", watch=watch) as pipeline, open(layer.source, "rb") as f:
            _feed_chunks(iter(lambda: f.read(CHUNK_SIZE), b""), pipeline.write)
            blob = pipeline.finish()
        return LayerResult(diff_id, blob.digest, blob.size, options.compression, layer.dest, False)
    with BlobPipeline(store, options.compression, options.level, watch) as pipeline:
        _feed_chunks(iter_tar_bytes(layer.source), pipeline.write)
        blob = pipeline.finish()
    return LayerResult(blob.diff_id, blob.digest, blob.size, options.compression, layer.dest, False)


def reuse_layer(
    diff_id: str, known: KnownLayers, store: OCILayout, options: LayerOptions, dest: str
) -> LayerResult | None:
    """The layer of `diff_id` from a blob the base, the previous image or the cache already has; None if none."""
    found = known.find(diff_id)
    if found is None or found.compression != options.compression:
        return None
    if found.blob_file is not None:
        if not os.path.exists(found.blob_file):
            return None
        link_blob(found.blob_file, store, found.digest)
    return LayerResult(diff_id, found.digest, found.size, found.compression, dest, True)
