"""Build inputs: the tar writer, .dockerignore matching, tarball layers, flags and the bad inputs users make."""

from __future__ import annotations

import gzip
import io
import os
import socket
import tarfile
from pathlib import Path

import pytest
import zstandard
from buildhelpers import build, load, make_tree, run, top_digest

from ocipush.build.ignore import IgnoreMatcher
from ocipush.build.tarstream import iter_tree, write_tar
from ocipush.errors import BuildError


@pytest.fixture(autouse=True)
def _cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OCIPUSH_CACHE_DIR", str(tmp_path / "cache"))


def tar_of(root: Path, dest: str = "/", ignore: IgnoreMatcher | None = None) -> tarfile.TarFile:
    chunks: list[bytes] = []
    write_tar(iter_tree(str(root), dest, ignore), lambda c: chunks.append(bytes(c)), 0)
    return tarfile.open(fileobj=io.BytesIO(b"".join(chunks)))


def test_tar_entries_are_sorted_and_complete(tmp_path: Path) -> None:
    src = make_tree(tmp_path / "src")
    tar = tar_of(src, "/srv/www")
    names = tar.getnames()
    assert names[:2] == ["srv", "srv/www"]
    by_name = {m.name: m for m in tar.getmembers()}
    assert by_name["srv/www/app/run.sh"].mode == 0o755
    assert by_name["srv/www/app/data/blob.bin"].mode == 0o600
    assert by_name["srv/www/app/current.py"].issym() and by_name["srv/www/app/current.py"].linkname == "main.py"
    link = by_name["srv/www/app/main.py"]
    assert link.islnk() and link.linkname == "srv/www/app/main-link.py"
    assert by_name["srv/www/app/empty"].isdir()
    assert tar.extractfile("srv/www/big.bin").read().endswith(b"end")  # type: ignore[union-attr]
    # Sorted by bytes within each directory, parents before children.
    assert names.index("srv/www/app") < names.index("srv/www/app/current.py") < names.index("srv/www/app/data")


def test_special_files_are_refused_with_their_path(tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    os.mkfifo(src / "pipe")
    with pytest.raises(BuildError, match=r"pipe is a fifo"):
        list(iter_tree(str(src)))
    os.unlink(src / "pipe")
    with socket.socket(socket.AF_UNIX) as sock:
        sock.bind(str(src / "sock"))
        with pytest.raises(BuildError, match=r"sock is a socket"):
            list(iter_tree(str(src)))


def test_unreadable_file_is_a_build_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    src = tmp_path / "src"
    src.mkdir()
    (src / "secret").write_text("x")
    real_open = os.open

    def deny(path: str, *args: int, **kwargs: int) -> int:
        # Tests run as root, for whom mode 000 is readable: deny the open the way the kernel would.
        if str(path).endswith("secret"):
            raise PermissionError(13, "Permission denied", path)
        return real_open(path, *args, **kwargs)

    monkeypatch.setattr(os, "open", deny)
    out = tmp_path / "out"
    assert build(src, out) == 2
    assert not out.exists()


@pytest.mark.parametrize(
    ("patterns", "path", "excluded"),
    [
        (["*.pyc"], "a.pyc", True),
        (["*.pyc"], "sub/a.pyc", False),
        (["**/*.pyc"], "sub/deep/a.pyc", True),
        (["**/*.pyc"], "a.pyc", True),
        (["build/"], "build/x/y.txt", True),
        (["/build"], "build", True),
        (["docs", "!docs/keep.md"], "docs/keep.md", False),
        (["docs", "!docs/keep.md"], "docs/other.md", True),
        (["# comment", "", "  tmp  "], "tmp", True),
        (["a?c"], "abc", True),
        (["a?c"], "a/c", False),
        (["[!x]yz"], "ayz", True),
        (["[!x]yz"], "xyz", False),
        (["**"], "anything/at/all", True),
        (["a/**/b"], "a/b", True),
        (["a/**/b"], "a/x/y/b", True),
        (["*.txt", "!important.txt", "important.txt"], "important.txt", True),
        (["file.(1)"], "file.(1)", True),
    ],
)
def test_dockerignore_semantics(patterns: list[str], path: str, excluded: bool) -> None:
    assert IgnoreMatcher(patterns).excludes(path) is excluded


def test_ignore_file_applies_to_the_walk(tmp_path: Path) -> None:
    src = make_tree(tmp_path / "src")
    (src / ".dockerignore").write_text("app/data\n**/*.sh\n!app/data/blob.bin\nbig.bin\n")
    names = set(tar_of(src, ignore=IgnoreMatcher.from_file(str(src / ".dockerignore"))).getnames())
    assert "app/run.sh" not in names and "big.bin" not in names
    assert {"app/data", "app/data/blob.bin", "app/main.py"} <= names
    assert build(src, tmp_path / "out") == 0
    other = tmp_path / "other.ignore"
    other.write_text("app\n")
    assert build(src, tmp_path / "out", "--ignore-file", str(other), tag="v2") == 0
    assert top_digest(tmp_path / "out") != top_digest(tmp_path / "out", "v2")


def _plain_tar(tmp_path: Path) -> bytes:
    src = tmp_path / "tarsrc"
    src.mkdir()
    (src / "hello.txt").write_text("hello\n")
    chunks: list[bytes] = []
    write_tar(iter_tree(str(src)), lambda c: chunks.append(bytes(c)), 0)
    return b"".join(chunks)


@pytest.mark.parametrize("fmt", ["none", "gzip", "zstd"])
def test_layer_tar_kept_or_recompressed(tmp_path: Path, fmt: str) -> None:
    plain = _plain_tar(tmp_path)
    data = {"none": plain, "gzip": gzip.compress(plain, mtime=0), "zstd": zstandard.compress(plain)}[fmt]
    path = tmp_path / f"layer.{fmt}"
    path.write_bytes(data)
    out = tmp_path / "out"
    assert run("build", "--no-build-file", "--layer-tar", str(path), "--output", f"oci:{out}:v1") == 0
    manifest, config = load(out)
    import hashlib

    assert config["rootfs"]["diff_ids"] == ["sha256:" + hashlib.sha256(plain).hexdigest()]
    assert config["history"][-1]["created_by"] == f"ocipush build: layer tar layer.{fmt}"  # the file, not its path
    layer = manifest["layers"][0]
    assert layer["mediaType"] == "application/vnd.oci.image.layer.v1.tar+gzip"
    if fmt == "gzip":  # already gzip: stored byte for byte
        assert layer["digest"] == "sha256:" + hashlib.sha256(data).hexdigest()


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"this is not a tar archive at all" * 40, "corrupt: bad header checksum"),
        (b"\x1f\x8b\x08\x00garbage-after-gzip-magic", "corrupt (gzip)"),
    ],
)
def test_corrupt_tarball_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], content: bytes, message: str
) -> None:
    path = tmp_path / "bad.tar"
    path.write_bytes(content)
    out = tmp_path / "out"
    assert run("build", "--no-build-file", "--layer-tar", str(path), "--output", f"oci:{out}:v1") == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1
    assert not out.exists()


def test_truncated_tarball_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "cut.tar"
    path.write_bytes(_plain_tar(tmp_path)[:700])
    assert run("build", "--no-build-file", "--layer-tar", str(path), "--output", f"oci:{tmp_path}/o:v1") == 2
    assert "truncated" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--layer", "/nonexistent/dir"], "layer directory /nonexistent/dir does not exist"),
        (["--env", "NOEQUALS"], "invalid --env 'NOEQUALS': expected KEY=VALUE"),
        (["--env", "1BAD=x"], "invalid environment variable name '1BAD'"),
        (["--platform", "linux"], "invalid platform 'linux'"),
        (["--from", "oci:/nonexistent/layout:tag"], "base layout /nonexistent/layout does not exist"),
        (["--expose", "http"], "invalid port 'http'"),
        (["--chown", "root"], "invalid --chown 'root'"),
        (["--workdir", "relative"], "must be an absolute path"),
        (["--entrypoint", "[1, 2]"], "not a JSON array of strings"),
    ],
)
def test_bad_input_is_one_clear_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], flags: list[str], message: str
) -> None:
    src = tmp_path / "src"
    src.mkdir()
    (src / "f").write_text("x")
    existing = tmp_path / "existing"
    assert build(src, existing) == 0
    capsys.readouterr()
    before = sorted(p.name for p in (existing / "blobs/sha256").iterdir())
    index_before = (existing / "index.json").read_bytes()
    code = run("build", "--no-build-file", "--layer", str(src), *flags, "--output", f"oci:{existing}:v2")
    err = capsys.readouterr().err
    assert code == 2
    assert message in err and err.count("\n") == 1, err
    assert sorted(p.name for p in (existing / "blobs/sha256").iterdir()) == before
    assert (existing / "index.json").read_bytes() == index_before
