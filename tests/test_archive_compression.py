"""A `docker save` tarball is pushed with compressed layers by default (item 20 of issue 9), against the real registry
and skopeo: plain layers are gzip-compressed, gzip ones keep their digests, `--compression keep` pushes them as
they are. (Explicit conversions of any source are tested in test_ops_convert.py.)"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import subprocess
import tarfile
from pathlib import Path

import imagehelpers as ih
from transferhelpers import options, run_cli

from ocipush import api
from ocipush import mediatypes as mt
from ocipush.layout import OCILayout
from ocipush.localregistry import LocalRegistry

TEXT = "".join(f"line {i} of a very compressible file\n" for i in range(2000))


def _served(registry: LocalRegistry, tmp_path: Path, ref: str) -> tuple[dict[str, object], OCILayout]:
    """The manifest a registry serves for `ref`, and a layout skopeo pulled it into (digests preserved)."""
    out = tmp_path / f"sk-{len(list(tmp_path.glob('sk-*')))}"
    subprocess.run(["skopeo", "copy", "--src-tls-verify=false", "--preserve-digests", f"docker://{ref}",
                    f"oci:{out}:x"], check=True, capture_output=True, timeout=300)  # fmt: skip
    layout = OCILayout(str(out))
    return json.loads(layout.read_blob(layout.resolve("x").digest)), layout


def _layers(manifest: dict[str, object]) -> list[dict[str, object]]:
    layers = manifest["layers"]
    assert isinstance(layers, list)
    return layers


def _layers_match_diff_ids(manifest: dict[str, object], layout: OCILayout) -> None:
    config_digest = manifest["config"]["digest"]  # type: ignore[index]
    diff_ids = json.loads(layout.read_blob(config_digest))["rootfs"]["diff_ids"]
    for layer, diff_id in zip(_layers(manifest), diff_ids, strict=True):
        data = Path(layout.blob_path(str(layer["digest"]))).read_bytes()
        plain = gzip.decompress(data) if str(layer["mediaType"]).endswith("gzip") else data
        assert "sha256:" + hashlib.sha256(plain).hexdigest() == diff_id


def test_a_docker_save_tarball_is_pushed_gzip_compressed(registry: LocalRegistry, tmp_path: Path) -> None:
    layout = OCILayout(str(tmp_path / "src"), create=True)
    ih.build_image(layout, [([ih.file("etc/big.txt", TEXT)], "none"), ([ih.file("app", "x\n")], "none")], tag="v1")
    archive = tmp_path / "image.tar"
    subprocess.run(["skopeo", "copy", f"oci:{layout.path}:v1", f"docker-archive:{archive}:app:v1"], check=True,
                   capture_output=True, timeout=300)  # fmt: skip  # plain layers, as docker save writes them
    pushed = run_cli("push", str(archive), f"{registry.host}/app:v1", "--cache-dir", str(tmp_path / "cache"))
    assert pushed.returncode == 0, pushed.stderr
    manifest, pulled = _served(registry, tmp_path, f"{registry.host}/app:v1")
    assert [layer["mediaType"] for layer in _layers(manifest)] == [mt.OCI_LAYER_GZIP] * 2
    assert int(str(_layers(manifest)[0]["size"])) < len(ih.layer_tar([ih.file("etc/big.txt", TEXT)])) / 5
    _layers_match_diff_ids(manifest, pulled)
    # --compression keep: as the archive has them
    kept = run_cli("push", str(archive), f"{registry.host}/app:plain", "--compression", "keep",
                   "--cache-dir", str(tmp_path / "cache"))  # fmt: skip
    assert kept.returncode == 0, kept.stderr
    plain_manifest, _ = _served(registry, tmp_path, f"{registry.host}/app:plain")
    assert [layer["mediaType"] for layer in _layers(plain_manifest)] == [mt.OCI_LAYER] * 2


def test_a_gzip_layer_of_an_archive_keeps_its_digest(registry: LocalRegistry, tmp_path: Path) -> None:
    plain = ih.layer_tar([ih.file("etc/big.txt", TEXT)])
    compressed = gzip.compress(plain, mtime=0)
    config = json.dumps({"architecture": "amd64", "os": "linux",
                         "rootfs": {"type": "layers", "diff_ids": ["sha256:" + hashlib.sha256(plain).hexdigest()]}})
    entries = {"config.json": config.encode(), "layer.tar.gz": compressed,
               "manifest.json": json.dumps([{"Config": "config.json", "RepoTags": ["app:v1"],
                                             "Layers": ["layer.tar.gz"]}]).encode()}  # fmt: skip
    archive = tmp_path / "gz.tar"
    with tarfile.open(archive, "w") as tar:
        for name, data in entries.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    result = api.push(str(f"docker-archive:{archive}"), f"{registry.host}/gz:v1", options=options(tmp_path))
    assert result.converted_from is None  # nothing needed converting
    manifest, pulled = _served(registry, tmp_path, f"{registry.host}/gz:v1")
    assert _layers(manifest)[0]["digest"] == "sha256:" + hashlib.sha256(compressed).hexdigest()
    _layers_match_diff_ids(manifest, pulled)
