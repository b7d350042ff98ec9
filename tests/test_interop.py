"""What ocipush writes, skopeo and umoci read; what skopeo writes, ocipush reads."""

from __future__ import annotations

import filecmp
import os
import subprocess
from pathlib import Path

from transferhelpers import layout_blobs, make_image, options

from ocipush import api
from ocipush.layout import OCILayout
from ocipush.localregistry import LocalRegistry


def _run(*args: str) -> None:
    subprocess.run(args, check=True, capture_output=True, timeout=300)


def _same_tree(a: Path, b: Path) -> None:
    comparison = filecmp.dircmp(a, b)
    assert not comparison.left_only and not comparison.right_only and not comparison.diff_files, comparison.report()
    for sub in comparison.common_dirs:
        _same_tree(a / sub, b / sub)


def test_skopeo_and_umoci_read_what_we_push(registry: LocalRegistry, tmp_path: Path) -> None:
    source, _ = make_image(tmp_path / "src", big=6 << 20)
    api.push(f"oci:{source.path}:v1", f"{registry.host}/app:v1", options=options(tmp_path))
    _run(
        "skopeo",
        "copy",
        "--preserve-digests",
        "--src-tls-verify=false",
        f"docker://{registry.host}/app:v1",
        f"oci:{tmp_path / 'sk'}:v1",
    )
    assert layout_blobs(OCILayout(str(tmp_path / "sk"))) == layout_blobs(source)
    _run("umoci", "unpack", "--rootless", "--image", f"{tmp_path / 'sk'}:v1", str(tmp_path / "bundle"))
    assert (tmp_path / "bundle" / "rootfs" / "etc" / "hello.txt").read_text() == "hello 1\n"
    assert os.path.getsize(tmp_path / "bundle" / "rootfs" / "data.bin") == 6 << 20


def test_we_pull_what_skopeo_pushes(registry: LocalRegistry, tmp_path: Path) -> None:
    source, _ = make_image(tmp_path / "src", seed=3)
    _run("skopeo", "copy", "--dest-tls-verify=false", f"oci:{source.path}:v1", f"docker://{registry.host}/sk/app:v1")
    digest = api.resolve_digest(f"{registry.host}/sk/app:v1", options=options(tmp_path))
    pulled = api.pull(f"{registry.host}/sk/app:v1", f"oci:{tmp_path / 'dst'}:v1", options=options(tmp_path))
    assert pulled.digest == digest
    # our rootfs unpack equals umoci's of the same image
    api.pull_rootfs(f"{registry.host}/sk/app:v1", str(tmp_path / "ours"), options=options(tmp_path))
    _run("umoci", "unpack", "--rootless", "--image", f"{tmp_path / 'dst'}:v1", str(tmp_path / "bundle"))
    _same_tree(tmp_path / "ours", tmp_path / "bundle" / "rootfs")


def test_docker_archive_round_trip_through_registry(registry: LocalRegistry, tmp_path: Path) -> None:
    source, _ = make_image(tmp_path / "src")
    api.push(f"oci:{source.path}:v1", f"{registry.host}/app:v1", options=options(tmp_path))
    archive = tmp_path / "app.tar"
    api.pull(f"{registry.host}/app:v1", f"docker-archive:{archive}:app:v1", options=options(tmp_path))
    _run("skopeo", "copy", f"docker-archive:{archive}", f"oci:{tmp_path / 'sk'}:v1")
    pushed = api.push(f"docker-archive:{archive}", f"{registry.host}/again:v1", options=options(tmp_path))
    config = api.inspect(f"{registry.host}/again:v1", options=options(tmp_path)).config
    assert config is not None and config["config"]["Env"] == ["SEED=1"]
    assert pushed.blobs


def test_all_platforms_layout_has_only_the_index_at_the_top(registry: LocalRegistry, tmp_path: Path) -> None:
    import imagehelpers as ih

    layout = OCILayout(str(tmp_path / "src"), create=True)
    amd = ih.build_image(layout, [([ih.file("arch", "amd64")], "gzip")], tag=None, arch="amd64")
    arm = ih.build_image(layout, [([ih.file("arch", "arm64")], "gzip")], tag=None, arch="arm64")
    index = ih.build_index(layout, [amd, arm], "multi")
    api.push(f"oci:{layout.path}:multi", f"{registry.host}/multi:1", options=options(tmp_path))
    for target in (f"oci:{tmp_path / 'tagged'}:1", f"oci:{tmp_path / 'untagged'}"):
        api.pull(f"{registry.host}/multi:1", target, all_platforms=True, options=options(tmp_path))
    for name in ("tagged", "untagged"):
        pulled = OCILayout(str(tmp_path / name))
        assert [entry.digest for entry in pulled.read_index().manifests] == [index.digest]
        # skopeo reads it (it refused "more than one image" before), and so does our own push
        _run("skopeo", "copy", "--all", "--preserve-digests", f"oci:{pulled.path}", f"oci:{tmp_path / name}-sk:x")
        assert OCILayout(f"{tmp_path / name}-sk").resolve("x").digest == index.digest
        pushed = api.push(f"oci:{pulled.path}", f"{registry.host}/again-{name}:1", options=options(tmp_path))
        assert pushed.digest == index.digest
    # one platform's image pulled into the same layout becomes an entry of its own, though its manifest is there
    api.pull(f"{registry.host}/multi:1", f"oci:{tmp_path / 'untagged'}", platform="linux/arm64",
             options=options(tmp_path))  # fmt: skip
    entries = OCILayout(str(tmp_path / "untagged")).read_index().manifests
    assert [entry.digest for entry in entries] == [index.digest, arm.digest]
