"""Small images built into an OCI layout for tests: layer tars from entry specs, configs, manifests."""

from __future__ import annotations

import gzip
import io
import tarfile
from dataclasses import dataclass

import zstandard

from ocipush import mediatypes as mt
from ocipush.digest import sha256_of
from ocipush.layout import OCILayout
from ocipush.models import Descriptor, ImageConfig, Index, Manifest, ManifestDocument, Platform, RootFS

MTIME = 1_700_000_000
LAYER_TYPES = {"gzip": mt.OCI_LAYER_GZIP, "zstd": mt.OCI_LAYER_ZSTD, "none": mt.OCI_LAYER}


@dataclass
class E:
    """One tar entry. kind: file, dir, symlink, hardlink, fifo, chr."""

    name: str
    kind: str = "file"
    data: bytes = b""
    mode: int | None = None
    target: str = ""
    mtime: int = MTIME
    uid: int = 0
    gid: int = 0


def file(name: str, data: bytes | str = b"", mode: int = 0o644) -> E:
    return E(name, "file", data.encode() if isinstance(data, str) else data, mode)


def dir(name: str, mode: int = 0o755, uid: int = 0, gid: int = 0) -> E:
    return E(name, "dir", mode=mode, uid=uid, gid=gid)


def symlink(name: str, target: str) -> E:
    return E(name, "symlink", target=target, mode=0o777)


def hardlink(name: str, target: str) -> E:
    return E(name, "hardlink", target=target, mode=0o644)


def whiteout(name: str) -> E:
    return file(name)


def layer_tar(entries: list[E]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for e in entries:
            info = tarfile.TarInfo(e.name)
            info.mtime = e.mtime
            info.uid, info.gid = e.uid, e.gid
            if e.kind == "file":
                info.size = len(e.data)
                info.mode = 0o644 if e.mode is None else e.mode
                tar.addfile(info, io.BytesIO(e.data))
                continue
            info.type = {
                "dir": tarfile.DIRTYPE,
                "symlink": tarfile.SYMTYPE,
                "hardlink": tarfile.LNKTYPE,
                "fifo": tarfile.FIFOTYPE,
                "chr": tarfile.CHRTYPE,
            }[e.kind]
            info.mode = 0o755 if e.mode is None else e.mode
            info.linkname = e.target
            if e.kind == "chr":
                info.devmajor, info.devminor = 1, 3
            tar.addfile(info)
    return buf.getvalue()


def compress(data: bytes, compression: str) -> bytes:
    if compression == "gzip":
        return gzip.compress(data, mtime=0)
    if compression == "zstd":
        return zstandard.ZstdCompressor().compress(data)
    return data


def add_layer(layout: OCILayout, tar_bytes: bytes, compression: str = "gzip") -> tuple[Descriptor, str]:
    """Store one layer; returns its descriptor and diff_id."""
    blob = compress(tar_bytes, compression)
    digest = layout.write_blob(blob)
    return Descriptor(media_type=LAYER_TYPES[compression], digest=digest, size=len(blob)), sha256_of(tar_bytes)


def build_image(
    layout: OCILayout,
    layers: list[tuple[list[E], str]],
    tag: str | None = "latest",
    arch: str = "amd64",
    env: str = "A=1",
    created: str = "2024-01-01T00:00:00Z",
) -> Descriptor:
    """An image from (entries, compression) pairs, tagged `tag` in the layout; returns its index entry."""
    descriptors, diff_ids = [], []
    for entries, compression in layers:
        desc, diff_id = add_layer(layout, layer_tar(entries), compression)
        descriptors.append(desc)
        diff_ids.append(diff_id)
    config = ImageConfig.model_validate(
        {
            "architecture": arch,
            "os": "linux",
            "created": created,
            "config": {"Env": [env], "Cmd": ["/bin/sh"]},
            "rootfs": RootFS(diff_ids=diff_ids).to_json_dict(),
            "history": [{"created_by": f"layer {i}"} for i in range(len(diff_ids))],
        }
    )
    raw = config.to_json_bytes()
    config_desc = Descriptor(media_type=mt.OCI_CONFIG, digest=layout.write_blob(raw), size=len(raw))
    doc = ManifestDocument.from_model(Manifest(config=config_desc, layers=descriptors))
    return layout.add_manifest(doc, [tag] if tag else [], platform=Platform(architecture=arch, os="linux"))


def build_index(layout: OCILayout, children: list[Descriptor], tag: str) -> Descriptor:
    entries = [
        Descriptor(media_type=c.media_type, digest=c.digest, size=c.size, platform=c.platform)
        for c in children
    ]
    return layout.add_manifest(ManifestDocument.from_model(Index(manifests=entries)), [tag])
