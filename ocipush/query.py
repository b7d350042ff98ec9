"""Questions to a registry that move no blobs: the tags of a repository, a registry's catalog, the digest a
reference names, the manifest (and config) at a location.

Kept apart from `ocipush.api` and the transfer engine, and away from the document models on a registry reference's
path, because scripts call `tags`, `digest` and `inspect` in loops and each call pays the start-up. A local location
(oci:, archives) or a platform picked from an index goes through `ocipush.sources` and the models, loaded then."""

from __future__ import annotations

import json
from dataclasses import dataclass

from ocipush import arguments as check
from ocipush.digest import check_digest, hash_as
from ocipush.document import ManifestDocument, config_of
from ocipush.errors import NotFoundError
from ocipush.reference import Reference
from ocipush.registry.session import RegistrySession

TYPE_CHECKING = False  # as typing's, which the short commands do not import (docs/benchmarks.md, S5)
if TYPE_CHECKING:
    from typing import Any

    from ocipush.locations import Location
    from ocipush.models import Platform
    from ocipush.registry.options import RegistryOptions
    from ocipush.transfer import ImageSource


@dataclass
class Inspection:
    """What `inspect` found at a reference: the manifest as served, its digest and media type, the config."""

    reference: str
    digest: str
    media_type: str
    raw: bytes
    config: dict[str, Any] | None

    @property
    def manifest(self) -> dict[str, Any]:
        parsed: dict[str, Any] = json.loads(self.raw)
        return parsed

    def to_dict(self) -> dict[str, Any]:
        return {
            "reference": self.reference,
            "digest": self.digest,
            "mediaType": self.media_type,
            "manifest": self.manifest,
            "config": self.config,
        }


def _chosen(image: ImageSource, wanted: Platform | None) -> ManifestDocument:
    from ocipush.transfer import select_platform

    root = image.root()
    return select_platform(image, root, wanted) if wanted is not None and root.is_index else root


def fetch_manifest(
    location: str | Location, platform: Platform | None = None, options: RegistryOptions | None = None
) -> ManifestDocument:
    """The manifest or index at `location`; with `platform`, the platform's image manifest from an index."""
    from ocipush.sources import open_source

    loc, wanted = check.location(location, "location"), check.platform(platform)
    with RegistrySession(check.options(options)) as session, open_source(session, loc) as image:
        return _chosen(image, wanted)


def inspect(
    location: str | Location, platform: Platform | str | None = None, options: RegistryOptions | None = None
) -> Inspection:
    """Manifest, digest and (for an image) config of `location`."""
    loc, wanted = check.location(location, "location"), check.platform(platform)
    with RegistrySession(check.options(options)) as session:
        if isinstance(loc, Reference) and wanted is None:
            # The usual case, without the transfer engine or the models: a manifest GET and a config GET.
            client = session.client(loc)
            document = client.get_manifest(loc.identifier)
            raw = None
            if not document.is_index:
                digest, size = config_of(document)
                raw = client.fetch_blob_bytes(digest, limit=size)
        else:
            from ocipush.sources import open_source

            with open_source(session, loc) as image:
                document = _chosen(image, wanted)
                raw = None
                if not document.is_index:
                    descriptor = document.manifest.config
                    raw = b"".join(image.blob(descriptor).read_range(0, descriptor.size))
                    check_digest(descriptor.digest, hash_as(descriptor.digest, raw), f"config of {loc}")
    config = None
    if raw is not None:
        try:
            config = json.loads(raw)
        except ValueError:  # an artifact's config need not be JSON
            config = None
    return Inspection(str(loc), document.digest, document.media_type, document.raw, config)


def resolve_digest(location: str | Location, options: RegistryOptions | None = None) -> str:
    """The digest of the manifest or index at `location` (a HEAD when the registry sends one)."""
    loc = check.location(location, "location")
    options = check.options(options)
    if isinstance(loc, Reference):
        if loc.digest:
            return loc.digest
        with RegistrySession(options) as session:
            found = session.client(loc).manifest_digest(loc.identifier)
        if found is None:
            raise NotFoundError(f"{loc} not found", status=404, reference=str(loc))
        return found[0]
    return fetch_manifest(loc, options=options).digest


def list_tags(repository: str | Reference, options: RegistryOptions | None = None) -> list[str]:
    reference = check.reference(repository, "repository")
    with RegistrySession(check.options(options)) as session:
        return session.client(reference).list_tags()


def catalog(registry: str, options: RegistryOptions | None = None) -> list[str]:
    """Repositories of a registry (the `_catalog` API; ECR serves its own through the ECR API instead)."""
    from ocipush.registry.client import list_catalog

    check.text(registry, "registry")
    with RegistrySession(check.options(options)) as session:
        return list_catalog(session.transport(registry))
