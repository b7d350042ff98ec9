"""What the commands print: the words (downloads are not uploads), one JSON shape for every transfer, JSON
errors under --json, and the tags a push set."""

from __future__ import annotations

import json
from pathlib import Path

import imagehelpers as ih
from transferhelpers import assert_one_line_error, make_image, options, run_cli

from ocipush import api
from ocipush.layout import OCILayout
from ocipush.localregistry import LocalRegistry

TRANSFER_KEYS = {"target", "digest", "mediaType", "size", "tags", "blobs", "createdRepository", "referrers"}


def _cache(tmp_path: Path) -> list[str]:
    return ["--cache-dir", str(tmp_path / "cache")]


def test_pull_reports_downloads_not_uploads(registry: LocalRegistry, tmp_path: Path) -> None:
    source, descriptor = make_image(tmp_path / "src")
    ref = f"{registry.host}/words/app:v1"
    api.push(f"oci:{source.path}:v1", ref, options=options(tmp_path))

    pulled = api.pull(ref, f"oci:{tmp_path / 'lib'}", options=options(tmp_path))
    assert set(pulled.blobs.values()) == {"downloaded"}
    assert pulled.downloaded == 2 and pulled.uploaded == 0
    assert pulled.counts == {"downloaded": 2, "copied": 0, "exists": 0}
    local = api.copy(f"oci:{tmp_path / 'lib'}", f"oci:{tmp_path / 'again'}", options=options(tmp_path))
    assert set(local.blobs.values()) == {"copied"}

    text = run_cli("pull", ref, str(tmp_path / "out"), *_cache(tmp_path))
    assert text.returncode == 0, text.stderr
    assert "2 downloaded" in text.stdout and "uploaded" not in text.stdout
    as_json = run_cli("pull", "--json", ref, str(tmp_path / "out2"), *_cache(tmp_path))
    data = json.loads(as_json.stdout)
    assert set(data) == TRANSFER_KEYS
    assert data["blobs"] == {"downloaded": 2, "copied": 0, "exists": 0}
    assert data["digest"] == descriptor.digest


def test_push_and_build_push_share_one_json_shape(registry: LocalRegistry, tmp_path: Path) -> None:
    source, _ = make_image(tmp_path / "src")
    pushed = run_cli("push", "--json", source.path, f"{registry.host}/shape/a:v1", *_cache(tmp_path))
    push_data = json.loads(pushed.stdout)
    assert set(push_data) == TRANSFER_KEYS

    app = tmp_path / "app"
    app.mkdir()
    (app / "hello.txt").write_text("hi\n")
    built = run_cli("build-push", "--json", str(app), "--tag", f"{registry.host}/shape/b:v1", "--no-build-file",
                    *_cache(tmp_path))  # fmt: skip
    assert built.returncode == 0, built.stderr
    build_push_data = json.loads(built.stdout)
    assert set(build_push_data) == TRANSFER_KEYS | {"layers"}
    assert set(build_push_data["blobs"]) == set(push_data["blobs"])
    assert build_push_data["layers"][0]["dest"] == "/"

    build = run_cli("build", "--json", "--no-build-file", "--layer", f"{app}:/", "--output", f"oci:{tmp_path / 'o'}:v1")
    assert build.returncode == 0, build.stderr
    build_data = json.loads(build.stdout)
    assert build_data["digest"] == OCILayout(str(tmp_path / "o")).resolve("v1").digest
    assert build_data["layers"][0]["diffId"].startswith("sha256:")


def test_digest_json_and_json_errors(registry: LocalRegistry, tmp_path: Path) -> None:
    source, descriptor = make_image(tmp_path / "src")
    ref = f"{registry.host}/json/app:v1"
    api.push(f"oci:{source.path}:v1", ref, options=options(tmp_path))
    assert json.loads(run_cli("digest", "--json", ref).stdout) == {"reference": ref, "digest": descriptor.digest}

    missing = run_cli("digest", "--json", f"{registry.host}/json/app:nope")
    assert_one_line_error(missing, "not found")
    error = json.loads(missing.stdout)["error"]
    assert error["exitCode"] == missing.returncode == 3
    assert error["type"] == "NotFoundError"
    assert "not found" in error["message"]
    bad = run_cli("tags", "--json", "UPPER/x")
    assert json.loads(bad.stdout)["error"]["exitCode"] == bad.returncode == 2


def test_inspect_config_of_an_index_is_an_error(registry: LocalRegistry, tmp_path: Path) -> None:
    layout = OCILayout(str(tmp_path / "src"), create=True)
    amd = ih.build_image(layout, [([ih.file("arch", "amd64")], "gzip")], tag=None, arch="amd64")
    arm = ih.build_image(layout, [([ih.file("arch", "arm64")], "gzip")], tag=None, arch="arm64")
    ih.build_index(layout, [amd, arm], "multi")
    ref = f"{registry.host}/multi:1"
    api.push(f"oci:{layout.path}:multi", ref, options=options(tmp_path))
    done = run_cli("inspect", "--config", ref)
    assert_one_line_error(done, "is an index", "--platform")
    assert done.returncode == 2 and done.stdout == ""
    one = run_cli("inspect", "--config", "--platform", "linux/arm64", ref)
    assert json.loads(one.stdout)["architecture"] == "arm64"


def test_push_without_tag_says_latest_and_lists_extra_tags(registry: LocalRegistry, tmp_path: Path) -> None:
    source, _ = make_image(tmp_path / "src")
    done = run_cli("push", source.path, f"{registry.host}/notag", "--tag", "extra1", "-t", "extra2", *_cache(tmp_path))
    assert done.returncode == 0, done.stderr
    assert "tags: latest, extra1, extra2 (no tag given: latest is the default)" in done.stdout
    tagged = run_cli("push", source.path, f"{registry.host}/notag:v3", *_cache(tmp_path))
    assert "tags: v3\n" in tagged.stdout and "default" not in tagged.stdout
