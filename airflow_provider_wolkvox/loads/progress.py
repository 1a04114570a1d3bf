"""Progress lines of a running load or sync, one every ``progress_interval`` seconds."""

from __future__ import annotations

import logging
import time

from airflow_provider_wolkvox.client import WolkvoxClient
from airflow_provider_wolkvox.loads.results import LoadSummary

log = logging.getLogger(__name__)


class Progress:
    """Logs how far ``summary`` has come, at most once per ``interval`` seconds.

    :param what: names the work in the line, e.g. ``"load"`` or ``"sync"``.
    :param total: the number of records, when known.
    """

    def __init__(
        self, what: str, summary: LoadSummary, client: WolkvoxClient, total: int | None, interval: float
    ) -> None:
        self.what = what
        self.summary = summary
        self.client = client
        self.total = total
        self.interval = interval
        self.started = self._last = time.monotonic()
        self.calls_before = client.calls

    def tick(self) -> None:
        """Log a line if ``interval`` seconds passed since the last one."""
        now = time.monotonic()
        if now - self._last < self.interval:
            return
        self._last = now
        done = self.summary.total
        of_total = f"/{self.total}" if self.total is not None else ""
        log.info(
            "wolkvox %s: %d%s records done (%.0f records/s), %d failed, %d API calls",
            self.what,
            done,
            of_total,
            done / max(now - self.started, 1e-9),
            self.summary.failed,
            self.client.calls - self.calls_before,
        )
