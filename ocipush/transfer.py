"""Push, pull and copy as one graph walk: resolve the root, move the blobs the destination lacks in parallel,
then manifests children-first (image manifests before their index), tags last. With `referrers`, the walk goes on
into what is attached to each manifest (OCI referrers and cosign's tag-scheme objects, recursively: the signature
of an SBOM too), which lands after its subject, bytes and digests unchanged."""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal, Protocol

from ocipush import mediatypes as mt
from ocipush.baseinfo import BASE_NAME
from ocipush.blobsource import BlobSource, FileBlobSource, MissingBlobSource, RegistryBlobSource
from ocipush.digest import is_digest
from ocipush.document import ManifestDocument
from ocipush.errors import NotFoundError, RegistryError, TransferStopped
from ocipush.fsutil import naming_full_disk
from ocipush.layout import OCILayout
from ocipush.log import get_logger
from ocipush.progress import ProgressCallback, ignore_progress
from ocipush.reference import Reference, parse_location
from ocipush.referrers import APPENDED_SUFFIXES, LayoutReferrers, Referrer, RegistryReferrers, explain_refusal
from ocipush.registry.client import RegistryClient, current_digest
from ocipush.registry.download import download_blob
from ocipush.registry.ecr import is_ecr
from ocipush.registry.journal import UploadJournal
from ocipush.registry.options import DEFAULT_CHUNK_SIZE, RegistryOptions
from ocipush.registry.session import RegistrySession
from ocipush.registry.upload import BlobUploader
from ocipush.workers import each_on_threads

log = get_logger("ocipush.transfer")
BlobOutcome = Literal["uploaded", "mounted", "downloaded", "copied", "exists"]
PUSH_OUTCOMES: tuple[BlobOutcome, ...] = ("uploaded", "exists", "mounted")
LOCAL_OUTCOMES: tuple[BlobOutcome, ...] = ("downloaded", "copied", "exists")

if TYPE_CHECKING:  # the models load where a document is first parsed or built
    from ocipush.models import Descriptor, Platform

# --- sources ---------------------------------------------------------------------------------------------------------


class ImageSource(Protocol):
    name: str

    def root(self) -> ManifestDocument: ...

    def manifest(self, descriptor: Descriptor) -> ManifestDocument: ...

    def blob(self, descriptor: Descriptor) -> BlobSource: ...

    def mount_from(self, descriptor: Descriptor, host: str) -> list[str]:
        """Repositories on registry `host` that already hold the blob (for a cross-repository mount)."""
        ...

    def attached(self, digest: str) -> list[Referrer]:
        """What is attached to manifest `digest`: its referrers and cosign's tag-scheme objects."""
        ...


class RegistrySource:
    """An image in a registry. `root`, when given, stands in for the manifest the reference names (an index that a
    sync filtered to some platforms): its children are still read from the registry."""

    def __init__(self, session: RegistrySession, reference: Reference, root: ManifestDocument | None = None) -> None:
        self.reference = reference
        self.client = session.client(reference)
        self.name = str(reference)
        self._root = root
        self.referrers = RegistryReferrers(self.client)

    def root(self) -> ManifestDocument:
        # Fetched once: a tag could move between two GETs, and one copy must see one image.
        if self._root is None:
            self._root = self.client.get_manifest(self.reference.identifier)
        return self._root

    def manifest(self, descriptor: Descriptor) -> ManifestDocument:
        return self.client.get_manifest(descriptor.digest)

    def blob(self, descriptor: Descriptor) -> BlobSource:
        return RegistryBlobSource(self.client, descriptor.digest, descriptor.size)

    def mount_from(self, descriptor: Descriptor, host: str) -> list[str]:
        return [self.reference.repository] if host == self.reference.api_host else []

    def attached(self, digest: str) -> list[Referrer]:
        return self.referrers.find(digest)


class LayoutSource:
    """An image in an OCI layout. Blobs missing on disk (base layers a build never downloaded) are taken from the
    registry named by the manifest's `org.opencontainers.image.base.name` annotation."""

    def __init__(self, session: RegistrySession, layout: OCILayout, tag: str | None, digest: str | None) -> None:
        self.session = session
        self.layout = layout
        self.tag, self.digest = tag, digest
        self.name = f"oci:{layout.path}" + (f":{tag}" if tag else "")
        self._base: dict[str, Reference] = {}
        self._root_base: Reference | None = None
        self.referrers = LayoutReferrers(layout)

    def root(self) -> ManifestDocument:
        entry = self.layout.resolve(self.tag, self.digest)
        # The build records its base on the index.json entry too: Docker manifests cannot carry annotations.
        self._root_base = _registry_base(entry.annotations)
        return self.manifest(entry)

    def manifest(self, descriptor: Descriptor) -> ManifestDocument:
        document = self.layout.read_manifest(descriptor)
        if not document.is_index:
            reference = _registry_base(document.manifest.annotations)
            if reference is not None:
                for blob in [document.manifest.config, *document.manifest.layers]:
                    self._base.setdefault(blob.digest, reference)
        return document

    def _base_of(self, digest: str) -> Reference | None:
        return self._base.get(digest) or self._root_base

    def blob(self, descriptor: Descriptor) -> BlobSource:
        if self.layout.has_blob(descriptor.digest):  # its size is checked as it is read: a short one is named
            return FileBlobSource(self.layout.blob_path(descriptor.digest), descriptor.digest, descriptor.size)
        base = self._base_of(descriptor.digest)
        if base is None:
            return MissingBlobSource(self.name, descriptor.digest, descriptor.size)
        return RegistryBlobSource(self.session.client(base), descriptor.digest, descriptor.size)

    def mount_from(self, descriptor: Descriptor, host: str) -> list[str]:
        # A mount moves no bytes: prefer it even when the layer is also on disk.
        base = self._base_of(descriptor.digest)
        return [base.repository] if base is not None and base.api_host == host else []

    def attached(self, digest: str) -> list[Referrer]:
        return self.referrers.find(digest)


def _registry_base(annotations: dict[str, str] | None) -> Reference | None:
    """The registry image named by a base.name annotation (a layout base, `oci:…`, is not one)."""
    name = (annotations or {}).get(BASE_NAME)
    location = parse_location(name) if name else None
    return location if isinstance(location, Reference) else None


# --- targets ---------------------------------------------------------------------------------------------------------


class ImageTarget(Protocol):
    name: str
    stop: threading.Event  # set when one blob failed: the others end at their next piece
    needs_foreign_layers: bool  # a local copy is complete only with them; a registry keeps just their descriptors
    outcomes: tuple[BlobOutcome, ...]  # what put_blob may answer, in the order results list them

    def put_blob(self, source: ImageSource, descriptor: Descriptor) -> BlobOutcome: ...

    def put_manifest(self, document: ManifestDocument, tags: list[str], top: bool = True) -> None:
        """Store a manifest; `top` is False for the children of an index (stored, never named on their own)."""
        ...

    def current_digest(self, reference: str) -> str | None:
        """The digest a tag (or digest) names at the target now, None when it names nothing."""
        ...

    def holds_blobs(self, blobs: Iterable[Descriptor]) -> bool:
        """Whether the target holds all these blobs whole, given that a manifest naming them is there."""
        ...

    def index_referrers(self, documents: list[ManifestDocument]) -> None:
        """Make the target list these manifests (each has a `subject`) as referrers of their subjects."""
        ...


class RegistryTarget:
    def __init__(
        self, session: RegistrySession, reference: Reference, progress: ProgressCallback,
        known: dict[str, str | None] | None = None,
    ) -> None:  # fmt: skip
        """`known`: what tags name at the target, as the caller just asked (not asked again)."""
        self.reference = reference
        self.known = dict(known or {})
        self.client = session.client(reference)
        self.name = f"{reference.registry}/{reference.repository}"
        self.stop = threading.Event()
        self.needs_foreign_layers = False
        self.referrers = RegistryReferrers(self.client)
        self.outcomes = PUSH_OUTCOMES
        self.uploader = BlobUploader(
            self.client,
            UploadJournal(session.options.cache_dir),
            _part_size(self.client, session.options),
            progress,
            self.stop,
        )

    def put_blob(self, source: ImageSource, descriptor: Descriptor) -> BlobOutcome:
        return self.uploader.upload(source.blob(descriptor), source.mount_from(descriptor, self.client.transport.host))

    def put_manifest(self, document: ManifestDocument, tags: list[str], top: bool = True) -> None:
        for reference in tags or [document.digest]:
            wanted = self._merged(reference, document) if reference.endswith(APPENDED_SUFFIXES) else document
            try:
                self.client.put_manifest(reference, wanted)
            except RegistryError as exc:
                raise explain_refusal(exc, wanted, self.name) from None

    def _merged(self, tag: str, document: ManifestDocument) -> ManifestDocument:
        """A cosign `.sig`/`.att` arriving where the tag already names other signatures: both sets, merged."""
        from ocipush.sign.store import merge_signature_manifests

        try:
            existing = self.client.get_manifest(tag)
        except NotFoundError:
            return document
        if existing.digest == document.digest or existing.is_index or document.is_index:
            return document
        blobs: dict[str, BlobSource] = {}
        merged = merge_signature_manifests(existing, document, blobs)
        for blob in blobs.values():
            self.uploader.upload(blob)
        log.info("%s:%s held other entries: merged into %s", self.name, tag, merged.digest)
        return merged

    def index_referrers(self, documents: list[ManifestDocument]) -> None:
        # A registry with the referrers API indexes on its own; the others need the referrers tag schema.
        by_subject: dict[str, list[ManifestDocument]] = {}
        for document in documents:
            subject = document.parsed.subject
            if subject is not None:
                by_subject.setdefault(subject.digest, []).append(document)
        for subject_digest, referrers in by_subject.items():
            if not self.referrers.has_api(subject_digest):
                self.referrers.add_to_index(subject_digest, referrers)

    def holds_blobs(self, blobs: Iterable[Descriptor]) -> bool:
        return True  # a registry only takes a manifest whose blobs it has: one HEAD instead of one a blob

    def current_digest(self, reference: str) -> str | None:
        if reference in self.known:
            return self.known[reference]
        return current_digest(self.client, reference)


def _part_size(client: RegistryClient, options: RegistryOptions) -> int | None:
    """Upload parts: as asked; else ECR's way (parts it stores whole, so a push resumes from the last one);
    else one streamed request per blob, as fast as a plain PUT, resumable where the registry keeps partial data."""
    if options.chunk_size:
        return options.chunk_size
    return DEFAULT_CHUNK_SIZE if is_ecr(client.transport.host) else None


class LayoutTarget:
    def __init__(self, layout: OCILayout, progress: ProgressCallback) -> None:
        self.layout = layout
        self.progress = progress
        self.name = f"oci:{layout.path}"
        self.stop = threading.Event()
        self.needs_foreign_layers = True
        self.outcomes = LOCAL_OUTCOMES

    def put_blob(self, source: ImageSource, descriptor: Descriptor) -> BlobOutcome:
        if self.layout.has_blob(descriptor.digest, descriptor.size):
            return "exists"
        blob = source.blob(descriptor)
        try:
            with naming_full_disk(self.layout.path):
                if isinstance(blob, RegistryBlobSource):
                    download_blob(blob.client, descriptor, self.layout, self.progress, self.stop)
                    return "downloaded"
                with self.layout.blob_writer(descriptor.digest, descriptor.size) as out:
                    for data in blob.read_range(0, descriptor.size):
                        if self.stop.is_set():
                            raise TransferStopped
                        out.write(data)
                return "copied"
        except NotFoundError:
            if not is_foreign(descriptor):
                raise
            raise NotFoundError(
                f"foreign layer {descriptor.digest} is not served by {source.name}, and a local copy needs it "
                f"(ocipush does not fetch from a manifest's urls: {', '.join(descriptor.urls or []) or 'none'})"
            ) from None

    def put_manifest(self, document: ManifestDocument, tags: list[str], top: bool = True) -> None:
        with naming_full_disk(self.layout.path):
            if top:
                self.layout.add_manifest(document, tags)
            else:  # only the root belongs in index.json: tools read one entry per image
                self.layout.write_blob(document.raw, document.digest)

    def index_referrers(self, documents: list[ManifestDocument]) -> None:
        """Nothing to do: a layout's referrers are found by their subject field (LayoutReferrers)."""

    def holds_blobs(self, blobs: Iterable[Descriptor]) -> bool:
        # A manifest says nothing of its blobs here: one can be gone, or cut short by a power cut (never fsynced).
        return all(self.layout.has_blob(d.digest, d.size) for d in blobs)

    def current_digest(self, reference: str) -> str | None:
        if is_digest(reference):
            # Only index.json entries count: a manifest kept as an index's child is not an image there of its own.
            return reference if any(e.digest == reference for e in self.layout.read_index().manifests) else None
        try:
            return self.layout.resolve(reference).digest
        except NotFoundError:
            return None


# --- the walk --------------------------------------------------------------------------------------------------------


@dataclass
class TransferResult:
    """What a push, pull or copy did. `blobs` maps each blob's digest to its outcome: to a registry "uploaded",
    "mounted" or "exists"; to a local layout "downloaded" (from a registry), "copied" (from local files) or
    "exists"."""

    digest: str
    media_type: str
    size: int
    tags: list[str]
    blobs: dict[str, BlobOutcome] = field(default_factory=dict)
    outcomes: tuple[BlobOutcome, ...] = PUSH_OUTCOMES  # the kinds `counts` lists (the target's)
    created_repository: bool = False  # the `create_repository` hook made the target repository
    converted_from: str | None = None  # the source's digest when a conversion made a new document
    referrers: list[str] = field(default_factory=list)  # digests of the attached manifests carried along

    @property
    def counts(self) -> dict[str, int]:
        """How many blobs had each outcome the target can give (zero counts included, for a stable shape)."""
        return {kind: sum(1 for outcome in self.blobs.values() if outcome == kind) for kind in self.outcomes}

    @property
    def uploaded(self) -> int:
        return sum(1 for outcome in self.blobs.values() if outcome == "uploaded")

    @property
    def downloaded(self) -> int:
        return sum(1 for outcome in self.blobs.values() if outcome == "downloaded")


def select_platform(
    source: ImageSource, index: ManifestDocument, platform: Platform, _depth: int = 0, _seen: set[str] | None = None
) -> ManifestDocument:
    """The image for `platform` from an index (nested indexes followed once each, at most MAX_INDEX_DEPTH deep)."""
    from ocipush.models import platform_matches

    seen = set() if _seen is None else _seen
    for child in index.index.manifests:
        if child.media_type in mt.INDEXES:
            if child.digest in seen:
                continue
            seen.add(_within_bounds(source, child, _depth + 1, len(seen)).digest)
            try:
                return select_platform(source, source.manifest(child), platform, _depth + 1, seen)
            except NotFoundError:
                continue
        if platform_matches(platform, child.platform):
            return source.manifest(child)
    available = ", ".join(str(c.platform) for c in index.index.manifests if c.platform) or "none"
    raise NotFoundError(f"{source.name} has no image for platform {platform} (available: {available})")


# A hostile graph must not cost unbounded requests or end in a RecursionError: real images nest indexes two or
# three deep and hold a few dozen manifests.
MAX_INDEX_DEPTH = 16
MAX_MANIFESTS = 4096


def _within_bounds(source: ImageSource, child: Descriptor, depth: int, count: int) -> Descriptor:
    if depth > MAX_INDEX_DEPTH:
        raise RegistryError(f"{source.name}: indexes nested more than {MAX_INDEX_DEPTH} deep (at {child.digest})")
    if count >= MAX_MANIFESTS:
        raise RegistryError(f"{source.name}: the image graph holds more than {MAX_MANIFESTS} manifests")
    return child


def is_foreign(blob: Descriptor) -> bool:
    """A layer that registries need not hold (it names where it lives; Windows base layers)."""
    return blob.media_type in mt.FOREIGN_LAYERS or bool(blob.urls)


def _collect(
    source: ImageSource, root: ManifestDocument, foreign: bool = True
) -> tuple[list[ManifestDocument], dict[str, Descriptor]]:
    """Image manifests under `root` (children first, root last) and the blobs they reference (foreign layers
    only with `foreign`)."""
    documents: list[ManifestDocument] = []
    blobs: dict[str, Descriptor] = {}
    seen = {root.digest}  # a child reached twice is fetched and stored once

    def visit(document: ManifestDocument, depth: int) -> None:
        if document.is_index:
            for child in document.index.manifests:
                if child.media_type in mt.MANIFESTS and child.digest not in seen:
                    seen.add(_within_bounds(source, child, depth + 1, len(seen)).digest)
                    visit(source.manifest(child), depth + 1)
        else:
            manifest = document.manifest
            for blob in [manifest.config, *manifest.layers]:
                if not foreign and is_foreign(blob):
                    continue  # a registry target keeps their descriptors; the bytes live elsewhere by design
                blobs.setdefault(blob.digest, blob)
        documents.append(document)

    visit(root, 0)
    return documents, blobs


def _collect_attached(
    source: ImageSource, subjects: list[ManifestDocument]
) -> tuple[list[tuple[ManifestDocument, list[str]]], dict[str, Descriptor]]:
    """Everything attached to `subjects`, recursively, in push order (a referrer after its subject, an attached
    index after its children), each with the tags it lives under (cosign's), and the blobs they reference."""
    order: list[tuple[ManifestDocument, list[str]]] = []
    blobs: dict[str, Descriptor] = {}
    seen = {document.digest for document in subjects}
    queue = [document.digest for document in subjects]
    while queue:
        for referrer in source.attached(queue.pop(0)):
            if referrer.descriptor.digest in seen:
                continue
            if len(seen) >= MAX_MANIFESTS:  # a registry listing referrers without end must not hold us for ever
                raise RegistryError(f"{source.name}: more than {MAX_MANIFESTS} manifests with their referrers "
                                    "(copy --no-referrers leaves them behind)")  # fmt: skip
            seen.add(referrer.descriptor.digest)
            documents, found = _collect(source, source.manifest(referrer.descriptor))
            for digest, descriptor in found.items():
                blobs.setdefault(digest, descriptor)
            order.extend((document, []) for document in documents[:-1])
            order.append((documents[-1], [referrer.tag] if referrer.tag else []))
            queue.extend(document.digest for document in documents)
    return order, blobs


def transfer(
    source: ImageSource,
    target: ImageTarget,
    tags: Iterable[str],
    *,
    platform: Platform | None = None,
    jobs: int = 4,
    progress: ProgressCallback = ignore_progress,
    on_missing_repository: Callable[[], bool] | None = None,
    referrers: bool = False,
) -> TransferResult:
    """Copy the image (or, with `platform`, the one image of an index) from `source` to `target`; with
    `referrers`, what is attached to it too."""
    tags = list(tags)
    root = source.root()
    if platform is not None and root.is_index:
        root = select_platform(source, root, platform)
    documents, blobs = _collect(source, root, target.needs_foreign_layers)
    result = TransferResult(root.digest, root.media_type, len(root.raw), tags, outcomes=target.outcomes)
    attached, attached_blobs = _collect_attached(source, documents) if referrers else ([], {})
    result.referrers = [document.digest for document, _ in attached]
    missing = [(d, t) for d, t in attached if _absent(target, d, t)]
    image_there = all(target.current_digest(reference) == root.digest for reference in tags or [root.digest])
    image_there = image_there and target.holds_blobs(blobs.values())
    pending = {} if image_there else dict(blobs)
    if image_there:
        result.blobs = dict.fromkeys(blobs, "exists")
    if missing:
        pending.update((digest, d) for digest, d in attached_blobs.items() if digest not in pending)
    if image_there and not missing:
        _index_referrers(target, [root, *(d for d, _ in attached)])
        return result

    def move_all() -> None:
        result.blobs.update(move_blobs(source, target, pending.values(), jobs))

    try:
        move_all()
    except NotFoundError as exc:
        if on_missing_repository is None or exc.code != "NAME_UNKNOWN" or not on_missing_repository():
            raise
        result.created_repository = True
        move_all()
    if not image_there:
        for document in documents[:-1]:
            target.put_manifest(document, [], top=False)
        target.put_manifest(root, tags)
    for document, document_tags in missing:
        target.put_manifest(document, document_tags)
    _index_referrers(target, [root, *(d for d, _ in attached)])
    return result


def move_blobs(
    source: ImageSource, target: ImageTarget, descriptors: Iterable[Descriptor], jobs: int
) -> dict[str, BlobOutcome]:
    """Put blobs into `target` in parallel, largest first: digest -> uploaded | exists | mounted. On an error the
    others stop at their next piece, and the first real error is raised once every worker has returned."""
    moved: dict[str, BlobOutcome] = {}
    ordered = sorted(descriptors, key=lambda d: -d.size)
    target.stop.clear()
    failure: BaseException | None = None
    outcomes = each_on_threads(lambda d: target.put_blob(source, d), ordered, jobs, "ocipush-blob")
    try:
        for descriptor, outcome, error in outcomes:
            if error is None:
                assert outcome is not None
                moved[descriptor.digest] = outcome
            elif failure is None or isinstance(failure, TransferStopped):
                failure = error  # the first real error is the one reported; the others stop at once
                target.stop.set()
    except BaseException:
        # Ctrl-C in this thread: start nothing new (before the stop wakes a worker that could take the next blob),
        # and do not wait for requests in flight.
        outcomes.close()
        target.stop.set()
        raise
    if failure is not None:
        raise failure
    return moved


def complete_layout(
    session: RegistrySession,
    layout: OCILayout,
    digest: str,
    platform: Platform | None = None,
    progress: ProgressCallback = ignore_progress,
) -> dict[str, BlobOutcome]:
    """Download into `layout` the blobs that the image `digest` names but the layout lacks (a registry base's
    layers, left out by the build), digest-verified. With `platform`, only that image of an index."""
    source = LayoutSource(session, layout, None, digest)
    root = source.root()
    if platform is not None and root.is_index:
        root = select_platform(source, root, platform)
    _, blobs = _collect(source, root)
    missing = [d for d in blobs.values() if not layout.has_blob(d.digest, d.size)]
    return move_blobs(source, LayoutTarget(layout, progress), missing, session.options.jobs)


def _absent(target: ImageTarget, document: ManifestDocument, tags: list[str]) -> bool:
    """Whether an attached manifest (under its tags) is not at the target yet. A cosign `.sbom` tag there that
    names something else is replaced, and that is logged (`.sig`/`.att` are merged by the registry target)."""
    absent = False
    for reference in tags or [document.digest]:
        current = target.current_digest(reference)
        if current != document.digest:
            absent = True
            if current is not None and not reference.endswith(APPENDED_SUFFIXES):
                log.warning("%s:%s named %s; it now names the source's %s", target.name, reference, current,
                            document.digest)  # fmt: skip
    return absent


def _index_referrers(target: ImageTarget, documents: list[ManifestDocument]) -> None:
    with_subject = [d for d in documents if d.media_type in mt.MANIFESTS and d.parsed.subject is not None]
    if with_subject:
        target.index_referrers(with_subject)


def default_cache_layout(name: str, cache_dir: str | None) -> OCILayout:
    from ocipush.cachedir import cache_subdir

    return OCILayout(os.path.join(cache_subdir("layouts", cache_dir), name), create=True, durable=False)
