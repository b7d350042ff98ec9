"""Progress events emitted by the library; the CLI decides how to show them."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

EventKind = Literal["start", "progress", "skip", "mount", "retry", "resume", "done", "info"]


@dataclass(frozen=True)
class ProgressEvent:
    """What happened to a blob: started, progressed, skipped, mounted, retried, resumed or done."""

    kind: EventKind
    digest: str
    total: int | None = None
    done: int = 0
    message: str = ""


ProgressCallback = Callable[[ProgressEvent], None]


def ignore_progress(_: ProgressEvent) -> None:
    """The default callback: the library never prints."""
