"""What a base image has at a path: its directories and symlinks, read from layer tar headers, top layer down.

A layer placed at `/bin/tools` must know whether the base's `/bin` is a directory (and with which mode and owner)
or a symlink, or the layer's own parent entries replace what the base has. Only tar headers are needed: each layer
is summarised once (directories with mode/uid/gid, symlinks with their targets, other entries by name, whiteouts,
opaque directories), lazily from the top layer down, so a lookup stops at the first layer that settles its path.

A summary depends only on the layer's bytes, so it is cached by layer digest in the cache dir: an unchanged base
costs one JSON read per layer consulted. A layer is read to its end (a tar's entries can come in any order, so
a partial read settles nothing) and its digest is checked before its summary is used or cached; layers below the
one that settles every path asked for are not read at all."""

from __future__ import annotations

import contextlib
import json
import os
import posixpath
import tarfile
from collections.abc import Callable, Iterable, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, NamedTuple

from ocipush.build.base import BaseImage
from ocipush.errors import BuildError, UsageError
from ocipush.extract import OPAQUE, WHITEOUT, ChunkReader, Reader, layer_members
from ocipush.fsutil import atomic_write_bytes
from ocipush.log import get_logger
from ocipush.models import Descriptor
from ocipush.progress import ProgressCallback, ProgressEvent, ignore_progress

if TYPE_CHECKING:
    from ocipush.registry.session import RegistrySession

log = get_logger("ocipush.build.base_index")

_VERSION = 2
_SETS = ("others", "whiteouts", "opaque", "implied")

# Opens a layer blob of the base for reading (compressed bytes, as stored).
LayerOpener = Callable[[Descriptor], AbstractContextManager[Reader]]


class Node(NamedTuple):
    """One path of the base image as the runtime will show it: kind 'dir', 'link' or 'other'."""

    kind: str
    mode: int = 0o755
    uid: int = 0
    gid: int = 0
    link: str = ""


# What a runtime makes of a directory that a layer only implies (entries beneath it, no entry of its own).
IMPLIED_DIR = Node("dir")


@dataclass
class LayerSummary:
    """What one layer's headers say about directories and symlinks (paths without leading or trailing '/')."""

    dirs: dict[str, tuple[int, int, int]] = field(default_factory=dict)
    links: dict[str, str] = field(default_factory=dict)
    others: set[str] = field(default_factory=set)
    whiteouts: set[str] = field(default_factory=set)
    opaque: set[str] = field(default_factory=set)
    implied: set[str] = field(default_factory=set)
    size: int = 0  # the sum of the members' sizes (what the Lambda size check needs, read in the same pass)

    def node(self, path: str) -> Node | None:
        found = self.dirs.get(path)
        if found is not None:
            return Node("dir", *found)
        link = self.links.get(path)
        if link is not None:
            return Node("link", 0o777, link=link)
        return Node("other", 0) if path in self.others else None

    def hides_below(self, path: str, ancestors: list[str]) -> bool:
        """True when this layer hides `path` in every layer beneath it."""
        if path in self.whiteouts:
            return True
        return any(
            a in self.whiteouts or a in self.opaque or a in self.links or a in self.others for a in ancestors
        )

    def to_json(self) -> bytes:
        data = {
            "version": _VERSION,
            "dirs": self.dirs,
            "links": self.links,
            "size": self.size,
            **{key: sorted(getattr(self, key)) for key in _SETS},
        }
        return json.dumps(data, separators=(",", ":"), sort_keys=True).encode()

    @classmethod
    def from_json(cls, raw: bytes) -> LayerSummary | None:
        """The summary stored in `raw`, or None when it is unreadable or from another version."""
        try:
            data = json.loads(raw)
            if data.get("version") != _VERSION:
                return None
            others, whiteouts, opaque, implied = (set(map(str, data[key])) for key in _SETS)
            return cls(
                {k: (int(m), int(u), int(g)) for k, (m, u, g) in data["dirs"].items()},
                {k: str(v) for k, v in data["links"].items()},
                others, whiteouts, opaque, implied, int(data["size"]),
            )  # fmt: skip
        except (ValueError, KeyError, TypeError, AttributeError):
            return None


def _clean(name: str) -> str:
    return posixpath.normpath("/" + name).lstrip("/")


def summarize(members: Iterable[tarfile.TarInfo]) -> LayerSummary:
    """The summary of a layer from its tar headers, in archive order."""
    summary = LayerSummary()
    named: set[str] = set()
    for member in members:
        summary.size += member.size
        path = _clean(member.name)
        if not path:
            continue  # the root's own entry: a layer cannot change the root directory's metadata
        parent, base = posixpath.split(path)
        named.add(path)
        if base == OPAQUE:
            summary.opaque.add(parent)
            continue
        if base.startswith(WHITEOUT):
            summary.whiteouts.add(posixpath.join(parent, base[len(WHITEOUT) :]))
            continue
        # A later entry for the same path wins, as it does when the layer is applied.
        summary.dirs.pop(path, None)
        summary.links.pop(path, None)
        summary.others.discard(path)
        if member.isdir():
            summary.dirs[path] = (member.mode & 0o7777, member.uid, member.gid)
        elif member.issym():
            summary.links[path] = member.linkname
        else:
            summary.others.add(path)
    summary.implied = _implied(named, summary.dirs)
    return summary


def _implied(named: set[str], dirs: dict[str, tuple[int, int, int]]) -> set[str]:
    """Directories that entries of the layer sit in but that have no entry of their own."""
    implied: set[str] = set()
    for path in named:
        parent = posixpath.dirname(path)
        while parent and parent not in dirs and parent not in implied:
            implied.add(parent)
            parent = posixpath.dirname(parent)
    return implied


class SummaryStore:
    """Layer summaries by digest: in memory for this build, on disk in the cache dir across builds."""

    def __init__(self, directory: str | None, use_disk: bool = True, emit: ProgressCallback = ignore_progress) -> None:
        self._memory: dict[str, LayerSummary] = {}
        self._directory = directory
        self._use_disk = use_disk
        self._emit = emit

    def _path(self, digest: str) -> str:
        return summary_path(digest, self._directory)

    def get(self, layer: Descriptor, opener: LayerOpener) -> LayerSummary:
        found = self._memory.get(layer.digest)
        if found is None and self._use_disk:
            found = cached_summary(layer.digest, self._directory)
        if found is None:
            self._emit(ProgressEvent("info", layer.digest, message="base layer: reading its tar headers, once"))
            found = read_layer(layer, opener)
            with contextlib.suppress(OSError):  # a read-only or full cache must not fail the build
                atomic_write_bytes(self._path(layer.digest), found.to_json(), durable=False)  # a cache
        self._memory[layer.digest] = found
        return found


def summary_path(digest: str, cache_dir: str | None) -> str:
    """Where the summary of the layer `digest` is cached."""
    from ocipush.cachedir import cache_subdir

    return os.path.join(cache_subdir("base-index", cache_dir), digest.replace(":", "-") + ".json")


def cached_summary(digest: str, cache_dir: str | None) -> LayerSummary | None:
    """The cached summary of the layer `digest` (written only once its bytes matched the digest), if any."""
    try:
        with open(summary_path(digest, cache_dir), "rb") as f:
            return LayerSummary.from_json(f.read())
    except OSError:
        return None


def read_layer(layer: Descriptor, opener: LayerOpener) -> LayerSummary:
    """One pass over a layer blob: its summary, once its bytes have matched the digest."""
    log.info("reading the headers of base layer %s", layer.digest)
    with opener(layer) as blob:
        # The summary is built as the headers stream by; it is returned only once the digest has matched.
        try:
            return summarize(layer_members(blob, layer.digest, layer.media_type))
        except UsageError as exc:  # damaged, or not a layer we can read: the base is the problem, not the input
            raise BuildError(f"base {exc}") from None


class BaseIndex:
    """Path lookups in the merged view of a base's layers; layers are summarised only as lookups need them."""

    def __init__(self, layers: list[Descriptor], opener: LayerOpener, store: SummaryStore) -> None:
        self._pending = list(reversed(layers))
        self._opener = opener
        self._store = store
        self._summaries: list[LayerSummary] = []

    def _top_down(self) -> Iterator[LayerSummary]:
        yield from self._summaries
        while self._pending:
            summary = self._store.get(self._pending[0], self._opener)
            self._pending.pop(0)
            self._summaries.append(summary)
            yield summary

    def lookup(self, path: str) -> Node | None:
        """The node at `path` ('usr/bin', no symlink followed), or None when the base has nothing there."""
        path = _clean(path)
        if not path:
            return IMPLIED_DIR
        ancestors = []
        parent = posixpath.dirname(path)
        while parent:
            ancestors.append(parent)
            parent = posixpath.dirname(parent)
        implied = False
        for summary in self._top_down():
            node = summary.node(path)
            if node is not None:
                # A higher layer that put entries beneath a path made it a directory whatever lies below.
                return node if node.kind == "dir" or not implied else IMPLIED_DIR
            implied = implied or path in summary.implied
            if summary.hides_below(path, ancestors):
                break
        return IMPLIED_DIR if implied else None


def layer_opener(image: BaseImage, registry: Callable[[], RegistrySession]) -> LayerOpener:
    """Opens the layer blobs of a `BaseImage`: from its layout, or streamed from its registry through the session
    `registry()` gives (one per build, so that a registry's token is fetched once)."""
    layout = image.layout
    if layout is not None:
        return lambda layer: layout.open_blob(layer.digest)
    reference = str(image.name)

    @contextlib.contextmanager
    def from_registry(layer: Descriptor) -> Iterator[Reader]:
        from ocipush.reference import parse_reference

        client = registry().client(parse_reference(reference))
        # paced: a trickling registry ends at the deadline; closed: a layer read in part leaves no deadline behind
        with client.open_blob(layer.digest) as response, contextlib.closing(client.blob_chunks(response)) as chunks:
            yield ChunkReader(chunks)

    return from_registry
