"""What a sync plans, does and reports: per-image tasks (picklable, so Dask can ship them), per-image results,
progress events, and the report `ocipush.sync` returns."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

Status = Literal["planned", "copied", "skipped", "failed"]


@dataclass(frozen=True)
class CopyTarget:
    """One destination repository of an image and the tags to set there (none: pushed by digest only)."""

    registry: str
    repository: str
    tags: tuple[str, ...]
    create_repo: bool = False
    repository_settings: dict[str, Any] = field(default_factory=dict, hash=False, compare=False)

    @property
    def name(self) -> str:
        return f"{self.registry}/{self.repository}"


@dataclass(frozen=True)
class ImageTask:
    """Copy one source image (a manifest or index, by digest) to the targets that lack it. `root` holds the exact
    bytes of an index filtered to some platforms (made by the planner); None copies the source's own root."""

    registry: str
    repository: str
    digest: str
    source_tags: tuple[str, ...]
    targets: tuple[CopyTarget, ...]
    root: bytes | None = None
    root_media_type: str | None = None
    referrers: bool = True

    @property
    def source(self) -> str:
        return f"{self.registry}/{self.repository}@{self.digest}"

    @property
    def key(self) -> str:
        """A stable name for the task (the Dask key): the same work always has the same key."""
        targets = ",".join(sorted(f"{t.name}:{'+'.join(t.tags)}" for t in self.targets))
        return f"{self.source}->{targets}"


@dataclass
class ImageResult:
    """One image at one destination repository."""

    source: str
    target: str
    tags: list[str]
    digest: str
    status: Status
    error: str | None = None
    blobs: dict[str, int] = field(default_factory=dict)  # uploaded / exists / mounted
    referrers: int = 0  # attached manifests (signatures, SBOMs) copied along
    seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if v not in (None, {}) and (k != "referrers" or v)}


@dataclass(frozen=True)
class SyncEvent:
    """Progress of a sync: `planned`/`skipped`/`copied`/`failed` carry the image's result; `info` (repositories
    listed, pauses for rate limits) only a message."""

    kind: Literal["planned", "skipped", "copied", "failed", "info"]
    result: ImageResult | None = None
    message: str = ""


SyncCallback = Callable[[SyncEvent], None]


def ignore_events(_: SyncEvent) -> None:
    """The default callback: the library never prints."""


@dataclass
class SyncReport:
    """What a sync did, image by image, and where its time went."""

    results: list[ImageResult] = field(default_factory=list)
    dry_run: bool = False
    not_run: int = 0  # images left when a failure stopped the sync (without keep_going)
    seconds: float = 0.0
    # where the time went: plan (listing, HEADs), start (a Dask cluster's start-up), copy
    phases: dict[str, float] = field(default_factory=dict)

    def having(self, status: Status) -> list[ImageResult]:
        return [r for r in self.results if r.status == status]

    @property
    def copied(self) -> list[ImageResult]:
        return self.having("copied")

    @property
    def skipped(self) -> list[ImageResult]:
        return self.having("skipped")

    @property
    def failed(self) -> list[ImageResult]:
        return self.having("failed")

    @property
    def planned(self) -> list[ImageResult]:
        return self.having("planned")

    @property
    def ok(self) -> bool:
        return not self.failed and not self.not_run

    def summary(self) -> dict[str, int]:
        counts = {s: len(self.having(s)) for s in ("copied", "skipped", "failed")}
        if self.dry_run:
            counts["planned"] = len(self.planned)
        if self.not_run:
            counts["not_run"] = self.not_run
        return counts

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "summary": self.summary(),
            "seconds": round(self.seconds, 3),
            "phases": {k: round(v, 3) for k, v in self.phases.items()},
        }
        for status in ("planned", "copied", "skipped", "failed"):
            if status != "planned" or self.dry_run:
                data[status] = [r.to_dict() for r in self.having(status)]
        return data
