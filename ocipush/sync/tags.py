"""Which tags of a repository a sync takes: regexes, a semver range, then the newest N by version or push time."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from datetime import datetime

from ocipush import mediatypes as mt
from ocipush.errors import OcipushError
from ocipush.registry.client import RegistryClient
from ocipush.sync.semver import in_range, parse_range, version_key
from ocipush.sync.spec import TagFilter

PushTimes = Callable[[Sequence[str]], dict[str, float]]


def select_tags(tags: Sequence[str], tag_filter: TagFilter | None, push_times: PushTimes) -> list[str]:
    """The tags that pass `tag_filter`, in the registry's order. `push_times` is asked only for the newest N by
    push time, and only about the tags left by then."""
    if tag_filter is None:
        return list(tags)
    kept = [tag for tag in tags if tag_filter.accepts(tag)]
    if tag_filter.semver:
        predicate = parse_range(tag_filter.semver)
        kept = [tag for tag in kept if in_range(tag, predicate)]
    if tag_filter.newest:
        if tag_filter.newest_by == "semver":
            versions = {tag: key for tag in kept if (key := version_key(tag)) is not None}
            newest = set(sorted(versions, key=lambda t: versions[t])[-tag_filter.newest :])
        else:
            times = push_times(kept)
            newest = set(sorted(kept, key=lambda t: (times.get(t, 0.0), t))[-tag_filter.newest :])
        kept = [tag for tag in kept if tag in newest]
    return kept


def created_times(client: RegistryClient, tags: Sequence[str]) -> dict[str, float]:
    """Push time where the registry keeps none: the image config's `created` (of an index's first image). Costs a
    manifest GET (two for an index) and a config GET a tag; a tag without a readable time sorts oldest."""
    times: dict[str, float] = {}
    for tag in tags:
        try:
            document = client.get_manifest(tag)
            if document.is_index:
                child = next((c for c in document.index.manifests if c.media_type in mt.IMAGE_MANIFESTS), None)
                if child is None:
                    continue
                document = client.get_manifest(child.digest)
            config = json.loads(client.fetch_blob_bytes(document.manifest.config.digest))
            times[tag] = datetime.fromisoformat(str(config["created"]).replace("Z", "+00:00")).timestamp()
        except (OcipushError, ValueError, KeyError, TypeError):
            continue
    return times


def ecr_pushed_times(repository: str, region: str, profile: str | None) -> dict[str, float]:
    """ECR's own record: imagePushedAt from describe_images (one paginated API call for the whole repository)."""
    from ocipush.ecr_admin.images import describe_images

    details = describe_images(repository, "TAGGED", region=region, profile=profile)
    return {tag: detail.pushed_at.timestamp() for detail in details for tag in detail.tags}
