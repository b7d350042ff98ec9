"""The push that has nothing to do, settled without the models: a layout image whose every target tag already
names its manifest. CI pipelines re-push unchanged images all day; the regular path answers them with the same
requests (a HEAD per tag) but walks the image with the models first (~50 ms of a ~140 ms command while they were
pydantic's).

This reads only the exact JSON the layout holds (index.json, the manifests), and gives up, returning None, at
anything it does not settle on its own: the regular push then runs and decides, with its errors and checks.
What it reports equals what the regular no-op push reports (tests/test_unchanged.py compares them)."""

from __future__ import annotations

import json
import os
from typing import Any

from ocipush import mediatypes as mt
from ocipush.document import ManifestDocument
from ocipush.errors import OcipushError
from ocipush.fsutil import open_regular
from ocipush.layout import REF_NAME, OCILayout
from ocipush.locations import LayoutLocation
from ocipush.reference import Reference
from ocipush.registry.client import current_digest
from ocipush.registry.session import RegistrySession
from ocipush.transfer import MAX_INDEX_DEPTH, MAX_MANIFESTS, PUSH_OUTCOMES, TransferResult


def unchanged_push(
    session: RegistrySession, source: LayoutLocation, target: Reference, tags: list[str], seen: dict[str, str | None]
) -> TransferResult | None:
    """The result of pushing `source` to `target` under `tags` when the registry holds it already (one HEAD per
    tag, as the regular path sends), else None; what each tag it asked about names goes into `seen`, so that the
    regular path does not ask again."""
    try:
        root = _root(source)
        if root is None or _has_subject(root):  # a referrer also needs the referrers index checked
            return None
        blobs = _blobs(OCILayout(source.path), root)
    except (OcipushError, OSError, ValueError, TypeError, KeyError, RecursionError):
        return None  # the regular path reports what is wrong
    if blobs is None:
        return None
    client = session.client(target)
    for tag in tags:
        seen[tag] = current_digest(client, tag)
        if seen[tag] != root.digest:
            return None
    return TransferResult(root.digest, root.media_type, len(root.raw), tags, dict.fromkeys(blobs, "exists"),
                          outcomes=PUSH_OUTCOMES)  # fmt: skip


def _root(source: LayoutLocation) -> ManifestDocument | None:
    """The manifest that `source` names by tag, or the layout's only one; None for anything else."""
    if source.digest:
        return None
    layout = OCILayout(source.path)  # refuses a directory that is not a layout
    with os.fdopen(open_regular(os.path.join(source.path, "index.json")), "rb") as f:
        entries = json.loads(f.read())["manifests"]
    tag = source.tag
    found = [e for e in entries if (e.get("annotations") or {}).get(REF_NAME) == tag] if tag else entries
    if len(found) != 1:
        return None
    entry: dict[str, Any] = found[0]
    if entry.get("mediaType") not in mt.MANIFESTS:
        return None
    return ManifestDocument(layout.read_blob(entry["digest"]), entry["mediaType"])  # read_blob checks the digest


def _has_subject(document: ManifestDocument) -> bool:
    return "subject" in json.loads(document.raw)


def _blobs(layout: OCILayout, root: ManifestDocument) -> list[str] | None:
    """The blobs under `root` in the order the transfer engine lists them (children first; a manifest's config,
    then its layers; foreign layers left out, as a registry target leaves them); None past the engine's bounds."""
    blobs: dict[str, None] = {}
    seen = {root.digest}

    def visit(document: ManifestDocument, depth: int) -> bool:
        data = json.loads(document.raw)
        if document.is_index:
            for child in data["manifests"]:
                if child["mediaType"] in mt.MANIFESTS and child["digest"] not in seen:
                    if depth + 1 > MAX_INDEX_DEPTH or len(seen) >= MAX_MANIFESTS:
                        return False
                    seen.add(child["digest"])
                    raw = layout.read_blob(child["digest"])
                    if not visit(ManifestDocument(raw, child["mediaType"]), depth + 1):
                        return False
            return True
        for blob in [data["config"], *data["layers"]]:
            if blob["mediaType"] not in mt.FOREIGN_LAYERS and not blob.get("urls"):
                blobs.setdefault(blob["digest"], None)
        return True

    return list(blobs) if visit(root, 0) else None
