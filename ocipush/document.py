"""A manifest or index kept as its exact bytes, and the sniffing of a manifest body's media type.

Without the models at import: commands that only move or hash documents (`tags`, `digest`, a no-op re-push) never
pay for building the models; `parsed` imports them on first use."""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cached_property

from ocipush import mediatypes as mt
from ocipush.digest import is_digest, sha256_of
from ocipush.errors import InvalidManifestError

TYPE_CHECKING = False  # as typing's, which the short commands do not import (docs/benchmarks.md, S5)
if TYPE_CHECKING:
    from typing import Any

    from ocipush.models import Descriptor, Index, Manifest


@dataclass(frozen=True)
class ManifestDocument:
    """A manifest or index as exact bytes plus its media type; `digest` is the sha256 of `raw`."""

    raw: bytes
    media_type: str

    @cached_property
    def digest(self) -> str:
        return sha256_of(self.raw)

    @property
    def is_index(self) -> bool:
        return self.media_type in mt.INDEXES

    @cached_property
    def parsed(self) -> Manifest | Index:
        from ocipush.models import Index, Manifest
        from ocipush.records import Invalid

        try:
            if self.is_index:
                return Index.model_validate_json(self.raw)
            return Manifest.model_validate_json(self.raw)
        except Invalid as exc:
            raise InvalidManifestError(f"malformed {self.media_type} document: {exc}") from None

    @property
    def manifest(self) -> Manifest:
        from ocipush.models import Manifest

        parsed = self.parsed
        if not isinstance(parsed, Manifest):
            raise InvalidManifestError(f"expected an image manifest, got {self.media_type}")
        return parsed

    @property
    def index(self) -> Index:
        from ocipush.models import Index

        parsed = self.parsed
        if not isinstance(parsed, Index):
            raise InvalidManifestError(f"expected an image index, got {self.media_type}")
        return parsed

    def descriptor(self, **extra: Any) -> Descriptor:
        from ocipush.models import Descriptor

        return Descriptor(media_type=self.media_type, digest=self.digest, size=len(self.raw), **extra)

    @classmethod
    def from_model(cls, model: Manifest | Index) -> ManifestDocument:
        from ocipush.models import Index

        media_type = model.media_type or (mt.OCI_INDEX if isinstance(model, Index) else mt.OCI_MANIFEST)
        return cls(model.to_json_bytes(), media_type)


def sniff_media_type(raw: bytes, declared: str | None = None) -> str:
    """The media type of a manifest body: the declared one when it is a manifest type, else from the JSON."""
    if declared:
        declared = declared.split(";", 1)[0].strip()
        if declared in mt.MANIFESTS:
            return declared
    try:
        data = json.loads(raw)
    except ValueError:
        raise InvalidManifestError("manifest body is not JSON") from None
    if not isinstance(data, dict):
        raise InvalidManifestError("manifest body is not a JSON object")
    media_type = data.get("mediaType")
    if isinstance(media_type, str) and media_type in mt.MANIFESTS:
        return media_type
    return mt.OCI_INDEX if "manifests" in data else mt.OCI_MANIFEST


def config_of(document: ManifestDocument) -> tuple[str, int]:
    """The digest and size of an image manifest's config, read from the exact bytes without building the models
    (a short command that only needs the config pays nothing for the models)."""
    try:
        config = json.loads(document.raw)["config"]
        digest, size = config["digest"], config["size"]
    except (ValueError, TypeError, KeyError):
        raise InvalidManifestError(f"malformed {document.media_type} document: config: no digest and size") from None
    if not isinstance(digest, str) or not is_digest(digest) or type(size) is not int or size < 0:
        raise InvalidManifestError(f"malformed {document.media_type} document: config: invalid digest or size")
    return digest, size
