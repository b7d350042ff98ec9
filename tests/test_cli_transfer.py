"""The transfer commands as a user runs them: results on stdout, one-line errors and exit codes."""

from __future__ import annotations

import base64
import json
from pathlib import Path

from support.handles import RegistryHandle
from transferhelpers import assert_one_line_error, make_image, run_cli

from ocipush.layout import OCILayout
from ocipush.localregistry import LocalRegistry


def _cache(tmp_path: Path) -> list[str]:
    return ["--cache-dir", str(tmp_path / "cache")]


def test_push_pull_tags_digest_inspect_delete(registry: LocalRegistry, tmp_path: Path) -> None:
    source, descriptor = make_image(tmp_path / "src")
    ref = f"{registry.host}/cli/app:v1"
    pushed = run_cli("push", source.path, ref, "--tag", "latest", "--json", *_cache(tmp_path))
    assert pushed.returncode == 0, pushed.stderr
    assert json.loads(pushed.stdout)["digest"] == descriptor.digest
    assert pushed.stderr.count("done ") == 2  # one plain line per blob event when not on a terminal

    assert run_cli("digest", ref).stdout.strip() == descriptor.digest
    assert sorted(run_cli("tags", f"{registry.host}/cli/app").stdout.split()) == ["latest", "v1"]
    assert run_cli("catalog", registry.host).stdout.split() == ["cli/app"]
    config = json.loads(run_cli("inspect", "--config", ref).stdout)
    assert config["architecture"] == "amd64"

    pulled = run_cli("pull", "-q", ref, str(tmp_path / "out"), *_cache(tmp_path))
    assert pulled.returncode == 0 and pulled.stdout.strip() == descriptor.digest
    assert OCILayout(str(tmp_path / "out")).resolve().digest == descriptor.digest
    rootfs = run_cli("pull", "--format", "rootfs", ref, str(tmp_path / "rootfs"), *_cache(tmp_path))
    assert rootfs.returncode == 0, rootfs.stderr
    assert (tmp_path / "rootfs" / "etc" / "hello.txt").read_text() == "hello 1\n"

    assert run_cli("delete", ref).returncode == 0
    assert_one_line_error(run_cli("digest", ref), "not found")


def test_credentials_from_stdin_and_docker_config(auth_registry: RegistryHandle, tmp_path: Path) -> None:
    source, _ = make_image(tmp_path / "src")
    user, password = auth_registry.auth
    ref = f"{auth_registry.host}/app:v1"
    done = run_cli("push", source.path, ref, "--username", user, "--password-stdin", *_cache(tmp_path), stdin=password)
    assert done.returncode == 0, done.stderr
    config_dir = tmp_path / "docker"
    config_dir.mkdir()
    auth = base64.b64encode(f"{user}:{password}".encode()).decode()
    (config_dir / "config.json").write_text(json.dumps({"auths": {auth_registry.host: {"auth": auth}}}))
    assert run_cli("digest", ref, env={"DOCKER_CONFIG": str(config_dir)}).returncode == 0
    wrong = run_cli("digest", ref, "--username", user, "--password-stdin", stdin="nope")
    assert_one_line_error(wrong, "rejected the credentials")
    assert wrong.returncode == 4
    assert password not in wrong.stderr
    anonymous = run_cli("digest", ref, env={"DOCKER_CONFIG": str(tmp_path / "none")})
    assert_one_line_error(anonymous, "requires credentials")


def test_bad_input_gives_one_line_errors(registry: LocalRegistry, tmp_path: Path) -> None:
    assert_one_line_error(run_cli("digest", "UPPER/case:1"), "invalid reference")
    assert run_cli("digest", "UPPER/case:1").returncode == 2
    missing = run_cli("digest", f"{registry.host}/nothing/here:v1")
    assert_one_line_error(missing, "not found")
    assert missing.returncode == 3
    assert_one_line_error(run_cli("push", str(tmp_path / "absent"), f"{registry.host}/x:1"))
    assert_one_line_error(run_cli("pull", "127.0.0.1:1/x:1", str(tmp_path / "o"), "--jobs", "0"), "--jobs")
    unreachable = run_cli("digest", "127.0.0.1:1/x:1")
    assert_one_line_error(unreachable, "cannot connect")


def test_corrupted_blobs_are_refused(registry: LocalRegistry, tmp_path: Path) -> None:
    source, descriptor = make_image(tmp_path / "src", big=1 << 20)
    manifest = source.read_manifest(descriptor).manifest
    layer = Path(source.blob_path(manifest.layers[0].digest))
    layer.write_bytes(b"x" + layer.read_bytes()[1:])
    pushed = run_cli("push", source.path, f"{registry.host}/bad:v1", *_cache(tmp_path))
    assert_one_line_error(pushed, "DIGEST_INVALID")


def test_corrupted_download_is_removed(registry: LocalRegistry, tmp_path: Path) -> None:
    source, descriptor = make_image(tmp_path / "src", big=1 << 20)
    ref = f"{registry.host}/app:v1"
    assert run_cli("push", source.path, ref, *_cache(tmp_path)).returncode == 0
    layer_digest = source.read_manifest(descriptor).manifest.layers[0].digest
    stored = next((tmp_path / "storage").rglob(f"blobs/sha256/*/{layer_digest[7:]}/data"))
    good = stored.read_bytes()
    stored.write_bytes(b"x" + good[1:])
    pulled = run_cli("pull", ref, str(tmp_path / "out"), *_cache(tmp_path))
    assert_one_line_error(pulled, "hashes to")
    assert pulled.returncode == 7
    assert not (tmp_path / "out").exists()  # a new layout appears only once complete
    partial = OCILayout(str(tmp_path / ".out.partial"))  # kept beside it, for the next attempt to continue
    assert not partial.has_blob(layer_digest)
    # the corrupted download is gone (a blob stopped half-way because of it may keep its partial, to resume)
    assert not (Path(partial.path, ".ingest") / f"{layer_digest[7:]}.partial").exists()
    assert partial.read_index().manifests == []
    stored.write_bytes(good)
    assert run_cli("pull", ref, str(tmp_path / "out"), *_cache(tmp_path)).returncode == 0
    assert OCILayout(str(tmp_path / "out")).has_blob(layer_digest)
    assert not (tmp_path / ".out.partial").exists()


def test_missing_paths_and_non_empty_rootfs_are_refused_before_any_transfer(
    registry: LocalRegistry, tmp_path: Path
) -> None:
    assert_one_line_error(run_cli("push", str(tmp_path / "absent"), f"{registry.host}/x:1"), "no such file")
    source, _ = make_image(tmp_path / "src")
    ref = f"{registry.host}/app:v1"
    assert run_cli("push", source.path, ref, *_cache(tmp_path)).returncode == 0
    busy = tmp_path / "busy"
    busy.mkdir()
    (busy / "keep.txt").write_text("mine")
    done = run_cli("pull", "--format", "rootfs", ref, str(busy), *_cache(tmp_path))
    assert_one_line_error(done, "is not empty")
    assert [p.name for p in busy.iterdir()] == ["keep.txt"]
    assert "start" not in done.stderr  # refused before anything was downloaded
