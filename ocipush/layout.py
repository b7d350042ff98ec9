"""OCI image layout on disk (image-spec `image-layout.md`): the local store and a push/pull endpoint.

Blobs are written through a temporary file, verified, then renamed into place; `index.json` is rewritten
atomically under a lock, so a crash never leaves a half-written blob or index.

What survives a power cut: blobs are never fsynced (as skopeo, umoci, crane and oras write them). They are named by
their digest, and one cut short has the wrong size: `has_blob` with the descriptor's size takes it for missing, so
the next pull, copy or build writes it again, and a push from the layout stops at it with a one-line error.
`index.json` (and `oci-layout`) of a durable layout, the default for one the user keeps, is fsynced: it holds
every other tag, and losing it would lose them. Scratch and cache layouts, and a new layout staged beside its
final name, are not durable: nothing in them outlives a cut that the next run does not redo, and an fsync after a
large write waits for that write to reach the disk (0.04 s after a 500 MiB pull on an idle disk, most of a second
on a busy one)."""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, BinaryIO

from ocipush import mediatypes as mt
from ocipush.digest import HashingWriter, check_digest, hash_as, hex_part, sha256_of, validate_digest
from ocipush.document import ManifestDocument, sniff_media_type
from ocipush.errors import LayoutError, NotFoundError
from ocipush.fsutil import atomic_write_bytes, atomic_writer, locked_file, open_regular, real_directory

if TYPE_CHECKING:  # the models load where a document is first parsed or built
    from ocipush.models import Descriptor, Index

REF_NAME = "org.opencontainers.image.ref.name"
LAYOUT_VERSION = b'{"imageLayoutVersion":"1.0.0"}'
COPY_SIZE = 1 << 20


class OCILayout:
    """An OCI image layout directory. `create=True` makes it (and its `oci-layout` file) when missing; `durable`
    says whether its `index.json` is fsynced when written (see the module's docstring)."""

    def __init__(self, path: str, create: bool = False, durable: bool = True) -> None:
        self.path = path
        self.durable = durable
        marker = os.path.join(path, "oci-layout")
        if not os.path.exists(marker):
            if not create:
                raise LayoutError(f"{path} is not an OCI image layout (no oci-layout file)")
            os.makedirs(os.path.join(path, "blobs", "sha256"), exist_ok=True)
            atomic_write_bytes(marker, LAYOUT_VERSION, durable=durable)
            if not os.path.exists(self._index_path):
                from ocipush.models import Index

                atomic_write_bytes(self._index_path, Index(manifests=[]).to_json_bytes(), durable=durable)

    @property
    def _index_path(self) -> str:
        return os.path.join(self.path, "index.json")

    # --- blobs -------------------------------------------------------------------------------------------------

    def blob_path(self, digest: str) -> str:
        validate_digest(digest)
        algorithm, hexdigest = digest.split(":", 1)
        return os.path.join(self.path, "blobs", algorithm, hexdigest)

    def has_blob(self, digest: str, size: int | None = None) -> bool:
        try:
            st = os.stat(self.blob_path(digest))
        except FileNotFoundError:
            return False
        return size is None or st.st_size == size

    def open_blob(self, digest: str) -> BinaryIO:
        try:
            return os.fdopen(open_regular(self.blob_path(digest)), "rb")
        except FileNotFoundError:
            raise NotFoundError(f"blob {digest} is not in layout {self.path}") from None

    def read_blob(self, digest: str) -> bytes:
        """Whole blob in memory: for manifests and configs only."""
        with self.open_blob(digest) as f:
            data = f.read()
        check_digest(digest, hash_as(digest, data), f"blob in {self.path}")
        return data

    def write_blob(self, data: bytes, digest: str | None = None) -> str:
        digest = digest or sha256_of(data)
        check_digest(digest, hash_as(digest, data), "blob")
        if not self.has_blob(digest, len(data)):
            atomic_write_bytes(self.blob_path(digest), data, durable=False)
        return digest

    def write_blob_stream(self, stream: BinaryIO, digest: str, size: int | None = None) -> None:
        """Copy a stream into the store, verifying digest and size before it becomes visible."""
        with self.blob_writer(digest, size) as out:
            while chunk := stream.read(COPY_SIZE):
                out.write(chunk)

    @contextlib.contextmanager
    def blob_writer(self, digest: str, size: int | None = None) -> Iterator[HashingWriter]:
        """A writer for a blob, hashed as it is written; on exit it is checked and renamed into place."""
        with atomic_writer(self.blob_path(digest), durable=False) as f:
            writer = HashingWriter(f, digest.split(":", 1)[0])
            yield writer
            check_digest(digest, writer.digest, f"blob written to {self.path}")
            if size is not None and writer.size != size:
                raise LayoutError(f"blob {digest}: wrote {writer.size} bytes, expected {size}")

    def ingest_path(self, digest: str) -> str:
        """Where a partial download of `digest` lives between attempts (resumed with Range)."""
        directory = real_directory(os.path.join(self.path, ".ingest"))
        return os.path.join(directory, hex_part(digest) + ".partial")

    def commit_ingest(self, digest: str, size: int | None, actual_digest: str, actual_size: int) -> None:
        """Move a completed partial download into the store if what was hashed while writing it matches;
        otherwise remove it and raise."""
        partial = self.ingest_path(digest)
        try:
            check_digest(digest, actual_digest, "downloaded blob")
            if size is not None and actual_size != size:
                raise LayoutError(f"blob {digest}: downloaded {actual_size} bytes, expected {size}")
        except Exception:
            os.unlink(partial)
            raise
        target = self.blob_path(digest)
        os.makedirs(os.path.dirname(target), exist_ok=True)
        os.replace(partial, target)

    # --- index -------------------------------------------------------------------------------------------------

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        with locked_file(os.path.join(self.path, ".lock")):
            yield

    def read_index(self) -> Index:
        try:
            with os.fdopen(open_regular(self._index_path), "rb") as f:
                raw = f.read()
        except FileNotFoundError:
            raise LayoutError(f"{self.path} has no index.json") from None
        from ocipush.models import Index

        try:
            return Index.model_validate_json(raw)
        except ValueError as exc:
            raise LayoutError(f"{self._index_path} is not a valid image index: {exc.__class__.__name__}") from None

    def resolve(self, tag: str | None = None, digest: str | None = None) -> Descriptor:
        """The index entry for `tag` (annotation ref.name), `digest`, or the only entry when neither is given."""
        entries = self.read_index().manifests
        if digest:
            for entry in entries:
                if entry.digest == digest:
                    return entry
            if self.has_blob(digest):
                raw = self.read_blob(digest)
                from ocipush.models import Descriptor

                return Descriptor(media_type=sniff_media_type(raw), digest=digest, size=len(raw))
            raise NotFoundError(f"{digest} is not in layout {self.path}")
        if tag:
            for entry in entries:
                if (entry.annotations or {}).get(REF_NAME) == tag:
                    return entry
            raise NotFoundError(f"tag {tag!r} is not in layout {self.path}")
        if len(entries) == 1:
            return entries[0]
        if not entries:
            raise NotFoundError(f"layout {self.path} holds no image")
        names = sorted(filter(None, ((e.annotations or {}).get(REF_NAME) for e in entries)))
        listed = ", ".join(names) if names else ", ".join(e.digest for e in entries)
        raise NotFoundError(f"layout {self.path} holds {len(entries)} images; name one with :TAG or @DIGEST ({listed})")

    def read_manifest(self, descriptor: Descriptor) -> ManifestDocument:
        return ManifestDocument(self.read_blob(descriptor.digest), descriptor.media_type)

    def add_manifest(
        self,
        document: ManifestDocument,
        tags: Iterable[str] = (),
        annotations: dict[str, str] | None = None,
        **extra: object,
    ) -> Descriptor:
        """Store a manifest blob and point index.json at it, once per tag (or untagged when no tag is given).
        `annotations` go on those index.json entries (not into the manifest)."""
        self.write_blob(document.raw, document.digest)
        tags = list(tags)
        with self._locked():
            index = self.read_index()
            manifests = list(index.manifests)
            new_entries: list[Descriptor] = []
            for tag in tags:
                new_entries.append(document.descriptor(annotations={**(annotations or {}), REF_NAME: tag}, **extra))
            if not tags:
                new_entries.append(document.descriptor(annotations=annotations or None, **extra))
            for tag in tags:
                manifests = [m for m in manifests if (m.annotations or {}).get(REF_NAME) != tag]
            if not tags:
                manifests = [m for m in manifests if m.digest != document.digest or REF_NAME in (m.annotations or {})]
            manifests.extend(new_entries)
            data = json.loads(index.to_json_bytes())
            data["manifests"] = [json.loads(m.to_json_bytes()) for m in manifests]
            data["mediaType"] = mt.OCI_INDEX
            atomic_write_bytes(self._index_path, json.dumps(data, separators=(",", ":")).encode(), durable=self.durable)
        return new_entries[0]
