"""Progress lines of a running load or sync, one every ``progress_interval`` seconds, e.g.
``wolkvox sync of 'contacts': 40,700/100,000 records (40.7 %), 4,067 records/s, ETA 15 s, 0 failed,
408 API calls``."""

from __future__ import annotations

import logging
import time

from airflow_provider_wolkvox.client import WolkvoxClient
from airflow_provider_wolkvox.loads.results import LoadSummary

log = logging.getLogger(__name__)


class Progress:
    """Logs how far ``summary`` has come (or a count given to :meth:`tick`), at most once per
    ``interval`` seconds.

    :param what: names the work in the line, e.g. ``"load"`` or ``"sync"``.
    :param unit: what is counted, e.g. ``"records"`` or ``"keys looked up"``.
    :param total: the number of records, when known (the line then says the share done and an ETA).
    :param module: the CRM module, named in the line.

    The rate (and so the ETA) counts this try's own records: the engine sets :attr:`reused` to the
    records taken from an earlier try's journal, which are done without any work of this try.
    """

    def __init__(
        self,
        what: str,
        summary: LoadSummary,
        client: WolkvoxClient,
        total: int | None,
        interval: float,
        *,
        module: str | None = None,
        unit: str = "records",
    ) -> None:
        self.what = what
        self.summary = summary
        self.client = client
        self.total = total
        self.interval = interval
        self.module = module
        self.unit = unit
        self.started = self._last = time.monotonic()
        self.calls_before = client.calls
        self.refused_before = client.refused_busy
        #: Records done by an earlier try (recalled from the journal), left out of the rate.
        self.reused = 0

    def tick(self, done: int | None = None) -> None:
        """Log a line if ``interval`` seconds passed since the last one.

        :param done: how many are done, when not the records of the summary (e.g. keys looked up).
        """
        now = time.monotonic()
        if now - self._last < self.interval:
            return
        self._last = now
        log.info("%s", self.line(now, done))

    def line(self, now: float | None = None, done: int | None = None) -> str:
        """The progress line as of ``now`` (monotonic seconds; default now)."""
        now = time.monotonic() if now is None else now
        counted = done is not None
        done = self.summary.total if done is None else done
        reused = min(self.reused, done)
        rate = (done - reused) / max(now - self.started, 1e-9)
        what = f"wolkvox {self.what}" + (f" of {self.module!r}" if self.module is not None else "")
        parts = [f"{done:,} {self.unit}"]
        if self.total is not None:
            parts = [f"{done:,}/{self.total:,} {self.unit} ({100 * done / max(self.total, 1):.1f} %)"]
        if reused:
            parts.append(f"{reused:,} of them by an earlier try")
        parts.append(f"{rate:,.0f} {self.unit.split()[0]}/s")
        if self.total is not None and done < self.total and rate > 0:
            parts.append(f"ETA {_duration((self.total - done) / rate)}")
        if not counted:
            parts.append(f"{self.summary.failed:,} failed")
        parts.append(f"{self.client.calls - self.calls_before:,} API calls")
        return f"{what}: {', '.join(parts)}"

    def count_calls(self) -> None:
        """Set the summary's calls (those the CRM took) and its refusals as busy, since the start."""
        self.summary.calls = self.client.calls - self.calls_before
        self.summary.refused_busy = self.client.refused_busy - self.refused_before


def _duration(seconds: float) -> str:
    """``15 s``, ``12 min``, ``2.5 h``."""
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 90 * 60:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"
