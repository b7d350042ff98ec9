"""Local outputs of a build on a registry base are complete images that podman, skopeo and umoci use; one
media-type family per manifest."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from buildhelpers import run, validate, validate_layout
from support.bases import push_base
from support.runtime import Podman

from ocipush import mediatypes as mt
from ocipush.build.image import BASE_NAME
from ocipush.layout import OCILayout
from ocipush.localregistry import LocalRegistry


@pytest.fixture
def app(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A script that says where it runs; the build's cache dir is the test's own."""
    monkeypatch.setenv("OCIPUSH_CACHE_DIR", str(tmp_path / "cache"))
    src = tmp_path / "app"
    src.mkdir()
    (src / "hello.sh").write_text(
        'if [ -f /etc/os-release ]; then from=$(head -1 /etc/os-release); else from=busybox; fi\n'
        'echo "hello from $from"\n'
    )
    return src


HELLO = '["/bin/sh", "/app/hello.sh"]'


def build_on(base: str, app: Path, output: str, *extra: str) -> int:
    return run("build", "--no-build-file", "--from", base, "--layer", f"{app}:/app", "--cmd", HELLO,
               "--output", output, *extra)  # fmt: skip


def skopeo(*args: str) -> str:
    done = subprocess.run(["skopeo", *args], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_docker_archive_from_registry_base_runs_in_podman(
    registry: LocalRegistry, debian_base: Path, podman: Podman, app: Path, tmp_path: Path
) -> None:
    base = push_base(debian_base, registry.host, "debian")
    archive = tmp_path / "app.tar"
    assert build_on(base, app, f"docker-archive:{archive}:localhost/app:debian") == 0
    assert "localhost/app:debian" in podman.load(archive)
    said = podman.run("localhost/app:debian", pull=False).strip()
    assert said == 'hello from PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"'


def test_oci_output_from_registry_base_is_complete(
    registry: LocalRegistry, busybox_base: Path, podman: Podman, app: Path, tmp_path: Path
) -> None:
    base = push_base(busybox_base, registry.host, "busybox")  # a Docker v2s2 image
    out = tmp_path / "out"
    assert build_on(base, app, f"oci:{out}:v1", "--annotation", "org.example=yes") == 0
    layout = OCILayout(str(out))
    manifest = json.loads(layout.read_blob(layout.resolve("v1").digest))
    # The base's layer is there (downloaded and verified), under its OCI name: one family in the manifest.
    assert all(layout.has_blob(layer["digest"]) for layer in manifest["layers"])
    assert {layer["mediaType"] for layer in manifest["layers"]} == {mt.OCI_LAYER_GZIP}
    assert manifest["annotations"]["org.example"] == "yes" and manifest["annotations"][BASE_NAME] == base
    validate_layout(out)
    # skopeo copies it, umoci unpacks it, podman runs the copy.
    skopeo("copy", f"oci:{out}:v1", f"oci-archive:{tmp_path / 'copy.tar'}:localhost/app:busybox")
    assert podman.load(tmp_path / "copy.tar")
    assert podman.run("localhost/app:busybox", pull=False).strip() == "hello from busybox"
    subprocess.run(["umoci", "unpack", "--image", f"{out}:v1", str(tmp_path / "bundle")], check=True,
                   capture_output=True)  # fmt: skip
    assert (tmp_path / "bundle/rootfs/bin/busybox").is_file()
    assert (tmp_path / "bundle/rootfs/app/hello.sh").is_file()


def test_layout_without_base_layers_only_when_asked(
    registry: LocalRegistry, busybox_base: Path, podman: Podman, app: Path, tmp_path: Path
) -> None:
    base = push_base(busybox_base, registry.host, "busybox")
    out = tmp_path / "thin"
    assert build_on(base, app, f"oci:{out}:v1", "--no-base-layers") == 0
    layout = OCILayout(str(out))
    manifest = json.loads(layout.read_blob(layout.resolve("v1").digest))
    base_layer, app_layer = manifest["layers"]
    assert not layout.has_blob(base_layer["digest"]) and layout.has_blob(app_layer["digest"])
    # Pushing it takes the base's layer from the base's registry (a mount: same registry).
    target = f"{registry.host}/thin:v1"
    done = subprocess.run([sys.executable, "-m", "ocipush.cli", "push", "--json", f"oci:{out}:v1", target],
                          capture_output=True, text=True, check=False)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["blobs"]["mounted"] == 1
    assert podman.run(target).strip() == "hello from busybox"
    # A docker archive cannot leave them out.
    assert build_on(base, app, f"docker-archive:{tmp_path / 'x.tar'}", "--no-base-layers") == 2
    assert not (tmp_path / "x.tar").exists()


def test_build_push_on_docker_base_one_family(
    registry: LocalRegistry, busybox_base: Path, podman: Podman, app: Path, tmp_path: Path
) -> None:
    base = push_base(busybox_base, registry.host, "busybox")
    common = ["--no-build-file", "--from", base, "--cmd", HELLO, "--annotation", "a=b"]
    # gzip: the base's family, Docker, with nothing outside the Docker spec.
    assert run("build-push", f"{app}:/app", "--tag", f"{registry.host}/app:docker", *common) == 0
    raw = json.loads(skopeo("inspect", "--tls-verify=false", "--raw", f"docker://{registry.host}/app:docker"))
    assert set(raw) == {"schemaVersion", "mediaType", "config", "layers"}
    assert raw["mediaType"] == mt.DOCKER_MANIFEST
    assert {layer["mediaType"] for layer in raw["layers"]} == {mt.DOCKER_LAYER_GZIP}
    # zstd: OCI throughout, the base's layer under its OCI name (the same bytes), schema-valid.
    assert run("build-push", f"{app}:/app", "--tag", f"{registry.host}/app:zstd", "--compression", "zstd", *common) == 0
    raw = json.loads(skopeo("inspect", "--tls-verify=false", "--raw", f"docker://{registry.host}/app:zstd"))
    validate("manifest", raw)
    assert raw["config"]["mediaType"] == mt.OCI_CONFIG
    assert [layer["mediaType"] for layer in raw["layers"]] == [mt.OCI_LAYER_GZIP, mt.OCI_LAYER_ZSTD]
    assert raw["annotations"]["a"] == "b"
    config = json.loads(skopeo("inspect", "--tls-verify=false", "--config", f"docker://{registry.host}/app:zstd"))
    validate("config", config)
    for tag in ("docker", "zstd"):
        assert podman.run(f"{registry.host}/app:{tag}").strip() == "hello from busybox"
