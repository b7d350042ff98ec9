"""The registries' rate limits as a sync meets them: Docker Hub's pull quota (`ratelimit-remaining`, read from the
answers the source already sends) and ECR's PutImage rate. `Retry-After` on 429/503 is the transport's job."""

from __future__ import annotations

import re
import threading
import time
from dataclasses import dataclass

from ocipush.errors import RateLimitReached
from ocipush.log import get_logger
from ocipush.registry.transport import Transport
from ocipush.sync.report import SyncCallback, SyncEvent
from ocipush.sync.spec import RateLimits

log = get_logger("ocipush.sync")


@dataclass(frozen=True)
class Quota:
    """What a registry's rate-limit headers say is left."""

    remaining: int
    limit: int | None
    window: int | None  # seconds


def parse_quota(headers: tuple[str, str] | None) -> Quota | None:
    """Docker Hub's `ratelimit-remaining: 76;w=21600` and `ratelimit-limit: 100;w=21600`."""
    if headers is None:
        return None
    remaining, limit = (re.match(r"\s*(\d+)(?:;w=(\d+))?", h) for h in headers)
    if remaining is None:
        return None
    window = remaining.group(2) or (limit.group(2) if limit else None)
    return Quota(int(remaining.group(1)), int(limit.group(1)) if limit else None, int(window) if window else None)


class QuotaGate:
    """Checked before each image is read from a source: below the floor, pause until the quota's window has
    refilled enough (Docker Hub's window refills continuously) or stop."""

    def __init__(self, limits: RateLimits, on_event: SyncCallback) -> None:
        self.limits = limits
        self.on_event = on_event
        self._lock = threading.Lock()

    def check(self, transport: Transport) -> None:
        with self._lock:  # one thread pauses; the others wait here instead of spending the quota meanwhile
            quota = parse_quota(transport.ratelimit)
            if quota is None or quota.remaining >= self.limits.floor:
                return
            what = f"{transport.host} has {quota.remaining} pulls left (floor {self.limits.floor})"
            if self.limits.action == "stop":
                raise RateLimitReached(f"{what}: stopping (rate-limits.action is stop)")
            per_pull = (quota.window / quota.limit) if quota.window and quota.limit else 60.0
            pause = min(self.limits.max_pause, (self.limits.floor - quota.remaining + 1) * per_pull)
            log.info("%s: pausing %.0f s", what, pause)
            self.on_event(SyncEvent("info", message=f"{what}: pausing {pause:.0f} s"))
            time.sleep(pause)
            transport.ratelimit = None  # the next answer says where the quota stands now


class Pacer:
    """At most `per_second` calls a second, spread evenly (ECR's PutImage quota per Region)."""

    def __init__(self, per_second: float) -> None:
        self.interval = 1.0 / per_second
        self._next = 0.0
        self._lock = threading.Lock()

    def wait(self) -> None:
        with self._lock:
            now = time.monotonic()
            start = max(now, self._next)
            self._next = start + self.interval
        if start > now:
            time.sleep(start - now)
