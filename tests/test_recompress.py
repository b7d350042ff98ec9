"""Layer compression on push and copy (item 20 of issue 9), against the real registry and skopeo: a `docker save`
tarball's plain layers are gzip-compressed, compressed layers keep their digests unless a compression is asked for."""

from __future__ import annotations

import gzip
import hashlib
import json
import subprocess
from pathlib import Path

import imagehelpers as ih
import pytest
import zstandard
from transferhelpers import make_image, options, run_cli

from ocipush import api
from ocipush import mediatypes as mt
from ocipush.errors import UsageError
from ocipush.layout import OCILayout
from ocipush.localregistry import LocalRegistry

TEXT = "".join(f"line {i} of a very compressible file\n" for i in range(2000))


def _skopeo(*args: str) -> None:
    subprocess.run(["skopeo", *args], check=True, capture_output=True, timeout=300)


def _served(registry: LocalRegistry, tmp_path: Path, ref: str) -> tuple[dict[str, object], OCILayout]:
    """The manifest a registry serves for `ref`, and a layout skopeo pulled it into (digests preserved)."""
    out = tmp_path / f"sk-{len(list(tmp_path.glob('sk-*')))}"
    _skopeo("copy", "--src-tls-verify=false", "--preserve-digests", f"docker://{ref}", f"oci:{out}:x")
    layout = OCILayout(str(out))
    return json.loads(layout.read_blob(layout.resolve("x").digest)), layout


def _plain_layers_match_diff_ids(manifest: dict[str, object], layout: OCILayout) -> None:
    config = json.loads(layout.read_blob(manifest["config"]["digest"]))  # type: ignore[index]
    for layer, diff_id in zip(manifest["layers"], config["rootfs"]["diff_ids"], strict=True):  # type: ignore[call-overload]
        data = Path(layout.blob_path(layer["digest"])).read_bytes()
        kind = mt.layer_compression(layer["mediaType"])
        plain = gzip.decompress(data) if kind == "gzip" else zstandard.ZstdDecompressor().decompressobj().decompress(
            data) if kind == "zstd" else data  # fmt: skip
        assert "sha256:" + hashlib.sha256(plain).hexdigest() == diff_id


def test_a_docker_save_tarball_is_pushed_gzip_compressed(registry: LocalRegistry, tmp_path: Path) -> None:
    layout = OCILayout(str(tmp_path / "src"), create=True)
    ih.build_image(layout, [([ih.file("etc/big.txt", TEXT)], "none"), ([ih.file("app", "x\n")], "none")], tag="v1")
    archive = tmp_path / "image.tar"
    _skopeo("copy", f"oci:{layout.path}:v1", f"docker-archive:{archive}:app:v1")  # plain layers, as docker save
    pushed = run_cli("push", str(archive), f"{registry.host}/app:v1", "--cache-dir", str(tmp_path / "cache"))
    assert pushed.returncode == 0, pushed.stderr
    manifest, pulled = _served(registry, tmp_path, f"{registry.host}/app:v1")
    layers = manifest["layers"]  # type: ignore[index]
    assert [layer["mediaType"] for layer in layers] == [mt.OCI_LAYER_GZIP] * 2
    plain_size = len(ih.layer_tar([ih.file("etc/big.txt", TEXT)]))
    assert layers[0]["size"] < plain_size / 5
    _plain_layers_match_diff_ids(manifest, pulled)
    # --compression none keeps them as the archive has them
    kept = run_cli("push", str(archive), f"{registry.host}/app:plain", "--compression", "none",
                   "--cache-dir", str(tmp_path / "cache"))  # fmt: skip
    assert kept.returncode == 0, kept.stderr
    plain_manifest, _ = _served(registry, tmp_path, f"{registry.host}/app:plain")
    assert [layer["mediaType"] for layer in plain_manifest["layers"]] == [mt.OCI_LAYER] * 2  # type: ignore[index]


def test_compressed_layers_keep_their_digests_unless_asked(registry: LocalRegistry, tmp_path: Path) -> None:
    layout = OCILayout(str(tmp_path / "src"), create=True)
    descriptor = ih.build_image(layout, [([ih.file("a", TEXT)], "zstd"), ([ih.file("b", TEXT + "b")], "gzip")],
                                tag="v1")  # fmt: skip
    kept = api.push(f"oci:{layout.path}:v1", f"{registry.host}/app:v1", options=options(tmp_path))
    assert kept.digest == descriptor.digest
    converted = api.push(f"oci:{layout.path}:v1", f"{registry.host}/app:gz", compression="gzip",
                         options=options(tmp_path))  # fmt: skip
    assert converted.digest != descriptor.digest
    manifest, pulled = _served(registry, tmp_path, f"{registry.host}/app:gz")
    original = json.loads(layout.read_blob(descriptor.digest))
    assert manifest["config"] == original["config"]  # same config: the diff_ids still hold
    assert [layer["mediaType"] for layer in manifest["layers"]] == [mt.OCI_LAYER_GZIP] * 2  # type: ignore[index]
    assert manifest["layers"][1] == original["layers"][1]  # type: ignore[index] # already gzip: untouched
    _plain_layers_match_diff_ids(manifest, pulled)


def test_copy_converts_an_index_to_zstd(registry: LocalRegistry, tmp_path: Path) -> None:
    layout = OCILayout(str(tmp_path / "src"), create=True)
    amd = ih.build_image(layout, [([ih.file("arch", "amd64" * 100)], "gzip")], tag=None, arch="amd64")
    arm = ih.build_image(layout, [([ih.file("arch", "arm64" * 100)], "gzip")], tag=None, arch="arm64")
    ih.build_index(layout, [amd, arm], "multi")
    api.push(f"oci:{layout.path}:multi", f"{registry.host}/multi:1", options=options(tmp_path))
    done = run_cli("copy", f"{registry.host}/multi:1", f"{registry.host}/multi:zstd", "--compression", "zstd",
                   "--cache-dir", str(tmp_path / "cache"))  # fmt: skip
    assert done.returncode == 0, done.stderr
    out = tmp_path / "all"
    _skopeo("copy", "--all", "--src-tls-verify=false", "--preserve-digests", f"docker://{registry.host}/multi:zstd",
            f"oci:{out}:x")  # fmt: skip
    pulled = OCILayout(str(out))
    index = json.loads(pulled.read_blob(pulled.resolve("x").digest))
    assert len(index["manifests"]) == 2
    for child in index["manifests"]:
        manifest = json.loads(pulled.read_blob(child["digest"]))
        assert [layer["mediaType"] for layer in manifest["layers"]] == [mt.OCI_LAYER_ZSTD]
        _plain_layers_match_diff_ids(manifest, pulled)


def test_bad_compression_values(registry: LocalRegistry, tmp_path: Path) -> None:
    source, _ = make_image(tmp_path / "src")
    with pytest.raises(UsageError, match="compression: expected"):
        api.push(f"oci:{source.path}:v1", f"{registry.host}/x:v1", compression="brotli", options=options(tmp_path))  # type: ignore[arg-type]
    docker = tmp_path / "docker"
    _skopeo("copy", "--format", "v2s2", f"oci:{source.path}:v1", f"oci:{docker}:v1")
    api.push(f"oci:{docker}:v1", f"{registry.host}/d:v1", options=options(tmp_path))
    with pytest.raises(UsageError, match=r"Docker v2\.2 manifest cannot name zstd"):
        api.copy(f"{registry.host}/d:v1", f"{registry.host}/d:zstd", compression="zstd", options=options(tmp_path))
