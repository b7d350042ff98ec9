"""oci-archive (a tar of an OCI layout) both ways with skopeo, and location prefixes that are not ours refused."""

from __future__ import annotations

import io
import json
import subprocess
import tarfile
from pathlib import Path

import imagehelpers as ih
import pytest
from transferhelpers import assert_one_line_error, make_image, options, run_cli

from ocipush import api
from ocipush.errors import DigestMismatchError, InvalidReferenceError, LayoutError
from ocipush.layout import OCILayout
from ocipush.localregistry import LocalRegistry
from ocipush.locations import OciArchiveLocation
from ocipush.reference import parse_location


def _skopeo(*args: str) -> None:
    subprocess.run(["skopeo", *args], check=True, capture_output=True, timeout=300)


def test_we_push_what_skopeo_archives(registry: LocalRegistry, tmp_path: Path) -> None:
    source, descriptor = make_image(tmp_path / "src", big=2 << 20)
    _skopeo("copy", "--preserve-digests", f"oci:{source.path}:v1", f"oci-archive:{tmp_path / 'sk.tar'}:v1")
    pushed = run_cli("push", f"oci-archive:{tmp_path / 'sk.tar'}:v1", f"{registry.host}/app:v1", "--json",
                     "--cache-dir", str(tmp_path / "cache"))  # fmt: skip
    assert pushed.returncode == 0, pushed.stderr
    assert json.loads(pushed.stdout)["digest"] == descriptor.digest
    assert api.resolve_digest(f"{registry.host}/app:v1", options=options(tmp_path)) == descriptor.digest
    # the scratch copy of the archive is gone
    assert not list((tmp_path / "cache").rglob("work-*"))


def test_skopeo_reads_the_archives_we_write(registry: LocalRegistry, tmp_path: Path) -> None:
    source, descriptor = make_image(tmp_path / "src")
    api.push(f"oci:{source.path}:v1", f"{registry.host}/app:v1", options=options(tmp_path))
    pulled = run_cli("pull", f"{registry.host}/app:v1", f"oci-archive:{tmp_path / 'ours.tar'}:v1",
                     "--cache-dir", str(tmp_path / "cache"))  # fmt: skip
    assert pulled.returncode == 0, pulled.stderr
    _skopeo("copy", "--preserve-digests", f"oci-archive:{tmp_path / 'ours.tar'}:v1", f"oci:{tmp_path / 'sk'}:x")
    assert OCILayout(str(tmp_path / "sk")).resolve("x").digest == descriptor.digest
    # --format oci-archive for a plain path, and the same bytes from oci: as from a registry
    plain = run_cli("pull", f"oci:{source.path}:v1", str(tmp_path / "plain.tar"), "--format", "oci-archive",
                    "--cache-dir", str(tmp_path / "cache"))  # fmt: skip
    assert plain.returncode == 0, plain.stderr
    with tarfile.open(tmp_path / "plain.tar") as tar:
        assert {"oci-layout", "index.json", f"blobs/sha256/{descriptor.digest[7:]}"} <= set(tar.getnames())


def test_all_platforms_into_an_archive(registry: LocalRegistry, tmp_path: Path) -> None:
    layout = OCILayout(str(tmp_path / "src"), create=True)
    amd = ih.build_image(layout, [([ih.file("arch", "amd64")], "gzip")], tag=None, arch="amd64")
    arm = ih.build_image(layout, [([ih.file("arch", "arm64")], "gzip")], tag=None, arch="arm64")
    index = ih.build_index(layout, [amd, arm], "multi")
    archive = tmp_path / "multi.tar"
    api.copy(f"oci:{layout.path}:multi", f"oci-archive:{archive}", options=options(tmp_path))
    _skopeo("copy", "--all", "--preserve-digests", f"oci-archive:{archive}", f"oci:{tmp_path / 'sk'}:m")
    assert OCILayout(str(tmp_path / "sk")).resolve("m").digest == index.digest
    arm_only = api.pull(f"oci-archive:{archive}", f"oci:{tmp_path / 'arm'}", platform="linux/arm64",
                        options=options(tmp_path))  # fmt: skip
    assert arm_only.digest == arm.digest


def test_a_tampered_archive_is_refused(tmp_path: Path) -> None:
    source, descriptor = make_image(tmp_path / "src")
    archive = tmp_path / "a.tar"
    api.copy(f"oci:{source.path}:v1", f"oci-archive:{archive}:v1", options=options(tmp_path))
    members: list[tuple[tarfile.TarInfo, bytes]] = []
    with tarfile.open(archive) as tar:
        for member in tar:
            data = tar.extractfile(member).read() if member.isfile() else b""  # type: ignore[union-attr]
            if member.name == f"blobs/sha256/{descriptor.digest[7:]}":
                data = data.replace(b"schemaVersion", b"schemaVersioN")
            members.append((member, data))
    evil = tarfile.TarInfo("../escaped")
    evil.size = 4
    members.append((evil, b"evil"))
    with tarfile.open(tmp_path / "bad.tar", "w") as out:
        for member, data in members:
            out.addfile(member, io.BytesIO(data) if member.isfile() else None)
    with pytest.raises(DigestMismatchError):
        api.push(f"oci-archive:{tmp_path / 'bad.tar'}:v1", "127.0.0.1:1/x:v1", options=options(tmp_path))
    assert not (tmp_path / "escaped").exists()
    (tmp_path / "plain.tar").write_bytes(b"not a tar at all" * 100)
    with pytest.raises(LayoutError, match=r"not a readable oci-archive|not an oci-archive"):
        api.push(f"oci-archive:{tmp_path / 'plain.tar'}", "127.0.0.1:1/x:v1", options=options(tmp_path))


@pytest.mark.parametrize("text", ["dir:./x", "docker-daemon:alpine:3", "containers-storage:foo", "tarbal:./x.tar"])
def test_unknown_prefixes_are_refused_with_the_supported_list(text: str, tmp_path: Path) -> None:
    with pytest.raises(InvalidReferenceError, match="supported: oci:PATH, oci-archive:PATH"):
        parse_location(text)
    pulled = run_cli("pull", "127.0.0.1:1/app:v1", text)
    assert_one_line_error(pulled, "unsupported location prefix")
    assert pulled.returncode == 2
    pushed = run_cli("push", text, "127.0.0.1:1/app:v1")
    assert_one_line_error(pushed, "unsupported location prefix")
    assert not list(Path.cwd().glob(text.split(":")[0] + ":*"))  # no directory named after the prefix


def test_references_that_look_like_prefixes_stay_references() -> None:
    for text in ("alpine:3", "docker:24-dind", "registry:2", "localhost:5000/app", "my-app:v1.2"):
        assert not isinstance(parse_location(text), OciArchiveLocation)
        assert parse_location(text).__class__.__name__ == "Reference"


def test_an_archive_base_is_refused_by_build(tmp_path: Path) -> None:
    from ocipush.build import BuildSpec
    from ocipush.errors import BuildError

    with pytest.raises(BuildError, match="archive bases are not supported"):
        api.build_to(BuildSpec(base=f"oci-archive:{tmp_path / 'base.tar'}"), f"oci:{tmp_path / 'out'}",
                     options=options(tmp_path))  # fmt: skip
    assert not (tmp_path / "out").exists()
