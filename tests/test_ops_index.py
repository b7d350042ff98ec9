"""Index authoring and tags against the real distribution registry (moto's real ECR API for untag)."""

from __future__ import annotations

import json
from pathlib import Path

import boto3
import imagehelpers as ih
from support.handles import RegistryHandle
from transferhelpers import assert_cli_errors, assert_one_line_error, log_between, log_mark, options, run_cli

from ocipush import api
from ocipush.layout import OCILayout
from ocipush.localregistry import LocalRegistry
from ocipush.ops.index import append_index, create_index, filter_index, remove_from_index
from ocipush.ops.tags import tag, untag


def push_arch_image(host: str, repo: str, arch: str, tmp_path: Path, text: str = "") -> str:
    """A one-layer image whose config says linux/`arch`, pushed to host/repo:latest; returns its digest."""
    layout = OCILayout(str(tmp_path / f"src-{arch}-{repo.replace('/', '-')}"), create=True)
    ih.build_image(layout, [([ih.file("etc/arch", f"{arch}{text}\n")], "gzip")], tag="latest", arch=arch)
    return api.push(f"oci:{layout.path}:latest", f"{host}/{repo}:latest", options=options(tmp_path)).digest


def index_of(reference: str, tmp_path: Path) -> dict[str, object]:
    found = api.inspect(reference, options=options(tmp_path))
    assert found.media_type.endswith("index.v1+json") or "list" in found.media_type
    return found.manifest


def platforms(manifest: dict[str, object]) -> dict[str, str]:
    entries = manifest["manifests"]
    assert isinstance(entries, list)
    return {f"{e['platform']['os']}/{e['platform']['architecture']}": e["digest"] for e in entries}


def test_index_from_two_repositories_mounts_and_reads_platforms_from_configs(
    registry: LocalRegistry, tmp_path: Path
) -> None:
    amd = push_arch_image(registry.host, "build/amd64", "amd64", tmp_path)
    arm = push_arch_image(registry.host, "build/arm64", "arm64", tmp_path)
    result = create_index(
        f"{registry.host}/app:1",
        [f"{registry.host}/build/amd64:latest", f"{registry.host}/build/arm64:latest"],
        annotations={"org.opencontainers.image.version": "1"},
        options=options(tmp_path),
    )
    assert set(result.blobs.values()) == {"mounted"} and len(result.blobs) == 4  # 2 configs + 2 layers
    manifest = index_of(f"{registry.host}/app:1", tmp_path)
    assert platforms(manifest) == {"linux/amd64": amd, "linux/arm64": arm}
    assert manifest["annotations"] == {"org.opencontainers.image.version": "1"}
    pulled = api.pull(f"{registry.host}/app:1", f"oci:{tmp_path / 'out'}", platform="linux/arm64",
                      options=options(tmp_path))  # fmt: skip
    assert pulled.digest == arm


def test_index_across_registries_streams_the_children(registry: LocalRegistry, tmp_path: Path) -> None:
    amd = push_arch_image(registry.host, "amd", "amd64", tmp_path)
    with LocalRegistry() as other:
        arm = push_arch_image(other.host, "arm", "arm64", tmp_path)
        result = create_index(
            f"{registry.host}/multi:1",
            [f"{registry.host}/amd:latest", f"{other.host}/arm:latest"],
            options=options(tmp_path),
        )
    assert sorted(result.blobs.values()) == ["mounted", "mounted", "uploaded", "uploaded"]
    assert platforms(index_of(f"{registry.host}/multi:1", tmp_path)) == {"linux/amd64": amd, "linux/arm64": arm}


def test_append_filter_remove(registry: LocalRegistry, tmp_path: Path) -> None:
    amd = push_arch_image(registry.host, "amd", "amd64", tmp_path)
    arm = push_arch_image(registry.host, "arm", "arm64", tmp_path)
    s390 = push_arch_image(registry.host, "s390x", "s390x", tmp_path)
    target = f"{registry.host}/app:multi"
    opts = options(tmp_path)
    create_index(target, [f"{registry.host}/amd:latest"], options=opts)
    append_index(target, [f"{registry.host}/arm:latest", f"{registry.host}/s390x:latest"], options=opts)
    assert platforms(index_of(target, tmp_path)) == {"linux/amd64": amd, "linux/arm64": arm, "linux/s390x": s390}

    filter_index(target, ["linux/amd64", "linux/arm64"], output="two", options=opts)
    assert platforms(index_of(f"{registry.host}/app:two", tmp_path)) == {"linux/amd64": amd, "linux/arm64": arm}
    assert len(platforms(index_of(target, tmp_path))) == 3  # the source index is left as it was

    remove_from_index(target, platforms=["linux/s390x"], digests=[amd], options=opts)
    assert platforms(index_of(target, tmp_path)) == {"linux/arm64": arm}


def test_index_cli_and_its_bad_inputs(registry: LocalRegistry, tmp_path: Path) -> None:
    push_arch_image(registry.host, "amd", "amd64", tmp_path)
    push_arch_image(registry.host, "amd2", "amd64", tmp_path, text=" again")  # same platform, other content
    image = f"{registry.host}/amd:latest"
    target = f"{registry.host}/app:1"
    cache = ["--cache-dir", str(tmp_path / "cache")]
    done = run_cli("index", "create", target, "--manifest", image, "--json", *cache)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["target"] == target

    cases = [
        (["index", "filter", image, "--platform", "linux/amd64"], 2, "is not an index"),
        (["index", "filter", target, "--platform", "linux/arm64"], 3, "no image for platform linux/arm64"),
        (["index", "filter", target, "--platform", "linux"], 2, "invalid platform"),
        (["index", "create", f"{target}@sha256:{'0' * 64}", "--manifest", image], 2, "names a digest"),
        (["index", "create", target], 2, "at least one --manifest"),
        (["index", "create", target, "-m", image, "-m", f"{registry.host}/amd2:latest"], 2, "two images for"),
        (["index", "remove", target, "--platform", "linux/amd64"], 2, "would leave"),
        (["index", "append", target, "-m", f"{registry.host}/missing:1"], 3, "missing"),
    ]
    assert_cli_errors(cases, *cache)


def test_tag_is_one_manifest_put_and_untag_is_refused_outside_ecr(registry: LocalRegistry, tmp_path: Path) -> None:
    digest = push_arch_image(registry.host, "app", "amd64", tmp_path)
    start = log_mark(registry)
    assert tag(f"{registry.host}/app:latest", ["v1", "stable"], options=options(tmp_path)) == digest
    requests = [line for line in log_between(registry, start, log_mark(registry)) if "/v2/app/" in line]
    assert sum('"PUT /v2/app/manifests/' in line for line in requests) == 2
    assert not any("/blobs/" in line for line in requests)
    for new in ("v1", "stable"):
        assert api.resolve_digest(f"{registry.host}/app:{new}", options=options(tmp_path)) == digest

    assert_cli_errors(
        [
            (["tag", f"{registry.host}/app:latest", "bad tag!"], 2, "invalid tag"),
            (["tag", f"{registry.host}/nothing:1", "v2"], 3, "nothing"),
            (["untag", f"{registry.host}/app@{digest}"], 2, "untag takes REPOSITORY:TAG"),
        ],
        "--cache-dir",
        str(tmp_path / "cache"),
    )
    done = run_cli("untag", f"{registry.host}/app:v1", "--cache-dir", str(tmp_path / "cache"))
    assert done.returncode == 2
    assert_one_line_error(done, "cannot remove a tag without deleting the manifest", "ocipush delete")
    assert api.resolve_digest(f"{registry.host}/app:v1", options=options(tmp_path)) == digest


def test_untag_on_ecr_deletes_only_the_tag(ecr_registry: RegistryHandle, tmp_path: Path) -> None:
    # The tag lives in moto's ECR (the real boto3 call against moto's service); the registry itself is not asked.
    ecr = boto3.client("ecr", region_name="us-east-1")
    ecr.create_repository(repositoryName="untag/app")
    manifest = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                           "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "size": 2,
                                      "digest": "sha256:" + "4" * 64}, "layers": []})  # fmt: skip
    for name in ("v1", "v2"):
        ecr.put_image(repositoryName="untag/app", imageManifest=manifest, imageTag=name)
    host = "123456789012.dkr.ecr.us-east-1.amazonaws.com"
    untag(f"{host}/untag/app:v1", options=options(tmp_path))
    tags = {i.get("imageTag") for i in ecr.list_images(repositoryName="untag/app")["imageIds"]}
    assert tags == {"v2"}
    done = run_cli("untag", f"{host}/untag/app:nope", "--cache-dir", str(tmp_path / "cache"))
    assert done.returncode == 3
    assert_one_line_error(done, "ImageNotFound")
