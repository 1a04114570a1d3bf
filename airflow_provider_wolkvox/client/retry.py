"""The one retry policy: which failures are retried, and how long to wait between tries.

A request is retried automatically only when the server cannot have processed it (the request
never reached it, or it was refused as a whole: SIMULTANEOUS 403, 429, maintenance 403/503). A
failure after the request was sent (lost answer, 5xx, unreadable 2xx) is retried only for reads;
for inserts it becomes "outcome unknown" (see ``client.py``).
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass

from airflow_provider_wolkvox.exceptions import WolkvoxError, WolkvoxTransientError


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential backoff with full jitter, bounded in attempts and in total wait.

    :param max_attempts: tries in all, the first included.
    :param base_delay: seconds before the first retry (before jitter); doubles each time.
    :param max_delay: cap of one wait.
    :param max_total_wait: cap of all waits of one request together.
    """

    max_attempts: int = 8
    base_delay: float = 0.1
    max_delay: float = 10.0
    max_total_wait: float = 60.0

    def delays(self) -> Iterator[float]:
        """The waits before each retry; ends when attempts or the total wait run out."""
        waited = 0.0
        for retry in range(self.max_attempts - 1):
            delay = random.uniform(0, min(self.max_delay, self.base_delay * 2**retry))
            if waited + delay > self.max_total_wait:
                return
            waited += delay
            yield delay


def is_retryable(error: WolkvoxError, *, idempotent: bool) -> bool:
    """True when ``error`` may go away on a retry and retrying cannot duplicate a record."""
    if isinstance(error, WolkvoxTransientError):
        return True
    return idempotent and not error.fail_fast
