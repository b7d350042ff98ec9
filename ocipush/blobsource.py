"""Where the bytes of a blob come from when it is uploaded: a file, or another registry (streamed, never stored).

A source can be read from any offset, which is what lets an upload retry a chunk or resume after a crash."""

from __future__ import annotations

import ipaddress
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
    """Bytes [offset, offset + length) of a file as a request body. `sent(n)` hears of the bytes sent so far after
    each step, and may raise to stop the upload."""

    STEP = 8 << 20
    PIECE = 128 << 10  # what is copied between a read and a send: fits a core's L2 cache

    def __init__(self, path: str, offset: int, length: int, sent: Callable[[int], None]) -> None:
        self.path, self.offset, self.length, self.sent = path, offset, length, sent

    def send_to(self, sock: socket.socket) -> None:
        by_sendfile = _sendfile_pays(sock)
        buffer = None if by_sendfile else memoryview(bytearray(self.PIECE))
        with open(open_regular(self.path), "rb", buffering=0) as file:
            fd, done = file.fileno(), 0
            while done < self.length:
                at, step = self.offset + done, min(self.STEP, self.length - done)
                n = sock.sendfile(file, at, step) if buffer is None else _send_copied(sock, fd, at, step, buffer)
                if not n:
                    raise RegistryError(f"{self.path} is shorter than its descriptor says")
                done += n
                self.sent(done)


def _sendfile_pays(sock: socket.socket) -> bool:
    """Whether to send with sendfile, which spares this process the copy: only on a plain connection to another host.

    TLS has no sendfile (the standard library's fallback writes 8 KiB at a time, twice the CPU of larger writes).
    A registry on this host reads bytes we have just copied from the cache we share, and pages the kernel hands
    over untouched from memory: with 128 KiB copies its CPU for a 500 MiB blob fell from 1.43 to 1.34 s (paired
    medians of 15), and on loopback the registry is what sets the pace."""
    if hasattr(sock, "getpeercert"):
        return False
    try:
        peer = ipaddress.ip_address(sock.getpeername()[0])
    except (OSError, ValueError, IndexError, TypeError):
        return False  # not an IP connection (a Unix socket): nothing to spare
    return not peer.is_loopback and not (peer.version == 6 and peer.ipv4_mapped and peer.ipv4_mapped.is_loopback)


def _send_copied(sock: socket.socket, fd: int, offset: int, length: int, buffer: memoryview) -> int:
    """Send up to `length` bytes of the file from `offset`, read into `buffer` piece by piece; how many there were."""
    sent = 0
    while sent < length:
        n = os.preadv(fd, [buffer[: min(len(buffer), length - sent)]], offset + sent)
        if not n:
            break  # a short file: the caller sees fewer bytes sent
        sock.sendall(buffer[:n])
        sent += n
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

