"""What podman makes of the results of the image operations: an index joined from two single-arch images of
different repositories, a rebased image and a flattened one, all pulled from the real registry."""

from __future__ import annotations

import json
from pathlib import Path

from support.bases import push_base
from support.runtime import Podman
from test_ops_index import push_arch_image
from transferhelpers import options

from ocipush import api
from ocipush.build.spec import BuildSpec, LayerSpec
from ocipush.localregistry import LocalRegistry
from ocipush.ops.flatten import flatten
from ocipush.ops.index import create_index
from ocipush.ops.rebase import rebase


def test_podman_picks_each_platform_from_an_index_of_two_repositories(
    podman: Podman, registry: LocalRegistry, busybox_base: Path, tmp_path: Path
) -> None:
    amd64 = push_base(busybox_base, registry.host, "ci/app-amd64")  # runs here
    push_arch_image(registry.host, "ci/app-arm64", "arm64", tmp_path)  # pulled, never run
    index = f"{registry.host}/app:multi"
    create_index(index, [amd64, f"{registry.host}/ci/app-arm64:latest"], options=options(tmp_path))
    children = {e["platform"]["architecture"]: e["digest"] for e in api.inspect(index).manifest["manifests"]}

    for arch in ("arm64", "amd64"):
        image = podman.pull(index, platform=f"linux/{arch}")
        inspected = json.loads(podman.image_config(image))[0]
        assert inspected["Architecture"] == arch
        assert f"{registry.host}/app@{children[arch]}" in inspected["RepoDigests"]  # this platform's image
    assert podman.run(index, "echo", "ran", platform="linux/amd64") == "ran\n"


def test_rebased_image_runs_on_the_new_base_and_flattens(
    podman: Podman, registry: LocalRegistry, busybox_base: Path, debian_base: Path, tmp_path: Path
) -> None:
    old_base = push_base(busybox_base, registry.host, "base/busybox")
    new_base = push_base(debian_base, registry.host, "base/debian")
    app_dir = tmp_path / "app"
    app_dir.mkdir()
    (app_dir / "hello.txt").write_text("from the app\n")
    app = f"{registry.host}/app:1"
    spec = BuildSpec(base=old_base, layers=[LayerSpec(source=str(app_dir), dest="/app")], cmd=["cat", "/app/hello.txt"])
    api.build_push(spec, app, options=options(tmp_path))
    assert podman.run(app) == "from the app\n"

    rebase(app, new_base, "rebased", options=options(tmp_path))
    rebased = f"{registry.host}/app:rebased"
    out = podman.run(rebased, "/bin/sh", "-c", "cat /etc/debian_version /app/hello.txt; ls /bin/busybox || true")
    lines = out.splitlines()
    assert lines[0][:2] == "12" and lines[1] == "from the app" and len(lines) == 2  # no busybox left
    assert podman.run(rebased) == "from the app\n"  # the app's own config (cmd) is kept

    flatten(rebased, "flat", options=options(tmp_path))
    flat = f"{registry.host}/app:flat"
    assert len(api.inspect(flat).manifest["layers"]) == 1
    assert podman.run(flat, "/bin/sh", "-c", "cat /etc/debian_version /app/hello.txt") == out
