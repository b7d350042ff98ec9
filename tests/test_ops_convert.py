"""copy/push conversions (layer compression, manifest format) against the real registry; skopeo reads the
results back, and the unpacked filesystem is the original's."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import imagehelpers as ih
import pytest
from test_extract import LOWER, MIDDLE, UPPER, tree
from transferhelpers import assert_one_line_error, options, push_two_platform_index, run_cli

from ocipush import api
from ocipush import mediatypes as mt
from ocipush.errors import NotFoundError
from ocipush.layout import OCILayout
from ocipush.localregistry import LocalRegistry
from ocipush.ops.convert import Conversion


def skopeo_raw(reference: str) -> dict[str, object]:
    done = subprocess.run(["skopeo", "inspect", "--raw", "--tls-verify=false", f"docker://{reference}"],
                          capture_output=True, text=True, check=True)  # fmt: skip
    parsed: dict[str, object] = json.loads(done.stdout)
    return parsed


def skopeo_copy(reference: str, destination: str) -> None:
    subprocess.run(["skopeo", "copy", "--quiet", "--src-tls-verify=false", f"docker://{reference}", destination],
                   capture_output=True, check=True)  # fmt: skip


def push_layers(registry: LocalRegistry, tmp_path: Path) -> str:
    layout = OCILayout(str(tmp_path / "layout"), create=True)
    ih.build_image(layout, [(LOWER, "gzip"), (MIDDLE, "none"), (UPPER, "gzip")])
    reference = f"{registry.host}/src:1"
    api.push(f"oci:{layout.path}:latest", reference, options=options(tmp_path))
    return reference


def rootfs(reference: str, tmp_path: Path, name: str) -> dict[str, tuple[str, object]]:
    api.pull_rootfs(reference, str(tmp_path / name), platform="linux/amd64", options=options(tmp_path))
    return tree(tmp_path / name)


def test_zstd_conversion_is_read_back_by_skopeo(registry: LocalRegistry, tmp_path: Path) -> None:
    source = push_layers(registry, tmp_path)
    target = f"{registry.host}/zstd:1"
    result = api.copy(source, target, conversion=Conversion("zstd"), options=options(tmp_path))
    assert result.converted_from == api.resolve_digest(source, options=options(tmp_path)) != result.digest
    manifest = skopeo_raw(target)
    layers = manifest["layers"]
    assert isinstance(layers, list) and {layer["mediaType"] for layer in layers} == {mt.OCI_LAYER_ZSTD}
    skopeo_copy(target, f"oci:{tmp_path / 'skopeo'}:copy")  # skopeo checks every digest on the way
    original = api.inspect(source, options=options(tmp_path))
    converted = api.inspect(target, options=options(tmp_path))
    assert converted.manifest["config"] == original.manifest["config"]  # same config: the same diff_ids
    assert rootfs(target, tmp_path, "zstd") == rootfs(source, tmp_path, "orig")


def test_docker_format_conversion_of_an_index(registry: LocalRegistry, tmp_path: Path) -> None:
    source = push_two_platform_index(registry.host, tmp_path, arm_compression="zstd")

    # zstd layers have no Docker form: the conversion says which flag to add, and writes nothing.
    cache = ["--cache-dir", str(tmp_path / "c")]
    done = run_cli("copy", source, f"{registry.host}/docker:1", "--format", "docker", *cache)
    assert done.returncode == 2
    assert_one_line_error(done, "--compression gzip")
    with pytest.raises(NotFoundError):
        api.resolve_digest(f"{registry.host}/docker:1", options=options(tmp_path))

    done = run_cli("copy", source, f"{registry.host}/docker:1", "--format", "docker", "--compression", "gzip", *cache)
    assert done.returncode == 0, done.stderr
    assert "digest is new" in done.stderr
    index = skopeo_raw(f"{registry.host}/docker:1")
    assert index["mediaType"] == mt.DOCKER_MANIFEST_LIST
    children = index["manifests"]
    assert isinstance(children, list)
    assert {c["mediaType"] for c in children} == {mt.DOCKER_MANIFEST}
    for child in children:
        image = skopeo_raw(f"{registry.host}/docker@{child['digest']}")
        assert image["config"]["mediaType"] == mt.DOCKER_CONFIG  # type: ignore[index]
        assert {layer["mediaType"] for layer in image["layers"]} == {mt.DOCKER_LAYER_GZIP}  # type: ignore[attr-defined]
    skopeo_copy(f"{registry.host}/docker:1", f"docker-archive:{tmp_path / 'host.tar'}")  # this machine's platform


def test_uncompressed_docker_archive_is_pushed_gzip(registry: LocalRegistry, tmp_path: Path) -> None:
    layout = OCILayout(str(tmp_path / "plain"), create=True)
    ih.build_image(layout, [([ih.file("big.txt", "x" * 200_000)], "none")])
    archive = tmp_path / "image.tar"
    api.copy(f"oci:{layout.path}:latest", f"docker-archive:{archive}:app:1", options=options(tmp_path))
    target = f"{registry.host}/app:1"
    done = run_cli("push", str(archive), target, "--compression", "gzip", "--json", "--cache-dir", str(tmp_path / "c"))
    assert done.returncode == 0, done.stderr
    assert "convertedFrom" in json.loads(done.stdout)
    layers = skopeo_raw(target)["layers"]
    assert isinstance(layers, list) and len(layers) == 1
    assert layers[0]["mediaType"].endswith("gzip") and layers[0]["size"] < 10_000  # 200 KB of x's, compressed
    skopeo_copy(target, f"oci:{tmp_path / 'back'}:v1")
    assert os.path.isdir(tmp_path / "back")


def test_a_conversion_that_changes_nothing_keeps_the_digest(registry: LocalRegistry, tmp_path: Path) -> None:
    source = push_layers(registry, tmp_path)
    nothing = Conversion("keep", "oci")
    result = api.copy(source, f"{registry.host}/same:1", conversion=nothing, options=options(tmp_path))
    assert result.converted_from is None
    assert result.digest == api.resolve_digest(source, options=options(tmp_path))
