"""One image task: copy a source image to each destination that lacks it, through the graph copy of
`ocipush.transfer` (HEAD before upload, mounts, streaming). Idempotent: run again, it finds the work done."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from ocipush.errors import OcipushError, RegistryAnswerError
from ocipush.log import get_logger
from ocipush.models import Descriptor, ManifestDocument
from ocipush.progress import ignore_progress
from ocipush.reference import Reference
from ocipush.referrers import RegistryReferrers
from ocipush.registry.ecr import is_ecr, parse_ecr_host
from ocipush.registry.session import RegistrySession
from ocipush.sync.ratelimit import Pacer, QuotaGate
from ocipush.sync.report import CopyTarget, ImageResult, ImageTask, ignore_events
from ocipush.sync.spec import RateLimits
from ocipush.transfer import BlobOutcome, ImageSource, RegistrySource, RegistryTarget, TransferResult, transfer

log = get_logger("ocipush.sync")
# The distribution registry refuses a manifest (DIGEST_INVALID) whose blob link another process is rewriting at that
# moment (SyncTarget): put it again, after a pause, before calling the image failed. One image of 80 hit this in one
# benchmark run of five with four Dask workers.
LINK_RACE_TRIES = 3
LINK_RACE_PAUSE = 0.05  # seconds, times the attempt


class SyncTarget(RegistryTarget):
    """One destination repository of an image task, asking the registry only what this sync does not know yet
    (on 2 cores the registry's own CPU per request is much of a cold sync's time): the tags the planner just found
    missing are not looked up again, and a blob this process already put into the repository costs nothing. Any
    other blob is asked for (a HEAD) before it is mounted or uploaded: the distribution registry rewrites a blob's
    link in the repository on every mount or upload, not atomically, and a manifest PUT of another worker that reads
    it meanwhile is refused (DIGEST_INVALID; seen with Dask workers, which share no state), and is put again. Manifest
    pushes wait for the pacer (ECR's PutImage rate)."""

    def __init__(self, session: RegistrySession, target: CopyTarget, digest: str, context: CopyContext) -> None:
        # the planner's HEADs said these are missing a moment ago; a copy run twice only puts them again
        absent: dict[str, str | None] = dict.fromkeys(target.tags or [digest])
        super().__init__(session, Reference(target.registry, target.repository), ignore_progress, absent)
        self.context = context
        self.pacer = context.pacer(target.registry)
        self.host = self.client.transport.host

    def put_blob(self, source: ImageSource, descriptor: Descriptor) -> BlobOutcome:
        repository = self.reference.repository
        if self.context.holds(self.host, repository, descriptor.digest):
            return "exists"
        mounts = [name for name in source.mount_from(descriptor, self.host) if name != repository]
        return self.uploader.upload(source.blob(descriptor), mounts)

    def put_manifest(self, document: ManifestDocument, tags: list[str], top: bool = True) -> None:
        for attempt in range(1, LINK_RACE_TRIES + 1):
            for _ in tags or [document.digest]:
                if self.pacer is not None:
                    self.pacer.wait()
            try:
                super().put_manifest(document, tags, top)
                return
            except RegistryAnswerError as exc:
                if exc.code != "DIGEST_INVALID" or attempt == LINK_RACE_TRIES:
                    raise
                log.info("%s refused manifest %s (%s): putting it again", self.host, document.digest[:19], exc.code)
                time.sleep(LINK_RACE_PAUSE * attempt)


class MountingSource(RegistrySource):
    """A source image that also names, for a cross-repository mount, a destination repository this sync already
    copied the blob into: mirrored images share base layers, and a mount moves no bytes."""

    def __init__(self, session: RegistrySession, reference: Reference, root: ManifestDocument | None,
                 context: CopyContext) -> None:  # fmt: skip
        super().__init__(session, reference, root)
        self.homes = context.home
        # one finder per source repository for the whole sync: its tag listing and API probe are asked once
        self.referrers = context.referrer_finder(reference)

    def mount_from(self, descriptor: Descriptor, host: str) -> list[str]:
        home = self.homes(host, descriptor.digest)
        return [*super().mount_from(descriptor, host), *([home] if home else [])]


class CopyContext:
    """What every image task of one process shares: the registry session (pooled connections, tokens), the quota
    gate, one pacer per ECR Region, the repositories this process created, where it put each blob (for mounts),
    a referrers finder per source repository, and a lock per destination repository."""

    def __init__(
        self, session: RegistrySession, limits: RateLimits, gate: QuotaGate | None = None, jobs: int | None = None
    ) -> None:
        self.session = session
        self.jobs = jobs or session.options.jobs  # blobs of one image at once
        self.limits = limits
        self.gate = gate or QuotaGate(limits, ignore_events)
        self._pacers: dict[str, Pacer] = {}
        self._created: set[str] = set()
        self._repository_locks: dict[str, threading.Lock] = {}
        self._homes: dict[tuple[str, str], str] = {}  # (registry host, blob digest) -> a repository holding it
        self._held: dict[tuple[str, str], set[str]] = {}  # (registry host, repository) -> blobs put or found there
        self._finders: dict[str, RegistryReferrers] = {}
        self._lock = threading.Lock()

    def referrer_finder(self, reference: Reference) -> RegistryReferrers:
        key = f"{reference.api_host}/{reference.repository}"
        with self._lock:
            if key not in self._finders:
                finder = self._finders[key] = RegistryReferrers(self.session.client(reference))
                # A registry serves the referrers API in all its repositories or in none: once one finder of
                # this host knows, the others need not ask (a request per source repository).
                finder.api = next((f.api for k, f in self._finders.items()
                                   if f.api is not None and k.startswith(f"{reference.api_host}/")), None)  # fmt: skip
            return self._finders[key]

    def home(self, host: str, digest: str) -> str | None:
        with self._lock:
            return self._homes.get((host, digest))

    def holds(self, host: str, repository: str, digest: str) -> bool:
        with self._lock:
            return digest in self._held.get((host, repository), ())

    def copied(self, host: str, repository: str, done: TransferResult) -> None:
        """Record where an image's blobs now are."""
        with self._lock:
            for digest in done.blobs:
                self._homes[host, digest] = repository
            self._held.setdefault((host, repository), set()).update(done.blobs)

    def repository_lock(self, name: str) -> threading.Lock:
        """One image at a time into a destination repository: images of one repository share layers, and the
        second finds them there (a HEAD) instead of uploading them alongside the first. Concurrent uploads of one
        blob into one repository also race in the distribution registry's filesystem storage (a manifest PUT
        then fails with DIGEST_INVALID)."""
        with self._lock:
            return self._repository_locks.setdefault(name, threading.Lock())

    def pacer(self, host: str) -> Pacer | None:
        ecr = parse_ecr_host(host)
        if ecr is None and not is_ecr(host):
            return None
        with self._lock:
            key = ecr.region if ecr else host
            if key not in self._pacers:
                self._pacers[key] = Pacer(self.limits.ecr_put_image_per_second)
            return self._pacers[key]

    def repository_creator(self, target: CopyTarget) -> Callable[[], bool] | None:
        if not target.create_repo:
            return None
        ecr = parse_ecr_host(target.registry)
        if ecr is None:
            return None

        def create() -> bool:
            from ocipush.ecr_admin.repositories import RepositoryOptions, ensure_repository

            with self._lock:  # one CreateRepository a repository per process, however many tags race to it
                if target.name not in self._created:
                    settings = RepositoryOptions.model_validate(target.repository_settings)
                    profile = self.session.options.aws_profile
                    if ensure_repository(target.repository, ecr.region, settings, profile=profile):
                        log.info("created repository %s", target.name)
                    self._created.add(target.name)
            return True  # created now or by someone else meanwhile: either way, try again

        return create


def copy_image(task: ImageTask, context: CopyContext) -> list[ImageResult]:
    """Copy the task's image to each of its targets; a failure is a `failed` result, never an exception."""
    reference = Reference(task.registry, task.repository, None, task.digest)
    root = ManifestDocument(task.root, task.root_media_type or "") if task.root else None
    results = []
    for target in task.targets:
        started = time.monotonic()
        destination = f"{target.registry}/{target.repository}"
        try:
            context.gate.check(context.session.transport(reference.api_host))
            source = MountingSource(context.session, reference, root, context)
            with context.repository_lock(destination):
                image_target = SyncTarget(context.session, target, task.digest, context)
                done = transfer(
                    source,
                    image_target,
                    list(target.tags),
                    jobs=context.jobs,
                    on_missing_repository=context.repository_creator(target),
                    referrers=task.referrers,
                )
            context.copied(image_target.host, target.repository, done)
            result = ImageResult(task.source, destination, list(target.tags), task.digest, "copied", blobs=done.counts,
                                 referrers=len(done.referrers))  # fmt: skip
        except OcipushError as exc:
            log.warning("copy %s to %s failed: %s", task.source, destination, exc)
            result = ImageResult(task.source, destination, list(target.tags), task.digest, "failed", error=str(exc))
        result.seconds = round(time.monotonic() - started, 3)
        results.append(result)
    return results
