"""A journal of in-flight chunked uploads, so that a push killed mid-blob continues where the registry stopped.

One small JSON file per (registry, repository, digest) under the cache dir, rewritten atomically after every accepted
chunk. It holds the upload session URL and the acknowledged offset, never credentials."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
from dataclasses import asdict, dataclass

from ocipush.cachedir import cache_subdir
from ocipush.fsutil import atomic_write_bytes


@dataclass(frozen=True)
class JournalEntry:
    """An unfinished chunked upload: its session and the bytes the registry acknowledged."""

    registry: str
    repository: str
    digest: str
    url: str
    offset: int
    chunk_size: int


class UploadJournal:
    def __init__(self, cache_dir: str | None = None) -> None:
        self.directory = cache_subdir("uploads", cache_dir)

    def _path(self, registry: str, repository: str, digest: str) -> str:
        key = hashlib.sha256(f"{registry}/{repository}@{digest}".encode()).hexdigest()[:40]
        return os.path.join(self.directory, key + ".json")

    def load(self, registry: str, repository: str, digest: str) -> JournalEntry | None:
        try:
            with open(self._path(registry, repository, digest), "rb") as f:
                entry = JournalEntry(**json.load(f))
        except (FileNotFoundError, ValueError, TypeError):
            return None
        if (entry.registry, entry.repository, entry.digest) != (registry, repository, digest):
            return None
        return entry

    def save(self, entry: JournalEntry) -> None:
        path = self._path(entry.registry, entry.repository, entry.digest)
        # Rewritten after every chunk: no fsync, a journal lost to a power cut only costs a fresh upload session.
        atomic_write_bytes(path, json.dumps(asdict(entry)).encode(), durable=False)

    def remove(self, registry: str, repository: str, digest: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self._path(registry, repository, digest))
