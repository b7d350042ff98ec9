"""Reading an image's layers as tar streams straight from where they are (a registry, streamed; never stored),
decompressed as they arrive and hashed, so that a layer read to its end is verified against its digest."""

from __future__ import annotations

import contextlib
import tarfile
from collections.abc import Iterator

from ocipush.blobsource import BlobSource
from ocipush.digest import HashingReader, check_digest
from ocipush.errors import UsageError
from ocipush.extract import COPY_SIZE, ChunkReader, corrupt_stream_errors, decompress_stream, split_path
from ocipush.mediatypes import layer_compression
from ocipush.models import Descriptor
from ocipush.transfer import ImageSource


class BlobReader(HashingReader):
    """A `read(n)` view of a blob source, hashing every byte read; `close` ends a streamed GET early."""

    def __init__(self, blob: BlobSource) -> None:
        self.blob = blob
        self._chunks = blob.read_range(0, blob.size)
        super().__init__(ChunkReader(self._chunks), blob.digest.split(":", 1)[0])  # type: ignore[arg-type]

    def verify(self, what: str) -> None:
        """Read what is left and check the whole blob against its digest."""
        while self.read(COPY_SIZE):
            pass
        check_digest(self.blob.digest, self.digest, what)

    def close(self) -> None:
        close = getattr(self._chunks, "close", None)
        if close is not None:
            close()


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
