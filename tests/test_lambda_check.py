"""What AWS Lambda requires of an image, checked before the push (on images shaped like AWS's Lambda bases:
LAMBDA_TASK_ROOT in the environment, the handler named in CMD)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from transferhelpers import log_between, log_mark

from ocipush.cli import main
from ocipush.localregistry import LocalRegistry
from ocipush.models import host_platform

LAMBDA_ENV = ["--env", "LAMBDA_TASK_ROOT=/var/task", "--entrypoint", "/lambda-entrypoint.sh"]


@pytest.fixture
def app(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("OCIPUSH_CACHE_DIR", str(tmp_path / "cache"))
    (tmp_path / "app" / "pkg").mkdir(parents=True)
    (tmp_path / "app" / "handler.py").write_text("def handler(event, context):\n    return 'ok'\n")
    (tmp_path / "app" / "pkg" / "__init__.py").write_text("")
    return tmp_path / "app"


def _build(app: Path, out: Path, *extra: str) -> int:
    return main(["build", "--no-build-file", "--output", f"oci:{out}:v1", "--layer", f"{app}:/var/task",
                 *LAMBDA_ENV, *extra])  # fmt: skip


def _problems(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, list[str]]:
    capsys.readouterr()
    code = main(["lambda-check", *argv, "--json"])
    return code, [p["check"] for p in json.loads(capsys.readouterr().out)["problems"]]


def test_a_lambda_shaped_image_passes(app: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert _build(app, tmp_path / "ok", "--platform", "linux/arm64", "--cmd", "handler.handler") == 0
    assert _problems(capsys, f"oci:{tmp_path / 'ok'}:v1", "--platform", "linux/arm64") == (0, [])
    # a package handler resolves to pkg/__init__.py
    assert _build(app, tmp_path / "pkg", "--platform", "linux/amd64", "--cmd", "pkg.handler") == 0
    assert _problems(capsys, f"oci:{tmp_path / 'pkg'}:v1") == (0, [])


def test_every_problem_is_reported_at_once(app: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert _build(app, tmp_path / "bad", "--platform", "linux/s390x", "--cmd", "missing.handler") == 0
    code, checks = _problems(capsys, f"oci:{tmp_path / 'bad'}:v1")
    assert (code, checks) == (11, ["architecture", "handler"])
    assert _build(app, tmp_path / "arm", "--platform", "linux/arm64", "--cmd", "handler.handler") == 0
    assert _problems(capsys, f"oci:{tmp_path / 'arm'}:v1", "--platform", "linux/amd64") == (11, ["architecture"])
    assert _build(app, tmp_path / "multi", "--platform", "linux/amd64,linux/arm64", "--cmd", "handler.handler") == 0
    assert _problems(capsys, f"oci:{tmp_path / 'multi'}:v1") == (11, ["single-platform"])


def test_build_push_with_lambda_refuses_to_push_an_image_lambda_would_refuse(
    app: Path, registry: LocalRegistry, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["build-push", "--no-build-file", "--layer", f"{app}:/var/task", *LAMBDA_ENV, "--cmd", "nope.handler",
                 "--lambda", "--tag", f"{registry.host}/fn/bad:v1"])  # fmt: skip
    assert code == 11
    assert "nope.handler needs /var/task/nope.py" in capsys.readouterr().err
    # No image is pushed (new layer blobs may already be there: build-push uploads them as they are compressed).
    assert not [line for line in log_between(registry, 0, log_mark(registry)) if '"PUT /v2/fn/bad/manifests/' in line]


def test_a_multi_platform_lambda_build_pushes_one_tag_per_architecture(
    app: Path, registry: LocalRegistry, capsys: pytest.CaptureFixture[str]
) -> None:
    target = f"{registry.host}/fn/app"
    assert main(["build-push", "--no-build-file", "--layer", f"{app}:/var/task", *LAMBDA_ENV, "--cmd",
                 "handler.handler", "--platform", "linux/amd64,linux/arm64", "--lambda", "--tag", f"{target}:v1",
                 "--quiet"]) == 0  # fmt: skip
    capsys.readouterr()
    assert main(["tags", f"{target}"]) == 0
    assert sorted(capsys.readouterr().out.split()) == ["v1-amd64", "v1-arm64"]
    for arch in ("amd64", "arm64"):
        assert _problems(capsys, f"{target}:v1-{arch}", "--platform", f"linux/{arch}") == (0, [])


def _tar(path: Path, members: dict[str, bytes | None]) -> Path:
    """A layer tarball: name -> file contents (None: a hard link to the first member)."""
    import io
    import tarfile

    first = next(iter(members))
    with tarfile.open(path, "w") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            if data is None:
                info.type, info.linkname = tarfile.LNKTYPE, first
                tar.addfile(info)
            else:
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
    return path


def test_the_handler_is_looked_up_as_the_runtime_sees_the_layers(
    app: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # An opaque directory in a higher layer hides the task root's files below it: the handler is gone.
    opaque = _tar(tmp_path / "opaque.tar", {"var/task/.wh..wh..opq": b"", "var/task/other.py": b""})
    assert _build(app, tmp_path / "hidden", "--cmd", "handler.handler", "--layer-tar", str(opaque)) == 0
    assert _problems(capsys, f"oci:{tmp_path / 'hidden'}:v1") == (11, ["handler"])
    # A handler module that is a hard link to another file of its layer is a file all the same.
    linked = _tar(tmp_path / "linked.tar", {"var/task/impl.py": b"def handler(e, c): pass\n", "var/task/fn.py": None})
    assert _build(app, tmp_path / "linked", "--cmd", "fn.handler", "--layer-tar", str(linked)) == 0
    assert _problems(capsys, f"oci:{tmp_path / 'linked'}:v1") == (0, [])


def test_a_refused_build_leaves_an_existing_layout_tag_alone(
    app: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out"
    assert _build(app, out, "--cmd", "handler.handler", "--lambda") == 0
    before = (out / "index.json").read_bytes()
    capsys.readouterr()
    assert _build(app, out, "--cmd", "nope.handler", "--lambda") == 11
    # One line, each problem named with the platform it was found on (not "None" for a single-platform build).
    err = capsys.readouterr().err
    assert err.startswith("ocipush: error: the image is not ready for AWS Lambda: ")
    assert f": {host_platform()}: handler: nope.handler needs /var/task/nope.py" in err
    assert err.count("\n") == 1 and "\\x0a" not in err
    assert (out / "index.json").read_bytes() == before  # v1 still names the image that passed


def test_a_fresh_runner_reads_a_registry_bases_layers_once_for_a_lambda_build(
    app: Path, tmp_path: Path, registry: LocalRegistry, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The base index (for the layer's place under /var/task) and the size check both need every base layer's
    # headers: one pass serves both, so --lambda does not stream the base a second time.
    basefs = tmp_path / "basefs"
    (basefs / "var" / "task").mkdir(parents=True)
    (basefs / "var" / "runtime.bin").write_bytes(b"x" * 100_000)
    base = f"{registry.host}/lambda/base:1"
    assert main(["build-push", "--no-build-file", "--layer", f"{basefs}:/", *LAMBDA_ENV, "--tag", base]) == 0
    monkeypatch.setenv("OCIPUSH_CACHE_DIR", str(tmp_path / "fresh-runner"))
    code = main(["build-push", "--no-build-file", "--from", base, "--layer", f"{app}:/var/task", "--cmd",
                 "handler.handler", "--lambda", "--tag", f"{registry.host}/fn/fresh:v1"])  # fmt: skip
    assert code == 0
    lines = log_between(registry, 0, log_mark(registry))  # the access log is written behind the requests
    layer_gets = [line for line in lines if '"GET /v2/lambda/base/blobs/sha256:' in line]
    assert len(layer_gets) == 2  # the config once, the one layer once


def test_a_multi_platform_lambda_build_keeps_its_sboms(
    app: Path, registry: LocalRegistry, capsys: pytest.CaptureFixture[str]
) -> None:
    # --sbom is not dropped on the one-tag-per-architecture path: each architecture's image gets its SBOM.
    capsys.readouterr()
    assert main(["build-push", "--no-build-file", "--layer", f"{app}:/var/task", *LAMBDA_ENV, "--cmd",
                 "handler.handler", "--platform", "linux/amd64,linux/arm64", "--lambda", "--sbom", "--json",
                 "--tag", f"{registry.host}/fn/sbom:v1"]) == 0  # fmt: skip
    assert len(json.loads(capsys.readouterr().out)["referrers"]) == 2


def test_a_multi_platform_lambda_build_signs_every_architecture(
    app: Path, tmp_path: Path, registry: LocalRegistry, monkeypatch: pytest.MonkeyPatch
) -> None:
    # --sign-key signs each TAG-ARCH image, not only the first one pushed.
    from ocipush import supply

    supply.generate_key_pair(str(tmp_path), lambda: b"pw")
    monkeypatch.setenv("COSIGN_PASSWORD", "pw")
    target = f"{registry.host}/fn/signed"
    assert main(["build-push", "--no-build-file", "--layer", f"{app}:/var/task", *LAMBDA_ENV, "--cmd",
                 "handler.handler", "--platform", "linux/amd64,linux/arm64", "--lambda", "--quiet",
                 "--sign-key", str(tmp_path / "cosign.key"), "--tag", f"{target}:v1"]) == 0  # fmt: skip
    for arch in ("amd64", "arm64"):
        assert main(["verify", f"{target}:v1-{arch}", "--key", str(tmp_path / "cosign.pub"), "--quiet"]) == 0
