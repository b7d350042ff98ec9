"""Where the bytes of a blob come from when it is uploaded: a file, or another registry (streamed, never stored).

A source can be read from any offset, which is what lets an upload retry a chunk or resume after a crash."""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from ocipush.errors import NotFoundError, RegistryError
from ocipush.fsutil import open_regular, pread_range

if TYPE_CHECKING:
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

