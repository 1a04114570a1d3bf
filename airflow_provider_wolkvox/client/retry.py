"""The one retry policy: which failures are retried, and for how long.

A request is retried automatically only when the server cannot have processed it: it never reached
the server, or it was refused as a whole (SIMULTANEOUS 403, 429, maintenance 403/503). Such
refusals are waited out for a time budget (minutes), since several workers sharing one token meet
them as a matter of course. A failure after the request was sent (lost answer, 5xx, unreadable 2xx)
is retried only for reads; for inserts it becomes "outcome unknown" (see ``client.py``).
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass

from airflow_provider_wolkvox.exceptions import WolkvoxError, WolkvoxTransientError

#: Seconds between two log lines about one request that keeps being retried.
RETRY_LOG_INTERVAL = 60.0


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential backoff with full jitter, bounded by a time budget per request.

    :param base_delay: seconds before the first retry (before jitter); doubles each time.
    :param max_delay: cap of one wait.
    :param time_budget: seconds from a request's first try after which it is no longer retried.
    :param max_attempts: tries in all, the first included; None: as many as the budget allows.
    """

    base_delay: float = 0.1
    max_delay: float = 5.0
    time_budget: float = 300.0
    max_attempts: int | None = None

    def backoff(self) -> Backoff:
        """The retry state of one request, started now."""
        return Backoff(self)


class Backoff:
    """The waits of one request: :meth:`next_delay` until the budget or the attempts run out."""

    def __init__(self, policy: RetryPolicy) -> None:
        self.policy = policy
        self.tries = 1
        self.started = time.monotonic()
        self._logged_at: float | None = None

    def next_delay(self) -> float | None:
        """The wait before the next try, or None when no try is left."""
        policy = self.policy
        if policy.max_attempts is not None and self.tries >= policy.max_attempts:
            return None
        delay = random.uniform(0, min(policy.max_delay, policy.base_delay * 2 ** min(self.tries - 1, 30)))
        if time.monotonic() - self.started + delay > policy.time_budget:
            return None
        self.tries += 1
        return delay

    def due_for_log(self) -> bool:
        """True for the first retry and then at most once per ``RETRY_LOG_INTERVAL``."""
        now = time.monotonic()
        if self._logged_at is not None and now - self._logged_at < RETRY_LOG_INTERVAL:
            return False
        self._logged_at = now
        return True

    @property
    def elapsed(self) -> float:
        return time.monotonic() - self.started


def is_retryable(error: WolkvoxError, *, idempotent: bool) -> bool:
    """True when ``error`` may go away on a retry and retrying cannot duplicate a record."""
    if isinstance(error, WolkvoxTransientError):
        return True
    return idempotent and not error.fail_fast
