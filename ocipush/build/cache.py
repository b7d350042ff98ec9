"""The local layer cache: which compressed blob a diff_id became last time, and where that blob is on disk.

A rebuild whose layer tar hashes to a known diff_id links the old blob into the store instead of compressing
again. Entries are hints: one is used only while its blob file still exists with the recorded size."""

from __future__ import annotations

import contextlib
import json
import os

from ocipush.fsutil import atomic_write_bytes
from ocipush.models import Descriptor

_MAX_ENTRIES = 2000


class LayerCache:
    def __init__(self, directory: str | None = None) -> None:
        from ocipush.cachedir import cache_subdir

        self.path = os.path.join(cache_subdir("build", directory), "layers.json")

    def _load(self) -> dict[str, object]:
        try:
            with open(self.path, "rb") as f:
                data = json.load(f)
        except (OSError, ValueError):
            return {}
        return data if isinstance(data, dict) else {}

    @staticmethod
    def _key(diff_id: str, compression: str, level: int | None) -> str:
        return f"{compression}:{level}:{diff_id}"

    def lookup(self, diff_id: str, compression: str, level: int | None) -> tuple[Descriptor, str] | None:
        """(descriptor, blob file) when a blob for this diff_id and compression is still on disk."""
        entry = self._load().get(self._key(diff_id, compression, level))
        if not isinstance(entry, dict):
            return None
        try:
            descriptor = Descriptor.model_validate(entry["descriptor"])
            blob = str(entry["blob"])
            if os.stat(blob).st_size == descriptor.size:
                return descriptor, blob
        except (KeyError, ValueError, OSError):
            pass
        return None

    def has_fingerprints(self) -> bool:
        return any(key.startswith("fp:") for key in self._load())

    def predicted_diff_id(self, fingerprint: str) -> str | None:
        value = self._load().get("fp:" + fingerprint)
        return value if isinstance(value, str) else None

    def record_fingerprint(self, fingerprint: str, diff_id: str) -> None:
        self._update({"fp:" + fingerprint: diff_id})

    def record(self, diff_id: str, compression: str, level: int | None, descriptor: Descriptor, blob: str) -> None:
        entry = {"descriptor": json.loads(descriptor.to_json_bytes()), "blob": os.path.abspath(blob)}
        self._update({self._key(diff_id, compression, level): entry})

    def _update(self, entries: dict[str, object]) -> None:
        # Read-modify-write without a lock: a lost update between two concurrent builds only costs a recompression.
        data = self._load()
        for key, value in entries.items():
            data.pop(key, None)
            data[key] = value
        if len(data) > _MAX_ENTRIES:
            data = dict(list(data.items())[-_MAX_ENTRIES:])
        with contextlib.suppress(OSError):  # a read-only or full cache must not fail the build
            atomic_write_bytes(self.path, json.dumps(data).encode(), durable=False)  # a cache: lost, it is rebuilt
