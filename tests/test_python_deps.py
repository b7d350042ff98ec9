"""Python dependencies as layers: wheels per target architecture from a local wheelhouse (offline, real pip),
cached by their inputs, and the image run under podman on a Debian base with python3."""

from __future__ import annotations

import io
import json
import logging
import tarfile
from pathlib import Path

import pytest
from support.bases import push_base
from support.runtime import Podman
from support.server import BackgroundServer, QuietHandler
from support.wheels import wheelhouse
from transferhelpers import log_between, log_mark

from ocipush.cli import main
from ocipush.errors import BuildError
from ocipush.extract import decompress_stream
from ocipush.layout import OCILayout
from ocipush.localregistry import LocalRegistry
from ocipush.mediatypes import layer_compression

INSTALL_LOG = "installing python dependencies"


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A requirements file, the wheelhouse, a private cache dir; pip sees no index (PIP_* passes through)."""
    monkeypatch.setenv("OCIPUSH_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("PIP_NO_INDEX", "1")
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1700000000")
    wheelhouse(tmp_path / "wheels")
    (tmp_path / "requirements.txt").write_text("purelib==1.0\nfastmod==3.0\n")
    app = tmp_path / "app"
    app.mkdir()
    (app / "main.py").write_text(
        "import fastmod, purelib, sixish\nprint('purelib', purelib.VERSION, 'fastmod', fastmod.ARCH, sixish.NAME)\n"
    )
    return tmp_path


def _deps_args(project: Path, *extra: str) -> list[str]:
    return ["--no-build-file", "--requirements", str(project / "requirements.txt"),
            "--find-links", str(project / "wheels"), *extra]  # fmt: skip


def _layer_files(layout: OCILayout, manifest: dict[str, object], index: int) -> dict[str, bytes]:
    layer = manifest["layers"][index]  # type: ignore[index]
    with layout.open_blob(layer["digest"]) as blob:
        data = decompress_stream(blob, layer_compression(layer["mediaType"])).read()
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        return {m.name: (tar.extractfile(m).read() if m.isfile() else b"") for m in tar}  # type: ignore[union-attr]


def test_each_architecture_gets_its_own_wheels_and_an_unchanged_set_is_not_installed_again(
    project: Path, caplog: pytest.LogCaptureFixture
) -> None:
    out = project / "out"
    argv = ["build", "--output", f"oci:{out}:v1", "--platform", "linux/amd64,linux/arm64", "--python-version", "3.12",
            *_deps_args(project), "--layer", f"{project / 'app'}:/app"]  # fmt: skip
    with caplog.at_level(logging.INFO, logger="ocipush.build.python"):
        assert main(argv) == 0
    assert caplog.text.count(INSTALL_LOG) == 2  # once per architecture
    layout = OCILayout(str(out))
    index = json.loads(layout.read_blob(layout.resolve("v1").digest))
    for child in index["manifests"]:
        manifest = json.loads(layout.read_blob(child["digest"]))
        config = json.loads(layout.read_blob(manifest["config"]["digest"]))
        files = _layer_files(layout, manifest, 0)
        machine = {"amd64": "x86_64", "arm64": "aarch64"}[child["platform"]["architecture"]]
        assert files["opt/python/fastmod/__init__.py"] == f"ARCH = '{machine}'\n".encode()
        assert files["opt/python/purelib/__init__.py"] == b"VERSION = '1.0'\n"
        assert "opt/python/sixish.py" in files  # purelib's own dependency came along
        assert "opt/python/fastmod-3.0.dist-info/RECORD" in files
        assert not [name for name in files if "__pycache__" in name or name.startswith("opt/python/bin")]
        assert "PYTHONPATH=/opt/python" in config["config"]["Env"]
        assert any("python dependencies sha256:" in h["created_by"] for h in config["history"])
        assert "app/main.py" in _layer_files(layout, manifest, 1)  # the app is a layer of its own
    first = layout.resolve("v1").digest

    caplog.clear()
    with caplog.at_level(logging.INFO, logger="ocipush.build.python"):
        assert main(argv) == 0
    assert INSTALL_LOG not in caplog.text
    assert caplog.text.count("layer reused") == 2
    assert layout.resolve("v1").digest == first  # reproducible, byte for byte


def test_a_dependency_without_a_wheel_fails_naming_it(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (project / "requirements.txt").write_text("sdistonly==0.1\n")
    code = main(["build", "--output", f"oci:{project / 'out'}:v1", "--python-version", "3.12", *_deps_args(project)])
    assert code == 2
    err = capsys.readouterr().err
    assert "python dependency sdistonly==0.1 has no wheel for linux/" in err
    assert "no compiler runs" in err
    assert not (project / "out").exists()


def test_an_unknown_python_version_says_how_to_give_it(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["build", "--output", f"oci:{project / 'out'}:v1", *_deps_args(project)])
    assert code == 2
    assert "give it with --python-version 3.12" in capsys.readouterr().err


def test_a_fresh_runner_reuses_the_target_tags_dependency_layer(
    project: Path, registry: LocalRegistry, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    argv = ["build-push", "--python-version", "3.12", "--platform", "linux/amd64", *_deps_args(project),
            "--tag", f"{registry.host}/py/app:v1", "--quiet"]  # fmt: skip
    assert main(argv) == 0
    # The access log is written behind the requests: count up to a marker request of our own.
    first = log_mark(registry)
    assert "\n".join(log_between(registry, 0, first)).count("PUT /v2/py/app/blobs/uploads/") > 0
    monkeypatch.setenv("OCIPUSH_CACHE_DIR", str(project / "fresh-runner-cache"))
    with caplog.at_level(logging.INFO, logger="ocipush.build.python"):
        assert main(argv) == 0
    assert INSTALL_LOG not in caplog.text
    assert "layer reused" in caplog.text
    assert "\n".join(log_between(registry, first, log_mark(registry))).count("PUT /v2/py/app/blobs/uploads/") == 0


def test_the_image_runs_under_podman_and_lambda_check_names_what_needs_a_lambda_base(
    project: Path, registry: LocalRegistry, podman: Podman, debian_python_base: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    base = push_base(debian_python_base, registry.host, "base/debian-python")
    target = f"{registry.host}/py/service:v1"
    # No --python-version: the base's /usr/bin/python3.11 says it.
    argv = ["build-push", "--from", base, *_deps_args(project), "--layer",
            f"{project / 'app'}:/app", "--cmd", "python3 /app/main.py", "--tag", target, "--quiet"]  # fmt: skip
    assert main(argv) == 0
    assert podman.run(target) == "purelib 1.0 fastmod x86_64 sixish\n"
    capsys.readouterr()
    assert main(["lambda-check", target, "--json"]) == 11
    report = json.loads(capsys.readouterr().out)
    assert [p["check"] for p in report["problems"]] == ["runtime-client"]


def test_pyproject_and_pylock_inputs_become_pinned_requirements(project: Path) -> None:
    from ocipush.build.python import requirement_lines
    from ocipush.build.spec import PythonDeps

    (project / "pyproject.toml").write_text('[project]\nname = "svc"\ndependencies = ["purelib==1.0"]\n')
    (project / "pylock.toml").write_text(
        'lock-version = "1.0"\n[[packages]]\nname = "fastmod"\nversion = "3.0"\n'
        '[[packages.wheels]]\nname = "fastmod-3.0-cp312-cp312-manylinux_2_17_x86_64.whl"\nhashes = {sha256 = "ab"}\n'
        '[[packages]]\nname = "sixish"\nversion = "2.1"\nmarker = "python_version >= \'3.8\'"\n'
    )
    deps = PythonDeps(pyproject=str(project / "pyproject.toml"), lock=str(project / "pylock.toml"))
    assert requirement_lines(deps) == [
        "purelib==1.0",
        "fastmod==3.0 --hash=sha256:ab",
        "sixish==2.1; python_version >= '3.8'",
    ]
    (project / "broken.toml").write_text("[[packages]]\nversion = 1\n")
    with pytest.raises(Exception, match="a package without name and version"):
        requirement_lines(PythonDeps(lock=str(project / "broken.toml")))
    for wheels in ('"x"', '[{hashes = "x"}]', '["x"]'):
        (project / "broken.toml").write_text(f'[[packages]]\nname = "a"\nversion = "1"\nwheels = {wheels}\n')
        with pytest.raises(BuildError, match=r"package a: \[\[packages.wheels\]\] must be tables"):
            requirement_lines(PythonDeps(lock=str(project / "broken.toml")))


def test_pyproject_dependencies_install_from_the_wheelhouse(project: Path) -> None:
    (project / "pyproject.toml").write_text('[project]\nname = "svc"\ndependencies = ["purelib==1.0"]\n')
    out = project / "out"
    code = main(["build", "--no-build-file", "--output", f"oci:{out}:v1", "--python-version", "3.12", "--pyproject",
                 str(project / "pyproject.toml"), "--find-links", str(project / "wheels")])  # fmt: skip
    assert code == 0
    layout = OCILayout(str(out))
    manifest = json.loads(layout.read_blob(layout.resolve("v1").digest))
    assert "opt/python/purelib/__init__.py" in _layer_files(layout, manifest, 0)


def test_a_build_file_python_table_takes_paths_relative_to_the_file(project: Path) -> None:
    (project / "ocipush.toml").write_text(
        '[python]\nrequirements = ["requirements.txt"]\nfind-links = ["wheels"]\npython-version = "3.12"\n'
    )
    (project / "requirements.txt").write_text("purelib==1.0\n")
    out = project / "out"
    assert main(["build", "--build-file", str(project / "ocipush.toml"), "--output", f"oci:{out}:v1"]) == 0
    layout = OCILayout(str(out))
    manifest = json.loads(layout.read_blob(layout.resolve("v1").digest))
    assert "opt/python/purelib/__init__.py" in _layer_files(layout, manifest, 0)


def _deps_layer(out: Path, index: int = 0) -> tarfile.TarFile:
    layout = OCILayout(str(out))
    manifest = json.loads(layout.read_blob(layout.resolve("v1").digest))
    layer = manifest["layers"][index]
    with layout.open_blob(layer["digest"]) as blob:
        data = decompress_stream(blob, layer_compression(layer["mediaType"])).read()
    return tarfile.open(fileobj=io.BytesIO(data))


def test_the_apps_ignore_file_does_not_strip_the_dependency_layer(project: Path) -> None:
    # `--ignore-file` is for the app's --layer directories: pip's RECORD files and packages stay whole.
    (project / "app.ignore").write_text("**/RECORD\nsixish.py\n")
    out = project / "out"
    argv = ["build", "--output", f"oci:{out}:v1", "--python-version", "3.12", *_deps_args(project),
            "--ignore-file", str(project / "app.ignore"), "--layer", f"{project / 'app'}:/app"]  # fmt: skip
    assert main(argv) == 0
    names = _deps_layer(out).getnames()
    assert "opt/python/sixish.py" in names
    assert "opt/python/purelib-1.0.dist-info/RECORD" in names


def test_a_new_owner_or_timestamp_rebuilds_the_dependency_layer(
    project: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    # The key covers everything the layer's bytes depend on: --chown and SOURCE_DATE_EPOCH as well as pip's inputs.
    out = project / "out"
    argv = ["build", "--output", f"oci:{out}:v1", "--python-version", "3.12", *_deps_args(project)]
    assert main(argv) == 0
    with caplog.at_level(logging.INFO, logger="ocipush.build.python"):
        assert main([*argv, "--chown", "1000:1000"]) == 0
    assert caplog.text.count(INSTALL_LOG) == 1
    files = [m for m in _deps_layer(out) if m.name.startswith("opt/python/purelib")]
    assert files and {(m.uid, m.gid) for m in files} == {(1000, 1000)}
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1800000000")
    assert main([*argv, "--chown", "1000:1000"]) == 0
    assert {m.mtime for m in _deps_layer(out)} == {1800000000}


def test_no_cache_installs_afresh_even_when_the_target_tag_has_the_key(
    project: Path, registry: LocalRegistry, caplog: pytest.LogCaptureFixture
) -> None:
    # docs/python.md: unpinned requirements are keyed by their text, and --no-cache is how to pick up new releases.
    argv = ["build-push", "--python-version", "3.12", "--platform", "linux/amd64", *_deps_args(project),
            "--tag", f"{registry.host}/py/nocache:v1", "--quiet"]  # fmt: skip
    assert main(argv) == 0
    with caplog.at_level(logging.INFO, logger="ocipush.build.python"):
        assert main([*argv, "--no-cache"]) == 0
    assert caplog.text.count(INSTALL_LOG) == 1
    assert "layer reused" not in caplog.text


def test_dependencies_are_staged_in_the_cache_dir_given(project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    default = project / "default-cache"
    monkeypatch.setenv("OCIPUSH_CACHE_DIR", str(default))
    out = project / "out"
    argv = ["build", "--output", f"oci:{out}:v1", "--python-version", "3.12", *_deps_args(project),
            "--cache-dir", str(project / "chosen-cache")]  # fmt: skip
    assert main(argv) == 0
    assert "opt/python/purelib/__init__.py" in _deps_layer(out).getnames()
    assert (project / "chosen-cache").is_dir()
    assert not default.exists()  # nothing written to the cache dir the user did not choose


class _RefusingIndex(QuietHandler):
    """A private index that refuses the credentials it is given. A fake: no package index server (devpi,
    pypiserver) is installed here, and a 401 is all this test needs of one."""

    def do_GET(self) -> None:
        self.server.owner.hits += 1  # type: ignore[attr-defined]
        self.send_response(401)
        self.send_header("WWW-Authenticate", 'Basic realm="private"')
        self.send_header("Content-Length", "0")
        self.end_headers()


def test_an_index_that_refuses_the_credentials_is_named_not_blamed_on_wheels(
    project: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("PIP_NO_INDEX")
    with BackgroundServer(_RefusingIndex) as index:
        index.hits = 0  # type: ignore[attr-defined]
        code = main(["build", "--no-build-file", "--output", f"oci:{project / 'out'}:v1", "--python-version", "3.12",
                     "--requirements", str(project / "requirements.txt"),
                     "--index-url", f"http://alice:s3cret@{index.host}/simple"])  # fmt: skip
        assert index.hits > 0  # the fault fired: pip asked the index and was refused
    err = capsys.readouterr().err
    assert code == 2
    assert "pip could not use a package index" in err and "401" in err
    assert "has no wheel" not in err
    assert "s3cret" not in err


def test_a_changed_pip_config_file_installs_again(
    project: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    # pip reads its config files as well as PIP_*: what they say decides the installed files, so it is in the key.
    config = project / "pip.conf"
    config.write_text("[global]\n")
    monkeypatch.setenv("PIP_CONFIG_FILE", str(config))
    out = project / "out"
    argv = ["build", "--output", f"oci:{out}:v1", "--python-version", "3.12", *_deps_args(project)]
    assert main(argv) == 0
    assert "opt/python/sixish.py" in _deps_layer(out).getnames()
    config.write_text("[install]\nno-deps = true\n")
    with caplog.at_level(logging.INFO, logger="ocipush.build.python"):
        assert main(argv) == 0
    assert caplog.text.count(INSTALL_LOG) == 1
    assert "opt/python/sixish.py" not in _deps_layer(out).getnames()  # purelib's dependency was not installed


def _base_image(project: Path, rootfs: Path, *extra: str) -> str:
    """A one-layer linux/amd64 base made of `rootfs`, as an oci: reference."""
    base = f"oci:{project / 'base'}:v1"
    argv = ["build", "--no-build-file", "--output", base, "--platform", "linux/amd64", "--layer", f"{rootfs}:/"]
    assert main([*argv, *extra]) == 0
    return base


def test_a_musl_base_gets_musllinux_wheels(project: Path) -> None:
    # An Alpine-like base: musl's dynamic loader in /lib and PYTHON_VERSION in its environment, nothing that
    # names the C library in its config. Its filesystem says it: manylinux wheels would not load there.
    from support.wheels import make_wheel

    make_wheel(project / "wheels", "fastmod", "3.0", {"fastmod/__init__.py": "ARCH = 'x86_64-musl'\n"},
               tag="cp312-cp312-musllinux_1_1_x86_64")  # fmt: skip
    rootfs = project / "alpine"
    (rootfs / "lib").mkdir(parents=True)
    (rootfs / "lib" / "ld-musl-x86_64.so.1").write_text("")
    base = _base_image(project, rootfs, "--env", "PYTHON_VERSION=3.12.7")
    for out, extra, machine in (("musl", [], "x86_64-musl"), ("glibc", ["--libc", "glibc"], "x86_64")):
        argv = ["build", "--output", f"oci:{project / out}:v1", "--from", base, *_deps_args(project), *extra]
        assert main(argv) == 0
        layer = _deps_layer(project / out, 1)  # on top of the base's one layer
        assert layer.extractfile("opt/python/fastmod/__init__.py").read() == f"ARCH = '{machine}'\n".encode()  # type: ignore[union-attr]


def test_an_old_glibc_base_gets_wheels_that_load_there(project: Path) -> None:
    # A CentOS-7-like base: glibc 2.17's versioned libc in /usr/lib64, PYTHON_VERSION in its environment. A wheel
    # that needs glibc 2.28 would not load there: the older one that does is installed instead.
    from support.wheels import make_wheel

    make_wheel(project / "wheels", "fastmod", "4.0", {"fastmod/__init__.py": "ARCH = 'new'\n"},
               tag="cp312-cp312-manylinux_2_28_x86_64")  # fmt: skip
    rootfs = project / "centos"
    (rootfs / "usr" / "lib64").mkdir(parents=True)
    (rootfs / "usr" / "lib64" / "libc-2.17.so").write_text("")
    base = _base_image(project, rootfs, "--env", "PYTHON_VERSION=3.12.7")
    (project / "requirements.txt").write_text("fastmod\n")
    for out, extra, version in (("old", [], "3.0"), ("flag", ["--libc", "glibc:2.28"], "4.0")):
        argv = ["build", "--output", f"oci:{project / out}:v1", "--from", base, *_deps_args(project), *extra]
        assert main(argv) == 0
        assert f"opt/python/fastmod-{version}.dist-info/RECORD" in _deps_layer(project / out, 1).getnames()


def test_the_python_version_is_read_from_the_bases_interpreters(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Debian's own python3 sets no PYTHON_VERSION: its /usr/bin/python3.N says it (two of them: the user says).
    rootfs = project / "debianish"
    (rootfs / "usr" / "bin").mkdir(parents=True)
    (rootfs / "usr" / "bin" / "python3.11").write_text("")
    base = _base_image(project, rootfs)
    assert main(["build", "--output", f"oci:{project / 'one'}:v1", "--from", base, *_deps_args(project)]) == 0
    wheel = _deps_layer(project / "one", 1).extractfile("opt/python/fastmod-3.0.dist-info/WHEEL")
    assert b"Tag: cp311-cp311-manylinux_2_17_x86_64" in wheel.read()  # type: ignore[union-attr]
    (rootfs / "usr" / "local" / "bin").mkdir(parents=True)
    (rootfs / "usr" / "local" / "bin" / "python3.12").write_text("")
    assert _base_image(project, rootfs) == base
    capsys.readouterr()
    assert main(["build", "--output", f"oci:{project / 'two'}:v1", "--from", base, *_deps_args(project)]) == 2
    assert "has Python 3.11 and 3.12 (no PYTHON_VERSION in its environment); give it with --python-version" in (
        capsys.readouterr().err
    )
