"""docker-archive write/read, checked against the real skopeo in both directions."""

from __future__ import annotations

import io
import json
import os
import subprocess
import tarfile
from pathlib import Path

import pytest
from imagehelpers import build_image, build_index, dir, file, layer_tar

from ocipush import mediatypes as mt
from ocipush.archive import read_docker_archive, write_docker_archive
from ocipush.digest import sha256_of
from ocipush.errors import DigestMismatchError, LayoutError, NotFoundError, UsageError
from ocipush.layout import OCILayout
from ocipush.models import Manifest, Platform

LAYERS = [
    ([dir("etc"), file("etc/os-release", "ID=test\n")], "gzip"),
    ([file("app/main.py", "print(1)\n" * 100, 0o755)], "zstd"),
    ([file("app/data", b"\0\1" * 5000)], "none"),
]


def skopeo(*args: str) -> None:
    subprocess.run(["skopeo", *args], check=True, capture_output=True)


def manifest_at(layout: OCILayout, tag: str) -> Manifest:
    return layout.read_manifest(layout.resolve(tag)).manifest


def config_at(layout: OCILayout, tag: str) -> dict[str, object]:
    return json.loads(layout.read_blob(manifest_at(layout, tag).config.digest))  # type: ignore[no-any-return]


def snapshot(path: Path) -> dict[str, bytes]:
    return {str(p.relative_to(path)): p.read_bytes() for p in sorted(path.rglob("*")) if p.is_file()}


@pytest.fixture
def layout(tmp_path: Path) -> OCILayout:
    store = OCILayout(str(tmp_path / "layout"), create=True)
    build_image(store, LAYERS, tag="app")
    return store


def test_written_archive_loads_in_skopeo_with_same_config(layout: OCILayout, tmp_path: Path) -> None:
    archive = tmp_path / "img.tar"
    write_docker_archive(layout, layout.resolve("app"), str(archive), "example.com/team/app:1")
    ours = manifest_at(layout, "app")

    with tarfile.open(archive) as tar:
        entries = json.load(tar.extractfile("manifest.json"))  # type: ignore[arg-type]
        assert entries[0]["RepoTags"] == ["example.com/team/app:1"]
        for name, diff_id in zip(entries[0]["Layers"], config_at(layout, "app")["rootfs"]["diff_ids"], strict=True):  # type: ignore[index]
            assert sha256_of(tar.extractfile(name).read()) == diff_id  # type: ignore[union-attr]

    # Kept as docker v2.2 the config bytes pass through untouched: same digest.
    skopeo("copy", "--format", "v2s2", f"docker-archive:{archive}", f"oci:{tmp_path / 'v2s2'}:t")
    assert manifest_at(OCILayout(str(tmp_path / "v2s2")), "t").config.digest == ours.config.digest
    # Converted to OCI, skopeo re-serialises the config: same content, same diff_ids.
    skopeo("copy", f"docker-archive:{archive}:example.com/team/app:1", f"oci:{tmp_path / 'oci'}:t")
    assert config_at(OCILayout(str(tmp_path / "oci")), "t") == config_at(layout, "app")


def test_docker_hub_names_are_written_short(layout: OCILayout, tmp_path: Path) -> None:
    archive = tmp_path / "img.tar"
    write_docker_archive(layout, layout.resolve("app"), str(archive), "docker.io/library/busybox:1.36")
    with tarfile.open(archive) as tar:
        assert json.load(tar.extractfile("manifest.json"))[0]["RepoTags"] == ["busybox:1.36"]  # type: ignore[arg-type]
    with pytest.raises(UsageError, match="by tag"):
        write_docker_archive(layout, layout.resolve("app"), str(archive), "busybox@sha256:" + "a" * 64)


def test_round_trip_through_our_reader(layout: OCILayout, tmp_path: Path) -> None:
    archive = tmp_path / "img.tar"
    write_docker_archive(layout, layout.resolve("app"), str(archive), "app:1")
    store = OCILayout(str(tmp_path / "imported"), create=True)
    desc = read_docker_archive(str(archive), "app:1", store, "v1")
    assert desc == store.resolve("v1")
    assert desc.platform == Platform(architecture="amd64", os="linux")
    imported, original = manifest_at(store, "v1"), manifest_at(layout, "app")
    assert imported.config.digest == original.config.digest
    assert [layer.media_type for layer in imported.layers] == [mt.OCI_LAYER] * 3  # archives hold plain tars
    diff_ids = config_at(layout, "app")["rootfs"]["diff_ids"]  # type: ignore[index]
    assert [layer.digest for layer in imported.layers] == diff_ids
    for layer in imported.layers:
        assert store.has_blob(layer.digest, layer.size)
    assert not os.listdir(os.path.join(store.path, ".ingest"))


def test_reads_skopeo_archive(tmp_path: Path) -> None:
    layout = OCILayout(str(tmp_path / "layout"), create=True)
    build_image(layout, [(entries, "gzip") for entries, _ in LAYERS], tag="app")  # skopeo 1.9: no zstd here
    archive = tmp_path / "skopeo.tar"
    skopeo("copy", f"oci:{layout.path}:app", f"docker-archive:{archive}:example.com/team/app:2")
    store = OCILayout(str(tmp_path / "imported"), create=True)
    read_docker_archive(str(archive), "example.com/team/app:2", store, "x")
    imported = manifest_at(store, "x")
    assert imported.config.digest == manifest_at(layout, "app").config.digest
    assert [layer.digest for layer in imported.layers] == config_at(layout, "app")["rootfs"]["diff_ids"]  # type: ignore[index]


def test_compressed_layers_are_kept_compressed(layout: OCILayout, tmp_path: Path) -> None:
    """An archive whose layer files are gzip (as crane writes them) keeps their bytes and digest."""
    original = manifest_at(layout, "app")
    config_raw = layout.read_blob(original.config.digest)
    archive = tmp_path / "gz.tar"
    with tarfile.open(archive, "w") as tar:

        def add(name: str, data: bytes) -> None:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))

        add("config.json", config_raw)
        names = []
        for i, layer in enumerate(original.layers):
            add(f"{i}.layer", layout.read_blob(layer.digest))
            names.append(f"{i}.layer")
        add("manifest.json", json.dumps([{"Config": "config.json", "RepoTags": None, "Layers": names}]).encode())
    store = OCILayout(str(tmp_path / "imported"), create=True)
    read_docker_archive(str(archive), None, store, "gz")
    imported = manifest_at(store, "gz")
    assert [(x.media_type, x.digest) for x in imported.layers] == [(x.media_type, x.digest) for x in original.layers]


def test_several_images_chosen_by_repo_tag(tmp_path: Path) -> None:
    source = OCILayout(str(tmp_path / "src"), create=True)
    build_image(source, [([file("one", "1")], "gzip")], tag="one", env="IMG=1")
    build_image(source, [([file("two", "2")], "gzip")], tag="two", env="IMG=2")
    archive = tmp_path / "multi.tar"
    # skopeo's multi-image archives: one `copy` per image into the same file is not supported, so assemble
    # manifest.json from two of ours.
    entries, members = [], {}
    for name in ("one", "two"):
        single = tmp_path / f"{name}.tar"
        write_docker_archive(source, source.resolve(name), str(single), f"repo/{name}:latest")
        with tarfile.open(single) as tar:
            entries += json.load(tar.extractfile("manifest.json"))  # type: ignore[arg-type]
            for member in tar.getmembers():
                if member.name != "manifest.json":
                    members[member.name] = tar.extractfile(member).read()  # type: ignore[union-attr]
    with tarfile.open(archive, "w") as tar:
        for name, data in [*members.items(), ("manifest.json", json.dumps(entries).encode())]:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))

    store = OCILayout(str(tmp_path / "imported"), create=True)
    read_docker_archive(str(archive), "docker.io/repo/two", store, "t2")  # matched after normalisation
    assert config_at(store, "t2")["config"]["Env"] == ["IMG=2"]  # type: ignore[index]
    read_docker_archive(str(archive), "@0", store, "t1")
    assert config_at(store, "t1")["config"]["Env"] == ["IMG=1"]  # type: ignore[index]
    with pytest.raises(UsageError, match="repo/one:latest, repo/two:latest"):
        read_docker_archive(str(archive), None, store, None)
    with pytest.raises(NotFoundError, match="not in"):
        read_docker_archive(str(archive), "repo/three:latest", store, None)
    # skopeo reads the same multi-image archive by tag
    skopeo("copy", f"docker-archive:{archive}:repo/one:latest", f"oci:{tmp_path / 'sk'}:t")


def test_index_picks_platform(tmp_path: Path) -> None:
    layout = OCILayout(str(tmp_path / "layout"), create=True)
    amd = build_image(layout, [([file("arch", "amd64")], "gzip")], tag=None, arch="amd64")
    arm = build_image(layout, [([file("arch", "arm64")], "gzip")], tag=None, arch="arm64")
    index = build_index(layout, [amd, arm], "multi")
    archive = tmp_path / "arm.tar"
    write_docker_archive(layout, index, str(archive), "multi:1", platform=Platform(os="linux", architecture="arm64"))
    store = OCILayout(str(tmp_path / "imported"), create=True)
    read_docker_archive(str(archive), None, store, "x")
    assert config_at(store, "x")["architecture"] == "arm64"
    with pytest.raises(NotFoundError, match="linux/amd64, linux/arm64"):
        write_docker_archive(layout, index, str(archive), None, platform=Platform(os="linux", architecture="s390x"))


def corrupt_variants(good: bytes, layer_name: str) -> dict[str, bytes]:
    """Damaged copies of a valid archive (layers stored uncompressed, layer_name one of them)."""
    with tarfile.open(fileobj=io.BytesIO(good)) as tar:
        members = {m.name: tar.extractfile(m).read() for m in tar.getmembers()}  # type: ignore[union-attr]

    def pack(files: dict[str, bytes]) -> bytes:
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w") as tar:
            for name, data in files.items():
                info = tarfile.TarInfo(name)
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
        return buf.getvalue()

    flipped = dict(members)
    flipped[layer_name] = layer_tar([file("evil", "changed")])
    missing = {k: v for k, v in members.items() if k != layer_name}
    return {
        "truncated": good[: len(good) // 2],
        "not-a-tar": b"hello world" * 100,
        "layer-altered": pack(flipped),
        "layer-missing": pack(missing),
        "no-manifest": pack({k: v for k, v in members.items() if k != "manifest.json"}),
        "bad-manifest": pack({**members, "manifest.json": b'{"Config": 1}'}),
    }


@pytest.mark.parametrize(
    "case", ["truncated", "not-a-tar", "layer-altered", "layer-missing", "no-manifest", "bad-manifest"]
)
def test_corrupt_archive_leaves_layout_untouched(case: str, layout: OCILayout, tmp_path: Path) -> None:
    archive = tmp_path / "good.tar"
    write_docker_archive(layout, layout.resolve("app"), str(archive), "app:1")
    with tarfile.open(archive) as tar:
        last_layer = json.load(tar.extractfile("manifest.json"))[0]["Layers"][-1]  # type: ignore[arg-type]
    bad = tmp_path / "bad.tar"
    bad.write_bytes(corrupt_variants(archive.read_bytes(), last_layer)[case])
    store = OCILayout(str(tmp_path / "imported"), create=True)
    build_image(store, [([file("keep")], "gzip")], tag="existing")
    before = snapshot(Path(store.path))
    with pytest.raises((LayoutError, DigestMismatchError)) as err:
        read_docker_archive(str(bad), None, store, "new")
    assert "\n" not in str(err.value)
    assert snapshot(Path(store.path)) == before  # no blob, no index change, no leftover staging file


def test_write_is_atomic_when_a_blob_is_damaged(layout: OCILayout, tmp_path: Path) -> None:
    archive = tmp_path / "img.tar"
    archive.write_bytes(b"previous archive")
    layer = manifest_at(layout, "app").layers[2]
    blob = Path(layout.blob_path(layer.digest))
    blob.write_bytes(blob.read_bytes()[:-1] + b"x")
    with pytest.raises(DigestMismatchError):
        write_docker_archive(layout, layout.resolve("app"), str(archive), "app:1")
    assert archive.read_bytes() == b"previous archive"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["img.tar", "layout"]
