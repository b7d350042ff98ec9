"""Turn a sync spec into per-image tasks: list repositories and tags, resolve each tag at the source (one HEAD;
a GET when platforms are filtered), and compare with each destination (one HEAD a tag). Equal digests become
`skipped` results and cost nothing more; the rest become tasks, one per source image."""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from ocipush.digest import is_digest
from ocipush.errors import OcipushError, UsageError
from ocipush.models import ManifestDocument, parse_platform, platform_matches
from ocipush.reference import Reference, parse_reference
from ocipush.registry.client import list_catalog
from ocipush.registry.ecr import parse_ecr_host
from ocipush.registry.session import RegistrySession
from ocipush.sync.ratelimit import QuotaGate
from ocipush.sync.report import CopyTarget, ImageResult, ImageTask, SyncCallback, SyncEvent
from ocipush.sync.spec import Destination, Source, SyncSpec
from ocipush.sync.tags import created_times, ecr_pushed_times, select_tags
from ocipush.transfer import current_digest

log = logging.getLogger("ocipush.sync")


@dataclass
class _Image:
    """A source image found under one or more tags of a repository."""

    digest: str
    tags: list[str] = field(default_factory=list)
    root: ManifestDocument | None = None  # set when the planner filtered an index


@dataclass
class Plan:
    tasks: list[ImageTask] = field(default_factory=list)
    results: list[ImageResult] = field(default_factory=list)  # skipped, and failed while planning

    def add(self, other: Plan) -> None:
        self.tasks += other.tasks
        self.results += other.results


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
        plan = Plan()
        work = list(self._repositories())
        with ThreadPoolExecutor(self.jobs, thread_name_prefix="ocipush-plan") as pool:
            for part in pool.map(lambda job: self._plan_repository(*job), work):
                plan.add(part)
        return plan

    # --- which repositories -------------------------------------------------------------------------------------

    def _repositories(self) -> Iterator[tuple[Source, str, tuple[str, ...]]]:
        """(source with the spec's defaults, repository, explicit entries or () for every tag that passes)."""
        seen: set[tuple[str, str, tuple[str, ...]]] = set()
        for source in self.spec.sources:
            source = source.model_copy(
                update={"tags": source.tags or self.spec.tags, "platforms": source.platforms or self.spec.platforms}
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

    # --- one repository -----------------------------------------------------------------------------------------

    def _plan_repository(self, source: Source, repository: str, entries: tuple[str, ...]) -> Plan:
        reference = repository_name(source.registry, repository)
        plan = Plan()
        try:
            images = self._source_images(source, reference, entries)
        except OcipushError as exc:
            # The repository cannot be read at all: one failed result stands for it.
            name = f"{reference.registry}/{reference.repository}"
            failed = ImageResult(name, "", [], "", "failed", error=str(exc))
            self.on_event(SyncEvent("failed", failed))
            plan.results.append(failed)
            return plan
        for image in images:
            plan.add(self._compare(source, reference, image))
        return plan

    def _source_images(self, source: Source, reference: Reference, entries: tuple[str, ...]) -> list[_Image]:
        client = self.session.client(reference)
        wanted: list[tuple[str | None, str | None]] = []  # (tag, pinned digest)
        if entries:
            for entry in entries:
                name, _, pin = entry.rpartition("@") if "@" in entry else (entry, "", "")
                wanted.append((None, entry) if is_digest(entry) else (name, pin or None))
        else:
            ecr = parse_ecr_host(reference.registry)

            def push_times(tags: Sequence[str]) -> dict[str, float]:
                if ecr is not None:
                    return ecr_pushed_times(reference.repository, ecr.region, self.session.options.aws_profile)
                return created_times(client, tags)

            tags = select_tags(client.list_tags(), source.tags, push_times)
            wanted = [(tag, None) for tag in tags]
        images: dict[str, _Image] = {}
        for tag, pinned in wanted:
            self.gate.check(client.transport)
            root: ManifestDocument | None = None
            if source.platforms:
                root = client.get_manifest(pinned or tag or "")
                if root.is_index:
                    root = filter_index(root, source.platforms, str(reference))
                digest = root.digest
            elif pinned is not None:
                digest = pinned  # the pin is the truth: the copy fetches by digest and verifies it
            else:
                found = client.manifest_digest(tag or "")
                if found is None:
                    raise UsageError(f"{reference}:{tag} does not exist")
                digest = found[0]
            image = images.setdefault(digest, _Image(digest, root=root))
            if tag:
                image.tags.append(tag)
        return list(images.values())

    def _compare(self, source: Source, reference: Reference, image: _Image) -> Plan:
        plan = Plan()
        targets: list[CopyTarget] = []
        for destination in self.spec.destinations:
            target = destination_reference(destination, source.registry, reference.repository)
            client = self.session.client(target)
            names = image.tags or [image.digest]
            missing = [name for name in names if current_digest(client, name) != image.digest]
            if not missing:
                skipped = ImageResult(
                    f"{reference.registry}/{reference.repository}@{image.digest}",
                    f"{target.registry}/{target.repository}",
                    image.tags,
                    image.digest,
                    "skipped",
                )
                self.on_event(SyncEvent("skipped", skipped))
                plan.results.append(skipped)
                continue
            targets.append(
                CopyTarget(
                    target.registry,
                    target.repository,
                    tuple(name for name in missing if name != image.digest),
                    destination.create_repo,
                    destination.repository_settings.model_dump(),
                )
            )
        if targets:
            plan.tasks.append(
                ImageTask(
                    reference.registry,
                    reference.repository,
                    image.digest,
                    tuple(image.tags),
                    tuple(targets),
                    image.root.raw if image.root else None,
                    image.root.media_type if image.root else None,
                )
            )
        return plan


def destination_reference(destination: Destination, source_registry: str, repository: str) -> Reference:
    return repository_name(destination.registry, destination.repository_for(source_registry, repository))


def filter_index(document: ManifestDocument, platforms: tuple[str, ...], name: str) -> ManifestDocument:
    """The index with only the children for `platforms`; the exact original when it keeps them all."""
    wanted = [parse_platform(text) for text in platforms]
    index = document.index
    kept = [c for c in index.manifests if any(platform_matches(w, c.platform) for w in wanted)]
    if not kept:
        available = ", ".join(str(c.platform) for c in index.manifests if c.platform) or "none"
        raise UsageError(f"{name} has no image for {', '.join(platforms)} (available: {available})")
    if len(kept) == len(index.manifests):
        return document
    return ManifestDocument.from_model(index.model_copy(update={"manifests": kept}))
