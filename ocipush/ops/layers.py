"""Reading an image's layers as tar streams straight from where they are (a registry, streamed; never stored),
decompressed as they arrive and hashed, so that a layer read to its end is verified against its digest."""

from __future__ import annotations

import contextlib
import tarfile
from collections.abc import Iterator

from ocipush.blobsource import BlobSource
from ocipush.digest import check_digest, new_hasher
from ocipush.errors import UsageError
from ocipush.extract import COPY_SIZE, corrupt_stream_errors, decompress_stream, split_path
from ocipush.mediatypes import layer_compression
from ocipush.models import Descriptor
from ocipush.transfer import ImageSource


class BlobReader:
    """A `read(n)` view of a blob source, hashing every byte read."""

    def __init__(self, blob: BlobSource) -> None:
        self.blob = blob
        self._chunks = blob.read_range(0, blob.size)
        self._pending = b""
        self._hash = new_hasher(blob.digest)
        self.size = 0

    def read(self, n: int = -1, /) -> bytes:
        if not self._pending:
            self._pending = next(self._chunks, b"")
        if n < 0 or n >= len(self._pending):
            data, self._pending = self._pending, b""
        else:
            data, self._pending = self._pending[:n], self._pending[n:]
        self._hash.update(data)
        self.size += len(data)
        return data

    def verify(self, what: str) -> None:
        """Read what is left and check the whole blob against its digest."""
        while self.read(COPY_SIZE):
            pass
        check_digest(self.blob.digest, f"{self.blob.digest.split(':', 1)[0]}:{self._hash.hexdigest()}", what)

    def close(self) -> None:
        close = getattr(self._chunks, "close", None)
        if close is not None:
            close()  # a streamed GET stops here


@contextlib.contextmanager
def open_layer(source: ImageSource, layer: Descriptor) -> Iterator[tuple[tarfile.TarFile, BlobReader]]:
    """The layer as a streamed tar (members in order, each readable once) and the reader under it."""
    reader = BlobReader(source.blob(layer))
    try:
        data = decompress_stream(reader, layer_compression(layer.media_type))
        try:
            with tarfile.open(fileobj=data, mode="r|") as tar:
                yield tar, reader
        except corrupt_stream_errors() as exc:
            what = f"layer {layer.digest[:19]} is damaged or not a {layer.media_type} stream"
            raise UsageError(f"{what}: {exc}") from None
    finally:
        reader.close()


def member_path(member: tarfile.TarInfo) -> str:
    """A member's path inside the image, without leading '/' or './' ('' for the root); '..' is refused."""
    return "/".join(split_path(member.name, "entry"))
