"""Where a layer's DEST lands in its base image, and what the layer must say about the directories on the way.

Docker and buildah resolve a destination through the base's symlinks inside the image root (a copy to `/bin/x`
on a merged-/usr base lands in `/usr/bin/x`), leave the directories that exist as they are, and make the missing
ones 0755 (owned by `--chown`'s owner when one is given). A layer cannot simply leave out the directories that
exist: under overlayfs the runtime makes a parent the layer lacks as 0755 root, and that upper directory's
metadata wins. So each existing directory on the way gets an entry with the base's exact mode and owner."""

from __future__ import annotations

import posixpath
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ocipush.build.base import BaseImage
from ocipush.build.base_index import BaseIndex, Node, SummaryStore, layer_opener
from ocipush.build.spec import LayerSpec
from ocipush.build.tarstream import Placement, dest_parts, make_placement, new_placement
from ocipush.errors import BuildError
from ocipush.extract import MAX_SYMLINKS
from ocipush.progress import ProgressCallback, ignore_progress

if TYPE_CHECKING:
    from ocipush.registry.session import RegistrySession

Lookup = Callable[[str], Node | None]


def resolve(dest: str, lookup: Lookup) -> list[tuple[str, Node | None]]:
    """The components of `dest` once the base's symlinks are followed (inside the image root), each with what the
    base has there (None: nothing, the layer makes it)."""
    pending = list(reversed(dest_parts(dest)))
    resolved: list[tuple[str, Node | None]] = []
    followed = 0
    while pending:
        part = pending.pop()
        if part in ("", "."):
            continue
        if part == "..":  # only from a link target; the root is its own parent, as in a chroot
            if resolved:
                resolved.pop()
            continue
        missing = bool(resolved) and resolved[-1][1] is None
        path = posixpath.join(*(name for name, _ in resolved), part)
        node = None if missing else lookup(path)
        if node is not None and node.kind == "link":
            followed += 1
            if followed > MAX_SYMLINKS:
                raise BuildError(f"layer destination {dest}: too many levels of symbolic links in the base")
            if node.link.startswith("/"):
                resolved = []
            pending.extend(reversed(node.link.split("/")))
            continue
        if node is not None and node.kind != "dir":
            raise BuildError(f"layer destination {dest}: /{path} is not a directory in the base")
        resolved.append((part, node))
    return resolved


def place(dest: str, lookup: Lookup | None) -> Placement:
    """The placement of a layer at `dest` on a base (`lookup` None: on scratch)."""
    if lookup is None:
        return new_placement(dest)
    resolved = resolve(dest, lookup)
    return make_placement(
        [name for name, _ in resolved],
        [None if node is None else (node.mode, node.uid, node.gid) for _, node in resolved],
    )


class BasePlacer:
    """Places layers on the bases of one build: one index per base (by manifest digest), one summary store and
    one registry session, so that every layer of every platform consults each base layer at most once.

    A context manager: leaving it closes the registry session, if one was opened."""

    def __init__(
        self, fetch_options: Any, cache_dir: str | None, use_cache: bool, emit: ProgressCallback = ignore_progress
    ) -> None:
        self._fetch_options = fetch_options
        self._store = SummaryStore(cache_dir, use_cache, emit)
        self._indexes: dict[str, BaseIndex] = {}
        self._session: RegistrySession | None = None

    def __enter__(self) -> BasePlacer:
        return self

    def __exit__(self, *exc: object) -> None:
        if self._session is not None:
            self._session.close()
            self._session = None

    def _registry(self) -> RegistrySession:
        if self._session is None:
            from ocipush.registry.session import RegistrySession

            self._session = RegistrySession(self._fetch_options)
        return self._session

    def _index(self, image: BaseImage, digest: str) -> BaseIndex:
        index = self._indexes.get(digest)
        if index is None:
            index = BaseIndex(image.layers, layer_opener(image, self._registry), self._store)
            self._indexes[digest] = index
        return index

    def place(self, image: BaseImage, dest: str) -> Placement:
        """Where a layer at `dest` lands on `image`; a base is indexed only when a layer goes below the root."""
        if image.manifest is None or not dest_parts(dest):
            return new_placement(dest)
        return place(dest, self._index(image, image.manifest.digest).lookup)

    def lookup(self, image: BaseImage, path: str) -> Node | None:
        """What `image` has at `path` (no symlink followed); None on scratch or when the base has nothing there."""
        if image.manifest is None:
            return None
        return self._index(image, image.manifest.digest).lookup(path)

    def layers(self, layers: list[LayerSpec], images: list[BaseImage]) -> list[list[Placement | None]]:
        """For each platform's base, the placement of each layer; None for a tarball layer, taken as it is."""
        return [[None if layer.tar else self.place(image, layer.dest) for layer in layers] for image in images]
