"""Pulls that cannot complete never leave a target that looks complete (item 12 of issue 9): foreign layers and a
full disk, against the real registry, skopeo and a real (tmpfs) filesystem that fills up."""

from __future__ import annotations

import gzip
import json
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import imagehelpers as ih
import pytest
from transferhelpers import assert_one_line_error, make_image, options, random_bytes, run_cli

from ocipush import api
from ocipush import mediatypes as mt
from ocipush.digest import sha256_of
from ocipush.errors import NotFoundError
from ocipush.layout import OCILayout
from ocipush.localregistry import LocalRegistry


def _upload(registry: LocalRegistry, repo: str, data: bytes) -> str:
    digest = sha256_of(data)
    with httpx.Client(base_url=registry.url) as http:
        location = http.post(f"/v2/{repo}/blobs/uploads/").headers["location"]
        done = http.put(f"{location}{'&' if '?' in location else '?'}digest={digest}", content=data)
        assert done.status_code == 201, done.text
    return digest


def _image_with_foreign_layer(registry: LocalRegistry, repo: str, serve_it: bool) -> tuple[str, str]:
    """A Docker v2.2 image whose second layer is foreign (with urls); its bytes are in the registry or not."""
    plain = ih.layer_tar([ih.file("etc/base", "windows-like base\n")])
    foreign = gzip.compress(plain, mtime=0)
    own = gzip.compress(ih.layer_tar([ih.file("app", "app\n")]), mtime=0)
    config = json.dumps(
        {"architecture": "amd64", "os": "linux", "rootfs": {"type": "layers",
         "diff_ids": [sha256_of(plain), sha256_of(gzip.decompress(own))]}}
    ).encode()  # fmt: skip
    foreign_digest = _upload(registry, repo, foreign) if serve_it else sha256_of(foreign)
    manifest = {
        "schemaVersion": 2,
        "mediaType": mt.DOCKER_MANIFEST,
        "config": {"mediaType": mt.DOCKER_CONFIG, "digest": _upload(registry, repo, config), "size": len(config)},
        "layers": [
            {"mediaType": mt.DOCKER_FOREIGN_LAYER, "digest": foreign_digest, "size": len(foreign),
             "urls": ["https://foreign.example/layer.tar.gz"]},
            {"mediaType": mt.DOCKER_LAYER_GZIP, "digest": _upload(registry, repo, own), "size": len(own)},
        ],
    }  # fmt: skip
    raw = json.dumps(manifest).encode()
    put = httpx.put(f"{registry.url}/v2/{repo}/manifests/v1", content=raw, headers={"Content-Type": mt.DOCKER_MANIFEST})
    assert put.status_code == 201, put.text
    return sha256_of(raw), foreign_digest


@pytest.fixture
def registry(tmp_path: Path) -> Iterator[LocalRegistry]:
    """The plain registry, taking manifests whose foreign layers name https://foreign.example/ URLs."""
    with LocalRegistry(foreign_layer_urls=r"^https://foreign\.example/", log_path=tmp_path / "registry.log") as running:
        yield running


def test_a_served_foreign_layer_is_pulled_into_a_layout(registry: LocalRegistry, tmp_path: Path) -> None:
    digest, foreign = _image_with_foreign_layer(registry, "win", serve_it=True)
    pulled = api.pull(f"{registry.host}/win:v1", f"oci:{tmp_path / 'out'}:v1", options=options(tmp_path))
    assert pulled.digest == digest and pulled.blobs[foreign] == "downloaded"
    layout = OCILayout(str(tmp_path / "out"))
    assert layout.has_blob(foreign)
    # complete: the docker archive made from the same pull holds every layer, and skopeo reads it whole
    # (skopeo reads no Docker-typed manifest from a layout, so the archive is where it can judge)
    api.pull(f"{registry.host}/win:v1", f"docker-archive:{tmp_path / 'a.tar'}", options=options(tmp_path))
    subprocess.run(
        ["skopeo", "copy", f"docker-archive:{tmp_path / 'a.tar'}", f"oci:{tmp_path / 'sk'}:v1"],
        check=True, capture_output=True, timeout=120,
    )  # fmt: skip
    assert len(json.loads((tmp_path / "sk" / "index.json").read_text())["manifests"]) == 1


def test_an_unserved_foreign_layer_fails_the_pull_and_leaves_nothing(registry: LocalRegistry, tmp_path: Path) -> None:
    _, foreign = _image_with_foreign_layer(registry, "win", serve_it=False)
    with pytest.raises(NotFoundError, match=f"foreign layer {foreign} is not served"):
        api.pull(f"{registry.host}/win:v1", f"oci:{tmp_path / 'out'}", options=options(tmp_path))
    assert not (tmp_path / "out" / "oci-layout").exists()
    done = run_cli("pull", f"{registry.host}/win:v1", f"docker-archive:{tmp_path / 'a.tar'}",
                   "--cache-dir", str(tmp_path / "cache"))  # fmt: skip
    assert_one_line_error(done, "foreign layer", "foreign.example")
    assert done.returncode == 3 and not (tmp_path / "a.tar").exists()
    assert "work-" not in done.stderr  # the error names the registry, not a scratch directory that is gone


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 2 MiB tmpfs: a real file system that fills up."""
    mount = tmp_path / "small"
    mount.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(mount)], check=True)
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=True)


def test_a_full_disk_names_the_path_and_leaves_no_layout(
    registry: LocalRegistry, tmp_path: Path, small_disk: Path
) -> None:
    source, _ = make_image(tmp_path / "src", big=6 << 20)
    ref = f"{registry.host}/big:v1"
    api.push(f"oci:{source.path}:v1", ref, options=options(tmp_path))
    done = run_cli("pull", ref, f"oci:{small_disk / 'out'}", "--cache-dir", str(tmp_path / "cache"))
    assert_one_line_error(done, "No space left on device", str(small_disk))
    assert done.returncode == 1
    assert not (small_disk / "out" / "oci-layout").exists()
    assert random_bytes  # the layer is incompressible: it cannot fit
