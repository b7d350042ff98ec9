"""Existing tarballs as layers (`--layer-tar`): detect compression, check the tar structure, hash as it streams.

The whole archive is read once to compute its diff_id and to check every header's checksum, so a corrupt or
truncated tarball is refused before it becomes a layer."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import BinaryIO, cast

from ocipush.build.compress import Compression
from ocipush.errors import BuildError

READ_SIZE = 1 << 20
_GZIP_MAGIC = b"\x1f\x8b"
_ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
# Entry types whose size field does not announce data (links, devices, directories, fifos).
_NO_DATA = frozenset(b"123456")


def detect_compression(path: str) -> Compression:
    try:
        with open(path, "rb") as f:
            magic = f.read(4)
    except FileNotFoundError:
        raise BuildError(f"layer tarball {path} does not exist") from None
    except IsADirectoryError:
        raise BuildError(f"layer tarball {path} is a directory; use --layer for directories") from None
    if magic.startswith(_GZIP_MAGIC):
        return "gzip"
    if magic == _ZSTD_MAGIC:
        return "zstd"
    return "none"


@contextlib.contextmanager
def open_uncompressed(path: str, compression: Compression) -> Iterator[BinaryIO]:
    with open(path, "rb") as raw:
        if compression == "gzip":
            from isal import igzip

            with igzip.IGzipFile(fileobj=raw, mode="rb") as stream:  # type: ignore[no-untyped-call]
                yield cast(BinaryIO, stream)
        elif compression == "zstd":
            import zstandard

            with zstandard.ZstdDecompressor().stream_reader(raw, read_across_frames=True) as zstream:
                yield zstream
        else:
            yield raw


def iter_tar_bytes(path: str) -> Iterator[bytes]:
    """The uncompressed tar bytes of `path` in blocks, checked header by header; BuildError when corrupt."""
    compression = detect_compression(path)
    checker = TarChecker(path)
    with open_uncompressed(path, compression) as stream:
        while block := _read(stream, path, compression):
            checker.feed(block)
            yield block
    checker.close()


def _read(stream: BinaryIO, path: str, compression: str) -> bytes:
    try:
        return stream.read(READ_SIZE)
    except (FileNotFoundError, PermissionError) as exc:
        raise BuildError(f"cannot read layer tarball {path}: {exc.strerror}") from None
    except Exception as exc:  # zlib, isal and zstandard each raise their own error types
        raise BuildError(f"layer tarball {path} is corrupt ({compression}): {exc}") from None


class TarChecker:
    """Walks tar headers as bytes stream past: each header's checksum must hold and the data must be complete."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.skip = 0
        self.pending = b""
        self.headers = 0
        self.ended = False

    def feed(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            if self.skip:
                step = min(self.skip, len(view))
                self.skip -= step
                view = view[step:]
                continue
            need = 512 - len(self.pending)
            self.pending += bytes(view[:need])
            view = view[need:]
            if len(self.pending) == 512:
                self._header(self.pending)
                self.pending = b""

    def _header(self, block: bytes) -> None:
        if self.ended or block == b"\0" * 512:
            self.ended = True
            return
        stored = _octal(block[148:156])
        if stored is None or stored != sum(block[:148]) + 8 * 32 + sum(block[156:]):
            raise BuildError(f"layer tarball {self.path} is corrupt: bad header checksum at entry {self.headers + 1}")
        self.headers += 1
        size = _size(block[124:136])
        if size is None:
            raise BuildError(f"layer tarball {self.path} is corrupt: bad size at entry {self.headers}")
        if block[156] not in _NO_DATA:
            self.skip = size + (-size % 512)

    def close(self) -> None:
        if self.skip or self.pending.strip(b"\0"):
            raise BuildError(f"layer tarball {self.path} is truncated")
        if not self.headers and not self.ended:
            raise BuildError(f"layer tarball {self.path} is empty or not a tar archive")


def _octal(field: bytes) -> int | None:
    text = field.replace(b"\0", b" ").strip()
    try:
        return int(text, 8) if text else 0
    except ValueError:
        return None


def _size(field: bytes) -> int | None:
    if field[0] & 0x80:  # GNU base-256 for sizes over 8 GiB
        return int.from_bytes(field[1:], "big")
    return _octal(field)
