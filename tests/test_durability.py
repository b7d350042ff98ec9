"""What is fsynced: index.json of a layout the user keeps; never a blob, nor anything of a new layout being staged,
a scratch layout or the cache (ocipush.layout's docstring says why)."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable
from pathlib import Path

import pytest
from transferhelpers import assert_one_line_error, make_image, options, run_cli

from ocipush import api
from ocipush.build.spec import BuildSpec, LayerSpec
from ocipush.layout import OCILayout
from ocipush.localregistry import LocalRegistry


@pytest.fixture
def fsynced(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The paths of the files fsynced from now on, as the kernel names their descriptors."""
    paths: list[str] = []
    real: Callable[[int], None] = os.fsync

    def recording(fd: int) -> None:
        paths.append(os.readlink(f"/proc/self/fd/{fd}"))
        real(fd)

    monkeypatch.setattr(os, "fsync", recording)
    return paths


def _outside_blobs(paths: list[str], layout: Path) -> bool:
    return all(os.path.dirname(p) == str(layout) for p in paths)


def test_a_new_pull_fsyncs_nothing_and_a_pull_into_a_kept_layout_only_its_index(
    registry: LocalRegistry, tmp_path: Path, fsynced: list[str]
) -> None:
    make_image(tmp_path / "img", big=3 << 20)
    make_image(tmp_path / "other", seed=2)
    api.push(f"oci:{tmp_path / 'img'}:v1", f"{registry.host}/durable:v1", options=options(tmp_path))
    fsynced.clear()
    api.pull(f"{registry.host}/durable:v1", f"oci:{tmp_path / 'new'}:v1", options=options(tmp_path))
    assert fsynced == []  # staged beside its name, and renamed into place whole
    assert OCILayout(str(tmp_path / "new")).resolve("v1").digest == api.resolve_digest(
        f"{registry.host}/durable:v1", options=options(tmp_path)
    )
    # a layout the user keeps, holding another tag: its index.json is fsynced, the blobs are not
    kept = tmp_path / "other"
    api.pull(f"{registry.host}/durable:v1", f"oci:{kept}:pulled", options=options(tmp_path))
    assert fsynced and _outside_blobs(fsynced, kept), fsynced
    assert {d.annotations["org.opencontainers.image.ref.name"] for d in OCILayout(str(kept)).read_index().manifests
            if d.annotations} == {"v1", "pulled"}  # fmt: skip
    # a blob a power cut left short reads as missing: the next pull writes it whole again
    layer = OCILayout(str(kept)).read_manifest(OCILayout(str(kept)).resolve("pulled")).manifest.layers[0]
    path = Path(OCILayout(str(kept)).blob_path(layer.digest))
    path.write_bytes(path.read_bytes()[: layer.size // 2])
    api.pull(f"{registry.host}/durable:v1", f"oci:{kept}:pulled", options=options(tmp_path))
    assert path.stat().st_size == layer.size and hashlib.sha256(path.read_bytes()).hexdigest() == layer.digest[7:]


def test_a_build_fsyncs_only_the_index_of_the_layout_it_writes_and_build_push_nothing(
    registry: LocalRegistry, tmp_path: Path, fsynced: list[str]
) -> None:
    (tmp_path / "app").mkdir()
    (tmp_path / "app" / "data.bin").write_bytes(os.urandom(2 << 20))
    spec = BuildSpec(base="scratch", layers=[LayerSpec(source=str(tmp_path / "app"), dest="/app")])
    api.build_to(spec, f"oci:{tmp_path / 'out'}:v1", options=options(tmp_path))
    assert fsynced and _outside_blobs(fsynced, tmp_path / "out"), fsynced
    fsynced.clear()
    api.build_push(spec, f"{registry.host}/built:v1", options=options(tmp_path))  # through the cache's layout
    assert fsynced == []


def test_a_push_from_a_layout_with_a_blob_cut_short_stops_in_one_line(registry: LocalRegistry, tmp_path: Path) -> None:
    layout, descriptor = make_image(tmp_path / "img", big=1 << 20)
    layer = layout.read_manifest(descriptor).manifest.layers[0]
    path = Path(layout.blob_path(layer.digest))
    path.write_bytes(path.read_bytes()[: layer.size // 2])  # what a power cut can leave of a blob never fsynced
    done = run_cli("push", "--quiet", f"oci:{tmp_path / 'img'}:v1", f"{registry.host}/short:v1",
                   env={"OCIPUSH_CACHE_DIR": str(tmp_path / "cache")})  # fmt: skip
    assert_one_line_error(done, "shorter than its descriptor")
    assert done.returncode == 9  # a bad local layout
