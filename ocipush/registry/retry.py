"""The single retry policy: which failures are retried, how long to wait, when to give up."""

from __future__ import annotations

import time
from collections.abc import Callable

from ocipush.log import get_logger

_log = get_logger(__name__)

RETRYABLE_STATUS = frozenset({408, 429, 500, 502, 503, 504})
MAX_DELAY = 20.0


# A plain class: every command makes one, and a dataclass costs ~0.2 ms to build at import (S5 in
# docs/benchmarks.md).
class RetryBudget:
    """Counts attempts of one logical operation against the policy's limits."""

    __slots__ = ("attempt", "max_attempts", "max_seconds", "started")

    def __init__(self, max_attempts: int, max_seconds: float) -> None:
        self.max_attempts = max_attempts
        self.max_seconds = max_seconds
        self.attempt = 0
        self.started = time.monotonic()

    def next_delay(self, retry_after: str | None = None) -> float | None:
        """Seconds to sleep before the next attempt, or None when the budget is spent."""
        self.attempt += 1
        if self.attempt >= self.max_attempts:
            return None
        delay = _retry_after_seconds(retry_after)
        if not delay:  # none, or 0 / negative: a server asking for no pause still gets the backoff
            # Exponential backoff with full jitter, so parallel workers do not retry in lock-step.
            import random  # here: most commands never retry, and start-up is what short commands pay for

            delay = random.uniform(0, min(MAX_DELAY, 0.25 * 2**self.attempt))
        if time.monotonic() - self.started + delay > self.max_seconds:
            return None
        return delay

    def sleep(
        self, retry_after: str | None = None, why: str = "", announce: Callable[[str], None] | None = None
    ) -> bool:
        """Wait before the next attempt; False when the budget is spent. The wait is announced before it starts,
        naming `why`: to `announce` (a progress event) when given, else as a warning on the log."""
        delay = self.next_delay(retry_after)
        if delay is None:
            return False
        if why:
            message = f"{why}; retrying in {delay:.1f} s (attempt {self.attempt + 1} of {self.max_attempts})"
            (announce or _log.warning)(message)
        time.sleep(delay)
        return True


def _retry_after_seconds(value: str | None) -> float | None:
    if not value:
        return None
    try:
        return min(max(float(value), 0.0), 60.0)
    except ValueError:
        pass
    from email.utils import parsedate_to_datetime

    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return min(max(when.timestamp() - time.time(), 0.0), 60.0)
