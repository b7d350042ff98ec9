"""oci-archive (skopeo's `oci-archive:FILE[:tag]`): a tar of an OCI image layout (`oci-layout`, `index.json`,
`blobs/<alg>/<hex>`).

Reading copies the archive's layout into a scratch layout in one pass over the tar: every blob is verified against
the digest its name gives before it is stored, and nothing but those three kinds of entries is taken (no paths are
extracted, so no entry can write outside the scratch layout). Writing tars a finished layout; the file appears
only once complete."""

from __future__ import annotations

import json
import os
import tarfile
from typing import BinaryIO, cast

from ocipush.digest import is_digest
from ocipush.errors import LayoutError, UsageError
from ocipush.extract import corrupt_stream_errors
from ocipush.fsutil import atomic_write_bytes, atomic_writer
from ocipush.layout import OCILayout
from ocipush.models import Index

MAX_INDEX_BYTES = 4 << 20


def read_oci_archive(path: str, into: OCILayout) -> None:
    """Store the layout inside the tar at `path` in `into` (an empty scratch layout): blobs verified, then its
    index.json. Raises LayoutError when the file is not an OCI archive."""
    found_marker = found_index = False
    damaged: tuple[type[Exception], ...] = (tarfile.TarError, *corrupt_stream_errors())
    try:
        with tarfile.open(path, "r|*") as tar:  # one pass, in the archive's order: big archives are never re-read
            for member in tar:
                name = os.path.normpath(member.name.lstrip("/")) if member.name else ""
                if not member.isfile():
                    continue
                stream = tar.extractfile(member)
                if stream is None:
                    continue
                if name == "oci-layout":
                    found_marker = _is_layout_marker(stream.read(4096))
                elif name == "index.json":
                    if member.size > MAX_INDEX_BYTES:
                        raise LayoutError(f"{path}: index.json is larger than {MAX_INDEX_BYTES} bytes")
                    raw = stream.read()
                    try:
                        Index.model_validate_json(raw)
                    except ValueError:
                        raise LayoutError(f"{path}: index.json is not a valid image index") from None
                    atomic_write_bytes(os.path.join(into.path, "index.json"), raw, durable=into.durable)
                    found_index = True
                elif name.startswith("blobs/") and name.count("/") == 2:
                    _, algorithm, hexdigest = name.split("/")
                    digest = f"{algorithm}:{hexdigest}"
                    if is_digest(digest) and not into.has_blob(digest, member.size):
                        into.write_blob_stream(cast(BinaryIO, stream), digest, member.size)
    except FileNotFoundError:
        raise UsageError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise LayoutError(f"{path} is a directory, not an oci-archive") from None
    except damaged as exc:
        reason = (str(exc).splitlines() or [type(exc).__name__])[0]
        raise LayoutError(f"{path} is not a readable oci-archive: {reason}") from None
    if not (found_marker and found_index):
        missing = "oci-layout" if not found_marker else "index.json"
        raise LayoutError(f"{path} is not an oci-archive (a tar of an OCI image layout): it has no {missing}")


def _is_layout_marker(raw: bytes) -> bool:
    try:
        data = json.loads(raw)
    except ValueError:
        return False
    return isinstance(data, dict) and isinstance(data.get("imageLayoutVersion"), str)


def write_oci_archive(layout: OCILayout, path: str) -> None:
    """Tar `layout`'s `oci-layout`, `index.json` and blobs into `path`, reproducibly (sorted, mtime 0, root)."""
    names = ["oci-layout", "index.json"]
    blobs_dir = os.path.join(layout.path, "blobs")
    for algorithm in sorted(os.listdir(blobs_dir)):
        for hexdigest in sorted(os.listdir(os.path.join(blobs_dir, algorithm))):
            if is_digest(f"{algorithm}:{hexdigest}"):
                names.append(f"blobs/{algorithm}/{hexdigest}")
    with atomic_writer(path) as out, tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for directory in ["blobs", *sorted({os.path.dirname(n) for n in names if n.startswith("blobs/")})]:
            tar.addfile(_info(directory, tarfile.DIRTYPE, 0o755))
        for name in names:
            source = os.path.join(layout.path, name)
            info = _info(name, tarfile.REGTYPE, 0o644)
            info.size = os.stat(source).st_size
            with open(source, "rb") as f:
                tar.addfile(info, f)


def _info(name: str, kind: bytes, mode: int) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type, info.mode, info.mtime = kind, mode, 0
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    return info
