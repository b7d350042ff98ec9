"""build-push against real registries: base layers mounted on the same registry (only their headers are read,
once, for the base index), streamed registry to registry otherwise; the ECR flow with create-on-push; what we push,
skopeo and umoci read."""

from __future__ import annotations

import re
import subprocess
from collections.abc import Callable
from pathlib import Path

from buildhelpers import make_tree
from support.handles import RegistryHandle
from support.proxy import FaultProxy, Reset, Respond
from transferhelpers import options, run_cli

from ocipush import api
from ocipush.build.spec import BuildSpec, LayerSpec
from ocipush.layout import OCILayout
from ocipush.localregistry import LocalRegistry

ECR_HOST = "123456789012.dkr.ecr.us-east-1.amazonaws.com"


def _push_base(registry: LocalRegistry, tmp_path: Path) -> tuple[str, list[str]]:
    base_dir = tmp_path / "base-tree"
    (base_dir / "usr/lib").mkdir(parents=True)
    (base_dir / "usr/lib/libbase.so").write_bytes(b"\x7fELF" + bytes(range(256)) * 4000)
    base = f"{registry.host}/library/base:1"
    built, _ = api.build_push(
        BuildSpec(layers=[LayerSpec(source=str(base_dir))]), base, options=options(tmp_path / "b")
    )
    return base, [layer.digest for layer in built.layers]


def _blob_gets(log: Path, digests: list[str]) -> int:
    text = log.read_text()
    return sum(len(re.findall(rf'"GET /v2/[^ ]+/blobs/{d}', text)) for d in digests)


def test_same_registry_base_is_mounted_not_downloaded(registry: LocalRegistry, tmp_path: Path) -> None:
    base, base_layers = _push_base(registry, tmp_path)
    app = make_tree(tmp_path / "app")
    spec = BuildSpec(base=base, layers=[LayerSpec(source=str(app), dest="/srv")], cmd=["/srv/app/run.sh"])
    built, pushed = api.build_push(spec, f"{registry.host}/team/app:v1", options=options(tmp_path / "a"))
    assert [pushed.blobs[d] for d in base_layers] == ["mounted"]
    # One GET: the header pass that learns whether the base has /srv; the push itself mounts.
    assert _blob_gets(registry.log_path, base_layers) == 1
    # the build never stored the base layer locally either
    store = OCILayout(str(tmp_path / "a" / "cache" / "layouts" / "build"))
    assert not any(store.has_blob(d) for d in base_layers)
    assert built.layers[-1].dest == "/srv"
    # A rebuild with a changed app finds the base's index in the cache: no GET of the base at all.
    (app / "app/main.py").write_text("print('changed')\n")
    api.build_push(spec, f"{registry.host}/team/app:v2", options=options(tmp_path / "a"))
    assert _blob_gets(registry.log_path, base_layers) == 1


def test_cross_registry_base_is_streamed(registry: LocalRegistry, tmp_path: Path) -> None:
    base, base_layers = _push_base(registry, tmp_path)
    app = make_tree(tmp_path / "app")
    with LocalRegistry() as other:
        spec = BuildSpec(base=base, layers=[LayerSpec(source=str(app))])
        _, pushed = api.build_push(spec, f"{other.host}/app:v1", options=options(tmp_path / "a"))
        assert [pushed.blobs[d] for d in base_layers] == ["uploaded"]
        store = OCILayout(str(tmp_path / "a" / "cache" / "layouts" / "build"))
        assert not any(store.has_blob(d) for d in base_layers)
        # what landed in the other registry is byte-identical to the base's layer
        api.pull(f"{other.host}/app:v1", f"oci:{tmp_path / 'back'}", options=options(tmp_path / "c"))
        back = OCILayout(str(tmp_path / "back"))
        assert all(back.has_blob(d) for d in base_layers)


def test_build_push_round_trip_through_skopeo_and_umoci(registry: LocalRegistry, tmp_path: Path) -> None:
    app = make_tree(tmp_path / "app")
    ref = f"{registry.host}/rt/app:v1"
    done = run_cli("build-push", str(app), "--tag", ref, "--no-build-file", "--cache-dir", str(tmp_path / "cache"))
    assert done.returncode == 0, done.stderr
    oci = tmp_path / "sk"
    subprocess.run(["skopeo", "copy", "--src-tls-verify=false", f"docker://{ref}", f"oci:{oci}:v1"], check=True)
    subprocess.run(["umoci", "unpack", "--rootless", "--image", f"{oci}:v1", str(tmp_path / "bundle")], check=True)
    rootfs = tmp_path / "bundle" / "rootfs"
    for path in app.rglob("*"):
        twin = rootfs / path.relative_to(app)
        if path.is_symlink():
            assert twin.is_symlink() and twin.readlink() == path.readlink()
        elif path.is_file():
            assert twin.read_bytes() == path.read_bytes(), path
            assert twin.stat().st_mode & 0o777 == path.stat().st_mode & 0o777
        else:
            assert twin.is_dir()
    assert (rootfs / "app/main-link.py").stat().st_ino == (rootfs / "app/main.py").stat().st_ino


def test_build_push_to_ecr_creates_the_repository(
    ecr_registry: RegistryHandle, fault_proxy: Callable[..., FaultProxy], tmp_path: Path
) -> None:
    proxy = fault_proxy(ecr_registry.url, ecr=True)
    # A base image in the same ECR registry: its layer is mounted, never downloaded.
    base_tree = tmp_path / "base"
    (base_tree / "etc").mkdir(parents=True)
    (base_tree / "etc/os-release").write_text("ID=base\n")
    base = f"{ECR_HOST}/library/base:1"
    built_base, _ = api.build_push(BuildSpec(layers=[LayerSpec(source=str(base_tree))]), base,
                                   options=options(tmp_path / "b", endpoints={ECR_HOST: proxy.url}))  # fmt: skip
    body = b'{"errors":[{"code":"NAME_UNKNOWN","message":"The repository with name \'svc/app\' does not exist"}]}'
    # Until the repository exists every upload is refused: the one streamed during the build, then the push's.
    proxy.add_fault("POST", r"/blobs/uploads/", Respond(404, body, (("Content-Type", "application/json"),)), times=2)
    app = make_tree(tmp_path / "app")
    ref = f"{ECR_HOST}/svc/app:v1"
    done = run_cli(
        "build-push", str(app), "--from", base, "--tag", ref, "--tag", "latest", "--no-build-file", "--json",
        "--endpoint", f"{ECR_HOST}={proxy.url}", "--create-repo", "--scan-on-push",
        "--cache-dir", str(tmp_path / "cache"), env=ecr_registry.aws_env,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    import json

    import boto3

    result = json.loads(done.stdout)
    assert result["tags"] == ["v1", "latest"]
    # The base layer was mounted: never downloaded, never uploaded (which attempt mounted it depends on timing:
    # the first one may run before the repository exists).
    log = ecr_registry.log_path.read_text().replace("%3A", ":")
    base_layer = built_base.layers[0].digest
    assert re.search(rf'"POST /v2/svc/app/blobs/uploads/\?[^ ]*mount={base_layer}', log)
    assert not re.search(rf'"GET /v2/[^ ]+/blobs/{base_layer}', log)
    assert not re.search(rf'"PUT /v2/svc/app/blobs/uploads/[^ ]*digest={base_layer}', log)
    repos = boto3.client("ecr", region_name="us-east-1").describe_repositories(repositoryNames=["svc/app"])
    assert repos["repositories"][0]["imageScanningConfiguration"]["scanOnPush"] is True
    digest = run_cli("digest", f"{ECR_HOST}/svc/app:latest", "--endpoint", f"{ECR_HOST}={proxy.url}",
                     env=ecr_registry.aws_env)  # fmt: skip
    assert digest.stdout.strip() == result["digest"]


def test_demo_command_passes() -> None:
    done = run_cli("demo")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "demo passed" in done.stdout


def test_new_layers_are_uploaded_while_they_are_built(registry: LocalRegistry, tmp_path: Path) -> None:
    app = make_tree(tmp_path / "app")
    spec = BuildSpec(layers=[LayerSpec(source=str(app))])
    built, pushed = api.build_push(spec, f"{registry.host}/stream/app:v1", options=options(tmp_path))
    # the push after the build found the layer already there: it went up while it was being compressed
    assert pushed.blobs[built.layers[0].digest] == "exists"


def test_a_failed_stream_falls_back_to_the_regular_push(
    registry: LocalRegistry, fault_proxy: Callable[..., FaultProxy], tmp_path: Path
) -> None:
    proxy = fault_proxy(registry.url)
    fault = proxy.add_fault("PATCH", r"/blobs/uploads/", Reset(after_bytes=1000))
    app = make_tree(tmp_path / "app")
    spec = BuildSpec(layers=[LayerSpec(source=str(app))])
    built, pushed = api.build_push(spec, f"{proxy.host}/stream/app:v1", options=options(tmp_path))
    assert fault.applied == 1
    assert pushed.blobs[built.layers[0].digest] == "uploaded"
    api.pull(f"{proxy.host}/stream/app:v1", f"oci:{tmp_path / 'back'}", options=options(tmp_path / "p"))
    assert OCILayout(str(tmp_path / "back")).has_blob(built.layers[0].digest)


def test_fresh_runner_reuses_the_target_tags_layers(registry: LocalRegistry, tmp_path: Path) -> None:
    """A CI runner starts with an empty cache: the image the tag names now still spares compressing and
    uploading the layers that did not change."""
    app = make_tree(tmp_path / "app")
    (tmp_path / "code").mkdir()
    (tmp_path / "code" / "main.py").write_text("print(1)\n")
    spec = BuildSpec(layers=[LayerSpec(source=str(app)), LayerSpec(source=str(tmp_path / "code"), dest="/code")])
    ref = f"{registry.host}/ci/app:main"
    first, _ = api.build_push(spec, ref, options=options(tmp_path / "runner1"))
    (tmp_path / "code" / "main.py").write_text("print(2)\n")
    second, pushed = api.build_push(spec, ref, options=options(tmp_path / "runner2"))
    assert [layer.reused for layer in second.layers] == [True, False]
    assert second.layers[0].digest == first.layers[0].digest
    assert pushed.blobs[second.layers[0].digest] == "exists"
    assert second.layers[1].digest != first.layers[1].digest
