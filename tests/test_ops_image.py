"""mutate and rebase against the real distribution registry: new configs and manifests, no layer downloaded,
and the bases swapped exactly; the result is checked by reading it back (and unpacking it)."""

from __future__ import annotations

import re
from pathlib import Path

from transferhelpers import assert_cli_errors, log_between, log_mark, options, run_cli

from ocipush import api
from ocipush import mediatypes as mt
from ocipush.build.spec import BuildSpec, LayerSpec
from ocipush.localregistry import LocalRegistry
from ocipush.ops.convert import Conversion
from ocipush.ops.mutate import mutate
from ocipush.ops.rebase import rebase


def tree(root: Path, files: dict[str, str]) -> str:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return str(root)


def build_push(reference: str, tmp_path: Path, files: dict[str, str], base: str = "scratch", **spec: object) -> str:
    directory = tree(tmp_path / f"tree-{abs(hash(reference))}", files)
    built, _ = api.build_push(
        BuildSpec(base=base, layers=[LayerSpec(source=directory)], **spec),  # type: ignore[arg-type]
        reference,
        options=options(tmp_path),
    )
    return built.descriptor.digest


def blob_gets(registry: LocalRegistry, since: int) -> list[str]:
    """The blob GETs the registry logged between `since` (a log_mark) and now."""
    lines = log_between(registry, since, log_mark(registry))
    return [line for line in lines if re.search(r'"GET /v2/[^ ]+/blobs/', line)]


def test_mutate_edits_the_config_without_downloading_layers(registry: LocalRegistry, tmp_path: Path) -> None:
    source = f"{registry.host}/app:1"
    build_push(source, tmp_path, {"app/run.sh": "echo hi\n"}, env={"A": "1"}, entrypoint=["/app/run.sh"])
    before = api.inspect(source, options=options(tmp_path))
    start = log_mark(registry)
    spec = BuildSpec(env={"B": "2"}, cmd=["--verbose"], user="1000", labels={"team": "x"}, annotations={"k": "v"})
    result = mutate(source, "2", spec, set_platform="linux/arm64", options=options(tmp_path))
    config_get = [line for line in blob_gets(registry, start) if before.manifest["config"]["digest"] in line]
    assert len(blob_gets(registry, start)) == len(config_get) == 1  # the config, never a layer
    assert result.counts == {"uploaded": 1, "exists": 1, "mounted": 0}  # the new config; the layer is there
    after = api.inspect(f"{registry.host}/app:2", options=options(tmp_path))
    assert after.digest == result.digest != before.digest
    assert after.manifest["layers"] == before.manifest["layers"]
    assert after.manifest["annotations"]["k"] == "v"
    config = after.config
    assert config is not None and before.config is not None
    assert config["config"]["Env"][-2:] == ["A=1", "B=2"]
    assert config["config"]["Entrypoint"] == ["/app/run.sh"] and config["config"]["Cmd"] == ["--verbose"]
    assert config["config"]["User"] == "1000" and config["config"]["Labels"] == {"team": "x"}
    assert (config["os"], config["architecture"]) == ("linux", "arm64")
    assert config["rootfs"] == before.config["rootfs"]


def test_mutate_cli_bad_inputs(registry: LocalRegistry, tmp_path: Path) -> None:
    source = f"{registry.host}/app:1"
    build_push(source, tmp_path, {"a.txt": "a\n"}, platforms=[])
    cache = ["--cache-dir", str(tmp_path / "cache")]
    ok = run_cli("mutate", source, "--tag", "2", "--env", "X=1", "-q", *cache)
    assert ok.returncode == 0 and ok.stdout.strip().startswith("sha256:"), ok.stderr
    cases = [
        (["mutate", source, "--tag", f"{registry.host}/app@sha256:{'1' * 64}", "--env", "X=1"], 2, "names a digest"),
        (["mutate", source, "--tag", "3", "--env", "X"], 2, "expected KEY=VALUE"),
        (["mutate", source, "--tag", "3", "--set-platform", "amd64"], 2, "invalid platform"),
        (["mutate", f"{registry.host}/nothing:1", "--tag", "3"], 3, "nothing"),
    ]
    assert_cli_errors(cases, *cache)


def test_rebase_swaps_the_base_layers_and_keeps_the_app(registry: LocalRegistry, tmp_path: Path) -> None:
    old_base, new_base = f"{registry.host}/base:1", f"{registry.host}/base:2"
    build_push(old_base, tmp_path, {"etc/base-release": "1\n", "lib/old.so": "old\n"})
    build_push(new_base, tmp_path, {"etc/base-release": "2\n", "lib/new.so": "new\n"})
    app = f"{registry.host}/app:1"
    build_push(app, tmp_path, {"app/main.txt": "app\n"}, base=old_base, env={"APP": "1"})
    original = api.inspect(app, options=options(tmp_path))
    new = api.inspect(new_base, options=options(tmp_path))
    start = log_mark(registry)

    result = rebase(app, new_base, "rebased", options=options(tmp_path))
    assert len(blob_gets(registry, start)) == 3  # the three configs, no layer
    assert set(result.blobs.values()) <= {"exists", "mounted", "uploaded"}
    rebased = api.inspect(f"{registry.host}/app:rebased", options=options(tmp_path))
    assert rebased.manifest["layers"] == new.manifest["layers"] + original.manifest["layers"][1:]
    annotations = rebased.manifest["annotations"]
    assert annotations["org.opencontainers.image.base.name"] == new_base
    assert annotations["org.opencontainers.image.base.digest"] == new.digest
    assert rebased.config and new.config and original.config
    assert rebased.config["rootfs"]["diff_ids"] == (
        new.config["rootfs"]["diff_ids"] + original.config["rootfs"]["diff_ids"][1:]
    )
    assert len(rebased.config["history"]) == len(original.config["history"])
    assert rebased.config["config"]["Env"] == original.config["config"]["Env"]

    rootfs = tmp_path / "rootfs"
    api.pull_rootfs(f"{registry.host}/app:rebased", str(rootfs), platform="linux/amd64", options=options(tmp_path))
    assert (rootfs / "etc/base-release").read_text() == "2\n"
    assert (rootfs / "lib/new.so").exists() and not (rootfs / "lib/old.so").exists()
    assert (rootfs / "app/main.txt").read_text() == "app\n"


def test_rebase_gives_the_new_base_layers_the_image_manifest_family(registry: LocalRegistry, tmp_path: Path) -> None:
    oci_base, new_base = f"{registry.host}/base:oci", f"{registry.host}/base:new"
    build_push(oci_base, tmp_path, {"etc/base": "1\n"})
    build_push(new_base, tmp_path, {"etc/base": "2\n"})  # OCI layers
    docker_base = f"{registry.host}/base:docker"
    api.copy(oci_base, docker_base, conversion=Conversion("keep", "docker"), options=options(tmp_path))
    app = f"{registry.host}/app:docker"
    build_push(app, tmp_path, {"app.txt": "app\n"}, base=docker_base)
    assert api.inspect(app, options=options(tmp_path)).media_type == mt.DOCKER_MANIFEST

    rebase(app, new_base, "rebased", options=options(tmp_path))
    rebased = api.inspect(f"{registry.host}/app:rebased", options=options(tmp_path))
    new_layers = api.inspect(new_base, options=options(tmp_path)).manifest["layers"]
    assert rebased.media_type == mt.DOCKER_MANIFEST
    assert [layer["mediaType"] for layer in rebased.manifest["layers"]] == [mt.DOCKER_LAYER_GZIP] * 2
    assert rebased.manifest["layers"][0]["digest"] == new_layers[0]["digest"]  # the same blob, retyped


def test_rebase_refuses_a_prefix_that_does_not_match(registry: LocalRegistry, tmp_path: Path) -> None:
    base, other = f"{registry.host}/base:1", f"{registry.host}/other:1"
    build_push(base, tmp_path, {"etc/base": "1\n"})
    build_push(other, tmp_path, {"etc/other": "1\n"})
    app = f"{registry.host}/app:1"
    build_push(app, tmp_path, {"app.txt": "app\n"}, base=base)
    plain = f"{registry.host}/plain:1"
    build_push(plain, tmp_path, {"plain.txt": "plain\n"})
    cache = ["--cache-dir", str(tmp_path / "cache")]
    cases = [
        (["rebase", app, "--new-base", other, "--old-base", other, "--tag", "x"], 2, "not the bottom layers"),
        (["rebase", plain, "--new-base", other, "--tag", "x"], 2, "use --old-base"),
        (["rebase", app, "--new-base", f"{registry.host}/none:1", "--tag", "x"], 3, "none"),
        (["rebase", app, "--new-base", other, "--tag", f"{registry.host}/app@sha256:{'2' * 64}"], 2, "digest"),
    ]
    assert_cli_errors(cases, *cache)
