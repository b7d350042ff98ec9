"""Images built on bases (layouts, registries, Docker manifests, indexes), incremental rebuilds, build files."""

from __future__ import annotations

import json
import tarfile
from pathlib import Path

import pytest
from buildhelpers import build, load, run, top_digest, validate_layout
from imagehelpers import build_image as make_base
from imagehelpers import build_index, file
from transferhelpers import options

from ocipush import api
from ocipush import mediatypes as mt
from ocipush.build import BuildSpec, LayerSpec, build_image
from ocipush.build.image import BASE_DIGEST, BASE_NAME
from ocipush.layout import OCILayout
from ocipush.localregistry import LocalRegistry
from ocipush.models import ManifestDocument


@pytest.fixture(autouse=True)
def _cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OCIPUSH_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.chdir(tmp_path)


@pytest.fixture
def app(tmp_path: Path) -> Path:
    src = tmp_path / "app"
    (src / "bin").mkdir(parents=True)
    (src / "main.py").write_text("print('hi')\n")
    (src / "bin/run").write_text("#!/bin/sh\n")
    (src / "bin/run").chmod(0o755)
    return src


def multi_arch_base(path: Path) -> OCILayout:
    layout = OCILayout(str(path), create=True)
    children = [
        make_base(layout, [([file("etc/os-release", f"ID={arch}\n")], "gzip")], tag=None, arch=arch, env="PATH=/bin")
        for arch in ("amd64", "arm64")
    ]
    build_index(layout, children, "base")
    return layout


def test_layout_base_single_platform(tmp_path: Path, app: Path) -> None:
    base = OCILayout(str(tmp_path / "base"), create=True)
    make_base(base, [([file("etc/hostname", "base\n")], "gzip")], tag="3", arch="amd64", env="PATH=/bin")
    out = tmp_path / "out"
    code = build(app, out, "--from", f"oci:{tmp_path / 'base'}:3", "--platform", "linux/amd64",
                 "--env", "PATH=/app/bin:/bin", "--env", "MODE=prod", "--entrypoint", "/app/bin/run",
                 "--workdir", "/app", "--user", "1000", "--label", "a=b", "--expose", "8080",
                 "--annotation", "org.example=yes")  # fmt: skip
    assert code == 0
    manifest, config = load(out)
    base_doc = base.read_manifest(base.resolve("3"))
    assert manifest["layers"][0] == json.loads(base_doc.raw)["layers"][0]
    assert manifest["annotations"][BASE_DIGEST] == base_doc.digest
    assert BASE_NAME not in manifest["annotations"]  # a layout's path is this machine's, not the image's
    assert manifest["annotations"]["org.example"] == "yes"
    assert config["config"]["Env"] == ["PATH=/app/bin:/bin", "MODE=prod"]
    assert config["config"]["Entrypoint"] == ["/app/bin/run"] and "Cmd" not in config["config"]
    assert config["config"]["ExposedPorts"] == {"8080/tcp": {}}
    assert (config["config"]["WorkingDir"], config["config"]["User"]) == ("/app", "1000")
    assert len(config["rootfs"]["diff_ids"]) == len(config["history"]) == 2
    assert validate_layout(out) == 2
    # The base layer blob was linked into the output so the layout is complete.
    assert OCILayout(str(out)).has_blob(manifest["layers"][0]["digest"])


def test_single_platform_base_asked_for_two(tmp_path: Path, app: Path, capsys: pytest.CaptureFixture[str]) -> None:
    base = OCILayout(str(tmp_path / "base"), create=True)
    make_base(base, [([file("etc/hostname", "base\n")], "gzip")], tag="3", arch="amd64")
    name = f"oci:{tmp_path / 'base'}:3"
    assert build(app, tmp_path / "out", "--from", name, "--platform", "linux/amd64,linux/arm64") == 2
    assert capsys.readouterr().err.strip() == (
        f"ocipush: error: base {name} is a single-platform image (linux/amd64), so it cannot give the 2 platforms "
        "asked for (linux/amd64, linux/arm64): build one platform (--platform linux/amd64, or none), or use a "
        "multi-platform base (an image index)"
    )
    assert not (tmp_path / "out").exists()


def test_multi_platform_from_index_shares_app_layer(tmp_path: Path, app: Path) -> None:
    multi_arch_base(tmp_path / "base")
    out = tmp_path / "out"
    assert build(app, out, "--from", f"oci:{tmp_path / 'base'}:base", "--platform", "linux/amd64,linux/arm64") == 0
    layout = OCILayout(str(out))
    index = layout.read_manifest(layout.resolve("v1"))
    assert index.media_type == mt.OCI_INDEX
    children = index.index.manifests
    assert [str(c.platform) for c in children] == ["linux/amd64", "linux/arm64"]
    manifests = [layout.read_manifest(c).manifest for c in children]
    assert manifests[0].layers[-1] == manifests[1].layers[-1]
    assert manifests[0].layers[0] != manifests[1].layers[0]
    assert validate_layout(out) == 5


def test_unknown_platform_of_an_index_base(tmp_path: Path, app: Path, capsys: pytest.CaptureFixture[str]) -> None:
    multi_arch_base(tmp_path / "base")
    code = build(app, tmp_path / "out", "--from", f"oci:{tmp_path / 'base'}:base", "--platform", "linux/s390x")
    assert code == 2
    assert "has no linux/s390x image (it has: linux/amd64, linux/arm64)" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_docker_base_gives_docker_manifest(tmp_path: Path, app: Path, capsys: pytest.CaptureFixture[str]) -> None:
    base = OCILayout(str(tmp_path / "base"), create=True)
    entry = make_base(base, [([file("x", "x")], "gzip")], tag="oci")
    oci = json.loads(base.read_blob(entry.digest))
    oci["mediaType"] = mt.DOCKER_MANIFEST
    oci["config"]["mediaType"] = mt.DOCKER_CONFIG
    oci["layers"][0]["mediaType"] = mt.DOCKER_LAYER_GZIP
    base.add_manifest(ManifestDocument(json.dumps(oci).encode(), mt.DOCKER_MANIFEST), ["docker"])
    base_from = f"oci:{tmp_path / 'base'}:docker"
    # What build-push pushes: the base's family, and nothing outside the Docker spec.
    store = OCILayout(str(tmp_path / "store"), create=True)
    spec = BuildSpec(base=base_from, layers=[LayerSpec(source=str(app), dest="/app")], annotations={"org.example": "y"})
    built = build_image(spec, store, "v1")
    assert built.warnings == ["annotations are left out: the base is a Docker v2.2 image, whose manifests have none"]
    manifest = json.loads(store.read_blob(built.descriptor.digest))
    assert set(manifest) == {"schemaVersion", "mediaType", "config", "layers"}
    assert manifest["mediaType"] == mt.DOCKER_MANIFEST
    assert manifest["config"]["mediaType"] == mt.DOCKER_CONFIG
    assert {layer["mediaType"] for layer in manifest["layers"]} == {mt.DOCKER_LAYER_GZIP}
    # A layout base's layers are in the store: no name (a path on this machine) for a push to look the base up by.
    assert BASE_NAME not in (built.descriptor.annotations or {})
    # zstd layers need OCI, and so does an oci: output (skopeo and umoci see only OCI manifests in a layout):
    # the whole manifest becomes OCI, the base's layer and config under OCI names, the same bytes.
    for out, extra in (("zstd", ["--compression", "zstd"]), ("gzip", [])):
        assert build(app, tmp_path / out, "--from", base_from, "--annotation", "org.example=yes", *extra) == 0
        manifest, _ = load(tmp_path / out)
        assert manifest["mediaType"] == mt.OCI_MANIFEST
        assert manifest["config"]["mediaType"] == mt.OCI_CONFIG
        new_layer = mt.OCI_LAYER_ZSTD if extra else mt.OCI_LAYER_GZIP
        assert [layer["mediaType"] for layer in manifest["layers"]] == [mt.OCI_LAYER_GZIP, new_layer]
        assert manifest["layers"][0]["digest"] == oci["layers"][0]["digest"]
        assert manifest["annotations"][BASE_DIGEST] == base.resolve("docker").digest
        assert manifest["annotations"]["org.example"] == "yes"
        validate_layout(tmp_path / out)
    assert "warning" not in capsys.readouterr().err


def test_rebuild_reuses_layers_from_cache_and_previous_image(
    tmp_path: Path, app: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out"
    assert build(app, out) == 0
    assert "built " in capsys.readouterr().err
    first = top_digest(out)
    # The tag's current image: same diff_id, so no compression and the same blob.
    assert build(app, out, "--no-cache") == 0
    assert "reused" in capsys.readouterr().err
    # The local cache: a fresh output directory links the cached blob.
    assert build(app, tmp_path / "other") == 0
    assert "reused" in capsys.readouterr().err
    assert top_digest(out) == top_digest(tmp_path / "other") == first
    (app / "main.py").write_text("print('changed')\n")
    assert build(app, out) == 0
    assert "built " in capsys.readouterr().err
    assert top_digest(out) != first


def test_zstd_and_uncompressed_layers(tmp_path: Path, app: Path) -> None:
    for compression, media_type in (("zstd", mt.OCI_LAYER_ZSTD), ("none", mt.OCI_LAYER)):
        out = tmp_path / compression
        assert build(app, out, "--compression", compression, "--compression-level", "3") == 0
        manifest, config = load(out)
        assert manifest["layers"][0]["mediaType"] == media_type
        if compression == "none":
            assert manifest["layers"][0]["digest"] == config["rootfs"]["diff_ids"][0]


def test_build_file_with_flag_overrides(tmp_path: Path, app: Path) -> None:
    (tmp_path / "pyproject.toml").write_text(
        '[project]\nname = "x"\n\n[tool.ocipush]\nlayers = ["app:/srv"]\n'
        'cmd = "python /srv/main.py"\nenv = { A = "1", B = "2" }\nexpose = [8080, "53/udp"]\n'
    )
    out = tmp_path / "out"
    assert run("build", "--env", "B=3", "--output", f"oci:{out}:v1") == 0
    manifest, config = load(out)
    assert config["config"]["Cmd"] == ["python", "/srv/main.py"]
    assert config["config"]["Env"] == ["A=1", "B=3"]
    assert config["config"]["ExposedPorts"] == {"8080/tcp": {}, "53/udp": {}}
    blob = out / "blobs/sha256" / manifest["layers"][0]["digest"].split(":")[1]
    with tarfile.open(blob) as tar:
        assert "srv/main.py" in tar.getnames()


def test_docker_archive_output(tmp_path: Path, app: Path) -> None:
    archive = tmp_path / "image.tar"
    code = run("build", "--no-build-file", "--layer", f"{app}:/app", "--output", f"docker-archive:{archive}:app:v1")
    assert code == 0
    with tarfile.open(archive) as tar:
        manifest = json.load(tar.extractfile("manifest.json"))  # type: ignore[arg-type]
    assert manifest[0]["RepoTags"] == ["app:v1"]


def test_registry_base_is_never_downloaded(registry: LocalRegistry, tmp_path: Path, app: Path) -> None:
    multi_arch_base(tmp_path / "base")
    api.push(f"oci:{tmp_path / 'base'}:base", f"{registry.host}/base:1", options=options(tmp_path))
    store = OCILayout(str(tmp_path / "out"), create=True)
    spec = BuildSpec(base=f"{registry.host}/base:1", layers=[LayerSpec(source=str(app), dest="/app")])
    result = build_image(spec, store, "v1", fetch_options=options(tmp_path))
    manifest = store.read_manifest(result.descriptor).manifest
    assert manifest.annotations is not None
    assert manifest.annotations[BASE_NAME] == f"{registry.host}/base:1"
    base_layer, app_layer = manifest.layers
    assert not store.has_blob(base_layer.digest)
    assert store.has_blob(app_layer.digest)
    # Only the headers were streamed, once, to learn the base's directories; their summary is cached by digest.
    summaries = list((tmp_path / "cache" / "base-index").iterdir())
    assert [p.name for p in summaries] == [base_layer.digest.replace(":", "-") + ".json"]
