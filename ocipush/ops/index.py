"""Index authoring: create an index from existing images, append to one, filter it by platform, remove entries.

Children may come from other repositories (mounted) or other registries (streamed); an image's platform is taken
from its config. The index is a new document, serialised canonically; the children are never re-serialised."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

from ocipush import mediatypes as mt
from ocipush.arguments import checked
from ocipush.errors import NotFoundError, UsageError
from ocipush.log import get_logger
from ocipush.models import Descriptor, Index, ManifestDocument, Platform, parse_platform, platform_matches
from ocipush.ops.source import ComposedSource, load_image, output_reference, publish, writable_reference
from ocipush.progress import ProgressCallback, ignore_progress
from ocipush.reference import Reference, parse_reference
from ocipush.registry.options import RegistryOptions
from ocipush.registry.session import RegistrySession
from ocipush.transfer import ImageSource, RegistrySource, TransferResult

log = get_logger("ocipush.ops.index")
Entry = tuple[Descriptor, ImageSource]


@checked
def create_index(
    target: str,
    manifests: Sequence[str],
    *,
    annotations: Mapping[str, str] | None = None,
    options: RegistryOptions | None = None,
    progress: ProgressCallback = ignore_progress,
) -> TransferResult:
    """A new index at `target` holding the images `manifests` name (an index among them adds all its children)."""
    reference = writable_reference(target)
    if not manifests:
        raise UsageError("index create needs at least one --manifest REF")
    with RegistrySession(options) as session:
        entries = _entries(session, manifests)
        return _push_index(session, reference, None, entries, annotations or {}, progress)


@checked
def append_index(
    target: str,
    manifests: Sequence[str],
    *,
    annotations: Mapping[str, str] | None = None,
    output: str | None = None,
    options: RegistryOptions | None = None,
    progress: ProgressCallback = ignore_progress,
) -> TransferResult:
    """Add the images `manifests` name to the index at `target` (written back there, or to `output`)."""
    reference = writable_reference(target)
    if not manifests:
        raise UsageError("index append needs at least one --manifest REF")
    with RegistrySession(options) as session:
        source, index = _existing(session, reference)
        entries = [(child, source) for child in index.manifests] + _entries(session, manifests)
        destination = output_reference(reference, output) if output else reference
        return _push_index(session, destination, index, entries, annotations or {}, progress)


@checked
def filter_index(
    target: str,
    platforms: Sequence[Platform | str],
    *,
    output: str | None = None,
    options: RegistryOptions | None = None,
    progress: ProgressCallback = ignore_progress,
) -> TransferResult:
    """Keep only the entries of the index at `target` matching one of `platforms`; each platform must match."""
    wanted = _platforms(platforms)
    if not wanted:
        raise UsageError("index filter needs at least one --platform OS/ARCH")
    reference = writable_reference(target)
    with RegistrySession(options) as session:
        source, index = _existing(session, reference)
        _require_platforms(target, index, wanted)
        kept = [c for c in index.manifests if any(platform_matches(p, c.platform) for p in wanted)]
        destination = output_reference(reference, output) if output else reference
        return _push_index(session, destination, index, [(c, source) for c in kept], {}, progress)


@checked
def remove_from_index(
    target: str,
    *,
    platforms: Sequence[Platform | str] = (),
    digests: Sequence[str] = (),
    output: str | None = None,
    options: RegistryOptions | None = None,
    progress: ProgressCallback = ignore_progress,
) -> TransferResult:
    """Drop the entries of the index at `target` matching `platforms` or `digests`; each must match one."""
    unwanted = _platforms(platforms)
    if not unwanted and not digests:
        raise UsageError("index remove needs --platform OS/ARCH or --digest DIGEST")
    reference = writable_reference(target)
    with RegistrySession(options) as session:
        source, index = _existing(session, reference)
        _require_platforms(target, index, unwanted)
        for digest in digests:
            if not any(child.digest == digest for child in index.manifests):
                raise NotFoundError(f"{target} has no entry {digest}")

        def drop(child: Descriptor) -> bool:
            return child.digest in digests or any(platform_matches(p, child.platform) for p in unwanted)

        kept = [c for c in index.manifests if not drop(c)]
        if not kept:
            raise UsageError(f"removing those would leave {target} empty: delete it instead")
        destination = output_reference(reference, output) if output else reference
        return _push_index(session, destination, index, [(c, source) for c in kept], {}, progress)


def _platforms(values: Iterable[Platform | str]) -> list[Platform]:
    return [parse_platform(v) if isinstance(v, str) else v for v in values]


def _require_platforms(target: str, index: Index, platforms: list[Platform]) -> None:
    for platform in platforms:
        if not any(platform_matches(platform, child.platform) for child in index.manifests):
            listing = ", ".join(str(c.platform) for c in index.manifests if c.platform) or "no platforms"
            raise NotFoundError(f"{target} has no image for platform {platform} (has {listing})")


def _existing(session: RegistrySession, reference: Reference) -> tuple[RegistrySource, Index]:
    source = RegistrySource(session, reference)
    root = source.root()
    if not root.is_index:
        raise UsageError(f"{reference} is not an index but a {root.media_type}: use index create")
    return source, root.index


def _entries(session: RegistrySession, references: Sequence[str]) -> list[Entry]:
    """Index entries for each reference: an image with the platform of its config, or every child of an index."""
    entries: list[Entry] = []
    for text in references:
        source = RegistrySource(session, parse_reference(text))
        root = source.root()
        if root.is_index:
            entries += [(child, source) for child in root.index.manifests]
            continue
        image = load_image(source, root)
        entries.append((root.descriptor(platform=image.config.platform), source))
    return entries


def _push_index(
    session: RegistrySession,
    target: Reference,
    base: Index | None,
    entries: list[Entry],
    annotations: Mapping[str, str],
    progress: ProgressCallback,
) -> TransferResult:
    children = _unique(entries)
    # A Docker manifest list holds only Docker manifests; an OCI index holds either, and stays one once it is.
    docker = all(c.media_type == mt.DOCKER_MANIFEST for c in children)
    docker = docker and (base is None or base.media_type != mt.OCI_INDEX)
    media_type = mt.DOCKER_MANIFEST_LIST if docker else mt.OCI_INDEX
    merged = {**((base.annotations or {}) if base else {}), **annotations}
    fields = {"media_type": media_type, "manifests": children, "annotations": merged or None}
    index = base.model_copy(update=fields) if base is not None else Index.model_validate(fields)
    document = ManifestDocument.from_model(index)
    source = ComposedSource(document, f"index for {target}")
    for child, origin in entries:
        source.add_origin(origin, [child.digest])
    log.info("pushing index %s with %d entries to %s", document.digest, len(children), target)
    return publish(session, source, target, progress)


def _unique(entries: list[Entry]) -> list[Descriptor]:
    """The entries' descriptors, each digest once; two images for one platform are refused (a runtime would take
    the first, silently)."""
    children: list[Descriptor] = []
    seen: dict[str, str] = {}
    for child, _ in entries:
        if any(c.digest == child.digest for c in children):
            continue
        platform = child.platform
        if platform is not None and platform.os != "unknown":  # attestations say unknown/unknown
            key = f"{platform}|{platform.os_version or ''}"
            if key in seen:
                raise UsageError(f"two images for platform {platform}: {seen[key]} and {child.digest}")
            seen[key] = child.digest
        children.append(child)
    return children
