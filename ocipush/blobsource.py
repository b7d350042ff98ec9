"""Where the bytes of a blob come from when it is uploaded: a file, or another registry (streamed, never stored).

A source can be read from any offset, which is what lets an upload retry a chunk or resume after a crash."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from ocipush.errors import NotFoundError, RegistryError
from ocipush.fsutil import open_regular, pread_range

if TYPE_CHECKING:
    import socket

    from ocipush.registry.client import RegistryClient



class BlobSource(Protocol):
    digest: str
    size: int

    def read_range(self, offset: int, length: int) -> Iterator[bytes]:
        """Yield exactly `length` bytes starting at `offset`."""
        ...


@dataclass
class FileBlobSource:
    path: str
    digest: str
    size: int

    def read_range(self, offset: int, length: int) -> Iterator[bytes]:
        fd = open_regular(self.path)  # a FIFO posing as a blob must not hang the push
        try:
            yield from pread_range(fd, offset, length)
        except EOFError:
            raise RegistryError(f"{self.path} is shorter than its descriptor says ({self.size} bytes)") from None
        finally:
            os.close(fd)


class FileRangeBody:
    """Bytes [offset, offset + length) of a file as a request body, sent with sendfile (the kernel copies them; on
    TLS the standard library falls back to reads). `sent(n)` hears of the bytes sent so far after each step, and may
    raise to stop the upload."""

    STEP = 8 << 20

    def __init__(self, path: str, offset: int, length: int, sent: Callable[[int], None]) -> None:
        self.path, self.offset, self.length, self.sent = path, offset, length, sent

    def send_to(self, sock: socket.socket) -> None:
        # TLS has no sendfile, and the standard library's fallback for it writes 8 KiB at a time: twice the CPU of
        # 1 MiB writes (an ECR push is always TLS)
        tls = hasattr(sock, "getpeercert")
        with open(open_regular(self.path), "rb", buffering=0) as file:
            done = 0
            while done < self.length:
                at, step = self.offset + done, min(self.STEP, self.length - done)
                n = _send_read(sock, file.fileno(), at, step) if tls else sock.sendfile(file, at, step)
                if not n:
                    raise RegistryError(f"{self.path} is shorter than its descriptor says")
                done += n
                self.sent(done)


def _send_read(sock: socket.socket, fd: int, offset: int, length: int) -> int:
    """Send up to `length` bytes of the file from `offset` in 1 MiB writes; how many there were."""
    sent = 0
    with contextlib.suppress(EOFError):  # a short file: the caller sees fewer bytes sent
        for piece in pread_range(fd, offset, length):
            sock.sendall(piece)
            sent += len(piece)
    return sent


@dataclass
class BytesBlobSource:
    """A small blob made in memory (an artifact's config, a signature payload, an SBOM, a rewritten config)."""

    data: bytes
    digest: str
    size: int

    def read_range(self, offset: int, length: int) -> Iterator[bytes]:
        yield self.data[offset : offset + length]


@dataclass
class RegistryBlobSource:
    """A blob in another repository or registry; each range is a streamed GET with a Range header."""

    client: RegistryClient
    digest: str
    size: int

    def read_range(self, offset: int, length: int) -> Iterator[bytes]:
        from ocipush.registry.client import range_start

        with self.client.open_blob(self.digest, start=offset) as response:
            if response.status_code == 206 and range_start(response) != offset:
                raise RegistryError(f"{self.client.name} answered another range than bytes {offset}- of a blob")
            skip = offset if response.status_code == 200 else 0  # the source ignored Range
            remaining = length
            for data in self.client.blob_chunks(response):
                if skip:
                    cut = min(skip, len(data))
                    data, skip = data[cut:], skip - cut
                if not data:
                    continue
                data = data[:remaining]
                remaining -= len(data)
                yield data
                if remaining == 0:
                    return
        if remaining:
            raise RegistryError(f"blob {self.digest[:19]} from {self.client.name} ended early")


@dataclass
class MissingBlobSource:
    """A blob the source does not hold (a layer reused from the target's current image): fine as long as the
    destination already has it, which is checked before any byte is read."""

    where: str
    digest: str
    size: int

    def read_range(self, offset: int, length: int) -> Iterator[bytes]:
        raise NotFoundError(f"blob {self.digest} is missing from {self.where} and from the destination")

