"""Deterministic benchmark data: OCI layouts whose layers are seeded random, incompressible bytes.

A layer is a valid gzip stream made of stored (level 0) deflate blocks around random bytes, so tools that sniff
the compression see gzip and copy it as is, and nothing can compress it further. The same seed and size always
give the same bytes, hence the same digests.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import zlib
from dataclasses import dataclass
from pathlib import Path

MiB = 1 << 20
LAYER_TYPE = "application/vnd.oci.image.layer.v1.tar+gzip"
CONFIG_TYPE = "application/vnd.oci.image.config.v1+json"
MANIFEST_TYPE = "application/vnd.oci.image.manifest.v1+json"


@dataclass(frozen=True)
class Blob:
    digest: str
    size: int
    path: Path

    @property
    def hex(self) -> str:
        return self.digest.split(":", 1)[1]


@dataclass(frozen=True)
class Image:
    """An OCI layout `path` holding one image tagged `tag`."""

    path: Path
    tag: str
    layers: list[Blob]
    config: Blob
    manifest: Blob

    @property
    def oci(self) -> str:
        return f"oci:{self.path}:{self.tag}"

    @property
    def layer_bytes(self) -> int:
        return sum(layer.size for layer in self.layers)

    @property
    def blob_count(self) -> int:
        return len(self.layers) + 1


def _write_blob(blobs: Path, data: bytes) -> Blob:
    digest = hashlib.sha256(data).hexdigest()
    path = blobs / digest
    path.write_bytes(data)
    return Blob(f"sha256:{digest}", len(data), path)


def _random_layer(blobs: Path, size: int, seed: int) -> Blob:
    """A gzip stream of about `size` bytes (random payload in stored blocks), written and hashed in one pass."""
    rng = random.Random(seed)
    payload = size  # stored blocks add 5 bytes per 64 KiB and gzip 18 bytes: the blob is a hair larger
    tmp = blobs / f".tmp-{seed}"
    sha = hashlib.sha256()
    total = 0
    comp = zlib.compressobj(level=0, wbits=31)
    with tmp.open("wb") as out:
        left = payload
        while left > 0:
            piece = comp.compress(rng.randbytes(min(MiB, left)))
            left -= min(MiB, left)
            sha.update(piece)
            out.write(piece)
            total += len(piece)
        tail = comp.flush()
        sha.update(tail)
        out.write(tail)
        total += len(tail)
    final = blobs / sha.hexdigest()
    tmp.rename(final)
    return Blob(f"sha256:{sha.hexdigest()}", total, final)


def _descriptor(media_type: str, blob: Blob) -> dict[str, object]:
    return {"mediaType": media_type, "digest": blob.digest, "size": blob.size}


def random_image(path: Path, layer_sizes: list[int], seed: int, tag: str = "latest") -> Image:
    """Write (or reuse, when already complete) an OCI layout with random layers of the given sizes."""
    stamp = path / ".bench-image.json"
    if stamp.exists():
        saved = json.loads(stamp.read_text())
        if saved["sizes"] == layer_sizes and saved["seed"] == seed:
            return _load(path, saved)
    if path.exists():
        import shutil

        shutil.rmtree(path)
    blobs = path / "blobs" / "sha256"
    blobs.mkdir(parents=True)
    (path / "oci-layout").write_text('{"imageLayoutVersion":"1.0.0"}')
    layers = [_random_layer(blobs, size, seed * 1000 + i) for i, size in enumerate(layer_sizes)]
    # Random layers have no meaningful diff_ids; the config just has to be a valid image config.
    config = {
        "architecture": "amd64",
        "os": "linux",
        "rootfs": {"type": "layers", "diff_ids": [layer.digest for layer in layers]},
        "config": {},
    }
    config_blob = _write_blob(blobs, json.dumps(config, sort_keys=True, separators=(",", ":")).encode())
    manifest = {
        "schemaVersion": 2,
        "mediaType": MANIFEST_TYPE,
        "config": _descriptor(CONFIG_TYPE, config_blob),
        "layers": [_descriptor(LAYER_TYPE, layer) for layer in layers],
    }
    manifest_blob = _write_blob(blobs, json.dumps(manifest, sort_keys=True, separators=(",", ":")).encode())
    index = {
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [
            {**_descriptor(MANIFEST_TYPE, manifest_blob), "annotations": {"org.opencontainers.image.ref.name": tag}}
        ],
    }
    (path / "index.json").write_text(json.dumps(index))
    saved = {
        "sizes": layer_sizes,
        "seed": seed,
        "tag": tag,
        "layers": [layer.digest for layer in layers],
        "config": config_blob.digest,
        "manifest": manifest_blob.digest,
    }
    stamp.write_text(json.dumps(saved))
    return _load(path, saved)


def _load(path: Path, saved: dict[str, object]) -> Image:
    blobs = path / "blobs" / "sha256"

    def blob(digest: str) -> Blob:
        file = blobs / digest.split(":", 1)[1]
        return Blob(digest, file.stat().st_size, file)

    layers = saved["layers"]
    assert isinstance(layers, list)
    return Image(
        path, str(saved["tag"]), [blob(d) for d in layers], blob(str(saved["config"])), blob(str(saved["manifest"]))
    )


def verify_layout(path: Path) -> tuple[int, list[str]]:
    """Re-hash every blob of a layout: (blobs checked, names of those whose content does not match)."""
    bad = []
    checked = 0
    for file in sorted((path / "blobs" / "sha256").iterdir()):
        sha = hashlib.sha256()
        with file.open("rb") as handle:
            while piece := handle.read(4 * MiB):
                sha.update(piece)
        checked += 1
        if sha.hexdigest() != file.name:
            bad.append(file.name)
    return checked, bad


def tree_stats(root: Path) -> tuple[int, int]:
    """(files, bytes) of a directory tree, symlinks not followed."""
    files = size = 0
    for dirpath, _dirs, names in os.walk(root):
        for name in names:
            try:
                st = os.lstat(os.path.join(dirpath, name))
            except OSError:
                continue
            files += 1
            size += st.st_size
    return files, size
