"""Atomic file writes: write to a temporary file beside the target, fsync, rename."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from typing import BinaryIO


@contextlib.contextmanager
def atomic_writer(path: str, mode: int = 0o644, durable: bool = True) -> Iterator[BinaryIO]:
    """Yield a file that replaces `path` only when the block ends without an exception. `durable=False` skips
    the fsync: the rename still makes the swap atomic for other processes, only a power cut may lose it."""
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", dir=directory)
    try:
        with os.fdopen(fd, "wb") as f:
            yield f
            f.flush()
            if durable:
                os.fsync(f.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def pread_range(fd: int, offset: int, length: int, piece: int = 1 << 20) -> Iterator[bytes]:
    """Bytes [offset, offset + length) of an open file, in pieces; EOFError when the file is shorter."""
    end = offset + length
    while offset < end:
        data = os.pread(fd, min(piece, end - offset), offset)
        if not data:
            raise EOFError
        offset += len(data)
        yield data


def atomic_write_bytes(path: str, data: bytes, durable: bool = True) -> None:
    with atomic_writer(path, durable=durable) as f:
        f.write(data)
