"""One blob or one file of an image, streamed: `get_blob` copies a blob (verified) to a writer; `cat` reads the
layers top-down and stops at the layer that has the file, following symbolic links inside the image."""

from __future__ import annotations

import posixpath
import tarfile
from collections.abc import Callable
from typing import IO, BinaryIO

from ocipush.arguments import checked
from ocipush.digest import validate_digest
from ocipush.errors import NotFoundError, UsageError
from ocipush.extract import COPY_SIZE, OPAQUE, WHITEOUT
from ocipush.models import Descriptor, Platform, parse_platform
from ocipush.ops.layers import BlobReader, member_path, open_layer
from ocipush.ops.source import Image, open_image
from ocipush.reference import parse_reference
from ocipush.registry.options import RegistryOptions
from ocipush.registry.session import RegistrySession
from ocipush.transfer import RegistrySource

MAX_LINKS = 40


@checked
def get_blob(reference: str, digest: str, out: BinaryIO, *, options: RegistryOptions | None = None) -> int:
    """Copy blob `digest` of the repository `reference` names into `out`; raises if it does not match its digest
    (`out` then holds unverified bytes: write to a temporary file and keep it only on success). Returns the size."""
    validate_digest(digest)
    with RegistrySession(options) as session:
        source = RegistrySource(session, parse_reference(reference))
        size = source.client.blob_size(digest)
        if size is None:
            raise NotFoundError(f"blob {digest} is not in {source.name}")
        reader = BlobReader(source.blob(Descriptor(media_type="application/octet-stream", digest=digest, size=size)))
        try:
            while data := reader.read(COPY_SIZE):
                out.write(data)
            reader.verify(f"blob {digest} from {source.name}")
        finally:
            reader.close()
        return reader.size


@checked
def cat(
    reference: str,
    path: str,
    out: BinaryIO,
    *,
    platform: Platform | str | None = None,
    options: RegistryOptions | None = None,
) -> int:
    """Copy the regular file at `path` in the image's filesystem into `out`; returns its size. Symbolic links (the
    file's or a parent directory's) are followed inside the image; a directory or a missing path is an error."""
    wanted = parse_platform(platform) if isinstance(platform, str) else platform
    with RegistrySession(options) as session:
        image = open_image(session, parse_reference(reference), wanted)
        current = _normal(path)
        for _ in range(MAX_LINKS):
            found = _find(image, current, out)
            if found is None:
                return _resolved(image, current, out)
            if isinstance(found, int):
                return found
            current = found
        raise UsageError(f"{path}: too many levels of symbolic links in {image.source.name}")


def _normal(path: str) -> str:
    normal = posixpath.normpath("/" + path).lstrip("/")
    if not normal:
        raise UsageError(f"{path} is the root directory, not a file")
    return normal


def _find(image: Image, path: str, out: BinaryIO) -> int | str | None:
    """The file's size once copied into `out`, the path to look up instead (a symbolic link was met), or None when
    no layer has the path by name but a layer wrote a file of the same name in another directory, which may be
    this path reached through a lower layer's symbolic link (`lib/x` over `lib -> usr/lib`): the whole image
    answers then. A file found by name is taken from the first layer that has it, even if a higher layer wrote
    it through such a link (rare; `export` has the exact filesystem)."""
    ancestors = {"/".join(path.split("/")[:i]) for i in range(1, path.count("/") + 1)}
    basename = path.rpartition("/")[2]
    aliased = False  # seen in a higher layer: an entry that may be this path under another name
    for layer in reversed(image.manifest.layers):
        redirect: str | None = None
        gone = maybe = False
        with open_layer(image.source, layer) as (tar, reader):
            for member in tar:
                name = member_path(member)
                parent, _, base = name.rpartition("/")
                if base == basename and name != path and (member.isreg() or member.islnk()):
                    maybe = True
                if base.startswith(WHITEOUT):
                    # Hides the lower layers' copy of the path when it names the path or a directory above it.
                    victim = parent if base == OPAQUE else f"{parent}/{base[len(WHITEOUT) :]}".lstrip("/")
                    inside = victim == "" if base == OPAQUE else victim == path
                    gone = gone or inside or path.startswith(victim + "/")
                    continue
                if name == path:
                    if member.issym():
                        return _normal(posixpath.join(posixpath.dirname("/" + path), member.linkname))
                    if member.islnk():
                        return _linked(image, layer, _normal(member.linkname), out)
                    if not member.isreg():
                        raise UsageError(f"{path} is not a regular file in {image.source.name}")
                    size = _copy(tar.extractfile(member), out)
                    reader.verify(f"layer {layer.digest}")
                    return size
                if name in ancestors and member.issym() and redirect is None:
                    # A parent directory is a link (usr-merged /bin -> usr/bin): look the path up through it.
                    target = posixpath.join(posixpath.dirname("/" + name), member.linkname)
                    redirect = _normal(target + path[len(name) :])
            reader.verify(f"layer {layer.digest}")
        if redirect is not None:
            return redirect
        aliased = aliased or maybe
        if gone:
            break
    if aliased:
        return None
    raise NotFoundError(f"{path} is not in the filesystem of {image.source.name}")


def _resolved(image: Image, path: str, out: BinaryIO) -> int:
    """`path` found as `flatten` finds it: every layer's headers read, links inside the image followed, then the
    entry that supplies the file copied from its layer."""
    from ocipush.ops.flatten import layer_tree

    layers = image.manifest.layers
    tree = layer_tree(image.source, layers)
    current = path
    for _ in range(MAX_LINKS):
        found = tree.lookup(current)
        if found is None:
            raise NotFoundError(f"{path} is not in the filesystem of {image.source.name}")
        real, node = found
        if node.symlink is not None:
            current = _normal(posixpath.join(posixpath.dirname("/" + real), node.symlink))
            continue
        key = node.hardlink[1] if node.hardlink is not None else node.key
        if node.is_dir or key is None:
            raise UsageError(f"{path} is not a regular file in {image.source.name}")
        index, entry = key
        # The lambda runs inside this call, before the loop goes on (what B023 warns of cannot happen).
        size = _copy_entry(image, layers[index], lambda position, _: position == entry, out)  # noqa: B023
        if size is None:
            raise NotFoundError(f"{path}: entry {entry} of layer {layers[index].digest[:19]} is gone")
        return size
    raise UsageError(f"{path}: too many levels of symbolic links in {image.source.name}")


def _linked(image: Image, layer: Descriptor, target: str, out: BinaryIO) -> int:
    """The file a hard link in `layer` shares: the entry of that name earlier in the same layer (a later layer's
    file of that name is another file, so the path is not looked up again from the top)."""
    size = _copy_entry(image, layer, lambda _, member: member.isreg() and member_path(member) == target, out)
    if size is None:
        raise UsageError(f"a hard link in layer {layer.digest[:19]} names {target}, which that layer has no file at")
    return size


def _copy_entry(
    image: Image, layer: Descriptor, wanted: Callable[[int, tarfile.TarInfo], bool], out: BinaryIO
) -> int | None:
    """Copy the first entry of `layer` that `wanted(position, member)` picks into `out` (its size; None if none)."""
    with open_layer(image.source, layer) as (tar, reader):
        for position, member in enumerate(tar):
            if wanted(position, member):
                size = _copy(tar.extractfile(member), out)
                reader.verify(f"layer {layer.digest}")
                return size
    return None


def _copy(source: IO[bytes] | None, out: BinaryIO) -> int:
    size = 0
    while source is not None and (data := source.read(COPY_SIZE)):
        out.write(data)
        size += len(data)
    return size
