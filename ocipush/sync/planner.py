"""Turn a sync spec into per-image tasks: list repositories and tags, resolve each tag at the source (one HEAD;
a GET when platforms are filtered), and compare with each destination (one HEAD a tag). Equal digests become
`skipped` results and cost nothing more; the rest become tasks, one per source image."""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field

from ocipush.digest import is_digest
from ocipush.document import ManifestDocument
from ocipush.errors import OcipushError, UsageError
from ocipush.log import get_logger
from ocipush.reference import Reference, parse_reference
from ocipush.registry.client import current_digest, list_catalog
from ocipush.registry.ecr import parse_ecr_host
from ocipush.registry.session import RegistrySession
from ocipush.sync.ratelimit import QuotaGate
from ocipush.sync.report import CopyTarget, ImageResult, ImageTask, SyncCallback, SyncEvent
from ocipush.sync.spec import Destination, Source, SyncSpec
from ocipush.sync.tags import created_times, ecr_pushed_times, select_tags

log = get_logger("ocipush.sync")
ATTACHED_TAG = re.compile(r"sha256-[0-9a-f]{64}(\.(sig|att|sbom))?")


@dataclass
class _Image:
    """A source image found under one or more tags of a repository."""

    source: Source
    reference: Reference
    digest: str
    tags: list[str] = field(default_factory=list)
    root: ManifestDocument | None = None  # set when the planner filtered an index
    # tag (or digest) -> what each destination holds under that name: a digest, None, or the error met asking
    held: dict[str, list[Held]] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return f"{self.reference.registry}/{self.reference.repository}@{self.digest}"

    def task(self, targets: list[CopyTarget], referrers: bool) -> ImageTask:
        return ImageTask(
            self.reference.registry,
            self.reference.repository,
            self.digest,
            tuple(self.tags),
            tuple(targets),
            self.root.raw if self.root else None,
            self.root.media_type if self.root else None,
            referrers,
        )


Wanted = tuple[Source, Reference, str | None, str | None]  # (source, repository, tag, pinned digest)
Held = str | None | OcipushError


@dataclass
class _Found:
    """A wanted tag (or digest) resolved at its source, and what each destination holds under its name."""

    wanted: Wanted
    digest: str
    root: ManifestDocument | None
    held: list[Held]


@dataclass
class Plan:
    """What a sync will copy, and what it settled while planning."""

    tasks: list[ImageTask] = field(default_factory=list)
    results: list[ImageResult] = field(default_factory=list)  # skipped, and failed while planning


def repository_name(registry: str, repository: str) -> Reference:
    """The normalised reference of a repository (`docker.io/alpine` is `docker.io/library/alpine`)."""
    return parse_reference(f"{registry}/{repository}")


class Planner:
    def __init__(
        self, spec: SyncSpec, session: RegistrySession, gate: QuotaGate, on_event: SyncCallback, jobs: int
    ) -> None:
        self.spec = spec
        self.session = session
        self.gate = gate
        self.on_event = on_event
        self.jobs = max(1, jobs)
        for destination in spec.destinations:
            if destination.create_repo and parse_ecr_host(destination.registry) is None:
                raise UsageError(f"create-repo works only for Amazon ECR destinations, not {destination.registry}")

    def plan(self) -> Plan:
        """Each repository's tags are listed, then each tag is one task on the pool: its HEAD at the source, then
        its HEAD at each destination. A tag at a time is a request at a time: on a warm sync the round trips, not
        the bytes, are the cost, so they all run side by side, with no round waiting for the slowest of the last.
        Tags naming one digest become one image; the comparison then costs nothing more."""
        plan = Plan()
        with ThreadPoolExecutor(self.jobs, thread_name_prefix="ocipush-plan") as pool:
            listings = [pool.submit(self._wanted, *job) for job in self._repositories()]
            lookups: list[Future[_Found | ImageResult]] = []
            for listing in listings:
                listed = listing.result()
                if isinstance(listed, ImageResult):
                    plan.results.append(listed)
                else:
                    lookups += [pool.submit(self._look_up, wanted) for wanted in listed]
            images: dict[tuple[str, str], _Image] = {}  # (repository, digest) -> image
            for lookup in lookups:
                found = lookup.result()
                if isinstance(found, ImageResult):
                    plan.results.append(found)
                    continue
                source, reference, tag, _ = found.wanted
                key = (str(reference), found.digest)
                image = images.setdefault(key, _Image(source, reference, found.digest, root=found.root))
                image.held[tag or found.digest] = found.held
                if tag:
                    image.tags.append(tag)
        for image in images.values():
            targets: list[CopyTarget] = []
            for number, destination in enumerate(self.spec.destinations):
                outcome = self._compare(image, number, destination)
                if isinstance(outcome, ImageResult):
                    plan.results.append(outcome)
                else:
                    targets.append(outcome)
            if targets:
                plan.tasks.append(image.task(targets, self.spec.referrers))
        return plan

    # --- which repositories -------------------------------------------------------------------------------------

    def _repositories(self) -> Iterator[tuple[Source, str, tuple[str, ...]]]:
        """(source with the spec's defaults, repository, explicit entries or () for every tag that passes)."""
        seen: set[tuple[str, str, tuple[str, ...]]] = set()
        for source in self.spec.sources:
            source = dataclasses.replace(
                source, tags=source.tags or self.spec.tags, platforms=source.platforms or self.spec.platforms
            )
            found: list[tuple[str, tuple[str, ...]]] = list(source.images.items())
            found += [(repository, ()) for repository in source.repositories]
            if source.catalog:
                names = self._catalog(source.registry)
                self.on_event(SyncEvent("info", message=f"{source.registry}: {len(names)} repositories in the catalog"))
                accepts = source.catalog.accepts if not isinstance(source.catalog, bool) else (lambda _: True)
                found += [(name, ()) for name in names if accepts(name)]
            for repository, entries in found:
                if (source.registry, repository, entries) not in seen:
                    seen.add((source.registry, repository, entries))
                    yield source, repository, entries

    def _catalog(self, registry: str) -> list[str]:
        ecr = parse_ecr_host(registry)
        if ecr is not None:  # ECR serves no _catalog: its API lists repositories
            from ocipush.ecr_admin.repositories import describe_repositories

            return [r.name for r in describe_repositories(region=ecr.region, profile=self.session.options.aws_profile)]
        return list_catalog(self.session.transport(repository_name(registry, "x").api_host))

    # --- one repository, one tag, one destination ----------------------------------------------------------------

    def _failed(self, name: str, exc: OcipushError) -> ImageResult:
        failed = ImageResult(name, "", [], "", "failed", error=str(exc))
        self.on_event(SyncEvent("failed", failed))
        return failed

    def _wanted(
        self, source: Source, repository: str, entries: tuple[str, ...]
    ) -> list[Wanted] | ImageResult:
        """(source, repository, tag, pinned digest) for each tag or digest to take; a failed result when the
        repository cannot be listed."""
        reference = repository_name(source.registry, repository)
        if entries:
            wanted: list[Wanted] = []
            for entry in entries:
                name, _, pin = entry.rpartition("@") if "@" in entry else (entry, "", "")
                wanted.append((source, reference, None, entry) if is_digest(entry) else
                              (source, reference, name, pin or None))  # fmt: skip
            return wanted
        client = self.session.client(reference)
        ecr = parse_ecr_host(reference.registry)

        def push_times(tags: Sequence[str]) -> dict[str, float]:
            if ecr is not None:
                return ecr_pushed_times(reference.repository, ecr.region, self.session.options.aws_profile)
            return created_times(client, tags)

        try:
            listed = client.list_tags()
            if self.spec.referrers:  # the referrers tag schema's and cosign's tags come along with their subjects
                listed = [tag for tag in listed if not ATTACHED_TAG.fullmatch(tag)]
            tags = select_tags(listed, source.tags, push_times)
        except OcipushError as exc:
            return self._failed(f"{reference.registry}/{reference.repository}", exc)
        return [(source, reference, tag, None) for tag in tags]

    def _resolve(
        self, source: Source, reference: Reference, tag: str | None, pinned: str | None
    ) -> tuple[str, ManifestDocument | None] | ImageResult:
        """The digest a tag names at the source (one HEAD), or the filtered index when platforms are chosen."""
        client = self.session.client(reference)
        try:
            self.gate.check(client.transport)
            if source.platforms:
                root = client.get_manifest(pinned or tag or "")
                if root.is_index:
                    root = index_for_platforms(root, source.platforms, str(reference))
                return root.digest, root
            if pinned is not None:
                return pinned, None  # the pin is the truth: the copy fetches by digest and verifies it
            found = client.manifest_digest(tag or "")
            if found is None:
                raise UsageError(f"{reference.registry}/{reference.repository}:{tag} does not exist")
            return found[0], None
        except OcipushError as exc:
            return self._failed(f"{reference.registry}/{reference.repository}:{tag or pinned}", exc)

    def _look_up(self, wanted: Wanted) -> _Found | ImageResult:
        resolved = self._resolve(*wanted)
        if isinstance(resolved, ImageResult):
            return resolved
        digest, root = resolved
        source, reference, tag, _ = wanted
        held: list[Held] = []
        for destination in self.spec.destinations:
            target = destination_reference(destination, source.registry, reference.repository)
            try:
                held.append(current_digest(self.session.client(target), tag or digest))
            except OcipushError as exc:
                held.append(exc)
        return _Found(wanted, digest, root, held)

    def _compare(self, image: _Image, number: int, destination: Destination) -> CopyTarget | ImageResult:
        """What destination `number` lacks of the image, or a skipped result when it lacks nothing."""
        target = destination_reference(destination, image.source.registry, image.reference.repository)
        names = image.tags or [image.digest]
        held = [image.held[name][number] for name in names]
        error = next((found for found in held if isinstance(found, OcipushError)), None)
        if error is not None:
            return self._failed(f"{target.registry}/{target.repository}", error)
        missing = [name for name, found in zip(names, held, strict=True) if found != image.digest]
        if not missing:
            skipped = ImageResult(image.name, f"{target.registry}/{target.repository}", image.tags, image.digest,
                                  "skipped")  # fmt: skip
            self.on_event(SyncEvent("skipped", skipped))
            return skipped
        return CopyTarget(
            target.registry,
            target.repository,
            tuple(name for name in missing if name != image.digest),
            destination.create_repo,
            destination.repository_settings.to_dict(),
        )


def destination_reference(destination: Destination, source_registry: str, repository: str) -> Reference:
    return repository_name(destination.registry, destination.repository_for(source_registry, repository))


def index_for_platforms(document: ManifestDocument, platforms: tuple[str, ...], name: str) -> ManifestDocument:
    """The index with only the children for `platforms`; the exact original when it keeps them all."""
    from ocipush.models import parse_platform, platform_matches

    wanted = [parse_platform(text) for text in platforms]
    index = document.index
    kept = [c for c in index.manifests if any(platform_matches(w, c.platform) for w in wanted)]
    if not kept:
        available = ", ".join(str(c.platform) for c in index.manifests if c.platform) or "none"
        raise UsageError(f"{name} has no image for {', '.join(platforms)} (available: {available})")
    if len(kept) == len(index.manifests):
        return document
    return ManifestDocument.from_model(index.model_copy(update={"manifests": kept}))
