"""Settling records whose request may have left without an answer: are they in the CRM or not?

Records are recognised by ``dedupe_field``. The look-ups wait until the CRM must be done with the
request (when no answer came, the request's start plus the timeout). The records of one lost request
are settled together: one ``queryDates.php`` window from the request's send time to then (narrowed
while an answer holds as many records as the limit, whatever their order: ``windows.py``) shows
every record the CRM created meanwhile, and each of ours is found there, or is absent if the window
was read whole. A window holding none of them is confirmed by one ``query.php`` look-up before they
are sent again. The window is placed on the CRM's clock, whose time zone and drift are not public:
:class:`CrmClock` learns the offset from a record of this load whose creation time the CRM reports
(one ``query.php`` call per load), and every window is widened by ``CLOCK_MARGIN``. Per-record
``query.php`` look-ups are the fallback: for a request of one record, when the clock cannot be
learned, when the window cannot be read whole (more records than the limit in one second of it) or
when ``queryDates.php`` is refused.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from airflow_provider_wolkvox import api
from airflow_provider_wolkvox.client.client import WolkvoxClient
from airflow_provider_wolkvox.exceptions import WolkvoxBadRequestError, WolkvoxError
from airflow_provider_wolkvox.loads.compare import is_empty, same_value
from airflow_provider_wolkvox.loads.records import PreparedRecord
from airflow_provider_wolkvox.loads.windows import WindowUnreadable, created_between, crm_seconds

log = logging.getLogger(__name__)

#: Seconds every window is widened by, on both sides, for drift between the worker's and the CRM's clock.
CLOCK_MARGIN = 1.0
#: Tries of a record's look-up when the look-up itself fails.
LOOKUP_ROUNDS = 3


@dataclass
class Settlement:
    """What the CRM holds of records of unknown outcome."""

    #: Records found, by input index: their ids.
    found: dict[int, str] = field(default_factory=dict)
    #: Records certainly not in the CRM: safe to send again. The others (no dedupe value, look-ups
    #: that kept failing) stay of unknown outcome.
    absent: list[PreparedRecord] = field(default_factory=list)
    #: Records whose look-up failed this round (tried again by :meth:`Settler.settle`).
    failed: list[PreparedRecord] = field(default_factory=list)


@dataclass(frozen=True)
class Reference:
    """A record this load created, with when its request went out and came back (worker clock)."""

    value: Any
    wolkvox_id: str
    sent_at: float
    answered_at: float


class CrmClock:
    """The offset of the CRM's clock: its wall time read as UTC, minus the worker's epoch time, in seconds.

    Known as an interval, narrowed by each record whose creation time is bracketed by its request.
    """

    def __init__(self) -> None:
        self.low: float | None = None
        self.high: float | None = None

    @property
    def known(self) -> bool:
        return self.low is not None

    def observe(self, created: Any, sent_at: float, answered_at: float) -> bool:
        """Learn from a record created between ``sent_at`` and ``answered_at``; False if unreadable."""
        crm = crm_seconds(created)
        if crm is None:
            return False
        # The CRM's seconds are truncated: the record was created within [crm, crm + 1).
        low, high = crm - answered_at, crm + 1 - sent_at
        if self.low is None or self.high is None or low > self.high or high < self.low:
            self.low, self.high = low, high  # the first reading, or the CRM's clock moved
        else:
            self.low, self.high = max(self.low, low), min(self.high, high)
        return True

    def window(self, sent_at: float, until: float) -> tuple[int, int]:
        """CRM-clock seconds (as UTC epoch) in which a request sent then may have created records."""
        if self.low is None or self.high is None:
            raise ValueError("the CRM's clock is not known yet")
        return math.floor(sent_at + self.low - CLOCK_MARGIN), math.ceil(until + self.high + CLOCK_MARGIN)


class Settler:
    """Settles the records of lost requests of one load by ``dedupe_field``.

    :param client: the load's client; every look-up is a call of the quota.
    """

    def __init__(self, client: WolkvoxClient, operation: str, module: str, dedupe_field: str) -> None:
        self.client = client
        self.operation = operation
        self.module = module
        self.dedupe_field = dedupe_field
        self.clock = CrmClock()
        #: The latest record this load created with a dedupe value, to learn the clock from.
        self.reference: Reference | None = None
        self._windows_refused = False

    def remember(self, record: PreparedRecord, wolkvox_id: str, sent_at: float, answered_at: float) -> None:
        """Keep ``record``, created by a request sent and answered then, as the clock's reference."""
        if not self.clock.known and not is_empty(record.fields.get(self.dedupe_field)):
            self.reference = Reference(record.fields[self.dedupe_field], wolkvox_id, sent_at, answered_at)

    def settle(self, records: Sequence[PreparedRecord], sent_at: float, until: float) -> Settlement:
        """Find in the CRM the ``records`` of one request sent at ``sent_at``.

        :param until: when the CRM was done with the request at the latest: its answer, or, when
            none came, the request's start plus the timeout (the CRM may still be creating the
            records till then). The look-ups wait for it; the window reaches as far.
        :raises WolkvoxError: a fail-fast refusal of a look-up (spent quota, refused token).
        """
        settlement = Settlement()
        keyed = [record for record in records if not is_empty(record.fields.get(self.dedupe_field))]
        if not keyed:
            return settlement
        if (pause := min(until - time.time(), self.client.timeout)) > 0:
            log.info(
                "wolkvox: waiting %.1f s before looking up the records of a lost answer in the CRM", pause
            )
            time.sleep(pause)
        if len(keyed) > 1 and not self._windows_refused:
            if not self.clock.known:
                keyed = self._learn_clock(keyed, sent_at, until, settlement)
            if self.clock.known and keyed:
                window = self._read_window(*self.clock.window(sent_at, until), pages=max(1, len(keyed) // 2))
                if window is not None:
                    in_window = Settlement()
                    for record in keyed:
                        self._match(record, window, in_window)
                    if in_window.found:
                        settlement.found.update(in_window.found)
                        settlement.absent += in_window.absent
                        return settlement
                    # None of them in the window: a misplaced window (the CRM's clock moved?) would say
                    # so too. One look-up confirms before they are all sent again.
                    first, keyed = keyed[0], keyed[1:]
                    matches = self._look_up(first, settlement)
                    if matches == []:
                        settlement.absent += keyed
                        return settlement
                    if matches:  # the window was misplaced: place the later ones by this record
                        self.clock.observe(matches[0].get(api.CREATED_AT_FIELD), sent_at, until)
        for record in keyed:
            self._look_up(record, settlement)
        for _ in range(LOOKUP_ROUNDS - 1):
            retry, settlement.failed = settlement.failed, []
            for record in retry:
                self._look_up(record, settlement)
        return settlement

    def _learn_clock(
        self, keyed: list[PreparedRecord], sent_at: float, until: float, settlement: Settlement
    ) -> list[PreparedRecord]:
        """Read the CRM's clock off the reference record, else off the first lost record; return the rest."""
        reference = self.reference
        if reference is not None:
            for match in self._query(reference.value) or ():
                if match.get(api.ID_FIELD) == reference.wolkvox_id:
                    self.clock.observe(
                        match.get(api.CREATED_AT_FIELD), reference.sent_at, reference.answered_at
                    )
            if self.clock.known:
                return keyed
        first, rest = keyed[0], keyed[1:]
        matches = self._look_up(first, settlement)
        if matches:
            self.clock.observe(matches[0].get(api.CREATED_AT_FIELD), sent_at, until)
        return rest

    def _read_window(self, start: int, end: int, *, pages: int) -> list[dict[str, Any]] | None:
        """Every record created from ``start`` to ``end`` (CRM clock); None when it cannot be read whole."""
        try:
            return [
                record
                for page in created_between(self.client, self.operation, self.module, start, end, pages=pages)
                for record in page
            ]
        except WindowUnreadable:
            return None
        except WolkvoxBadRequestError as error:
            log.warning("wolkvox queryDates.php refused (%s); settling by per-record look-ups", error)
            self._windows_refused = True
            return None
        except WolkvoxError as error:
            if error.fail_fast:
                raise
            log.warning("wolkvox: could not read the CRM's records around a lost request: %s", error)
            return None

    def _match(self, record: PreparedRecord, window: list[dict[str, Any]], settlement: Settlement) -> None:
        value = record.fields[self.dedupe_field]
        for candidate in window:
            if same_value(value, candidate.get(self.dedupe_field)) and candidate.get(api.ID_FIELD):
                settlement.found[record.index] = str(candidate[api.ID_FIELD])
                return
        settlement.absent.append(record)

    def _look_up(self, record: PreparedRecord, settlement: Settlement) -> list[dict[str, Any]] | None:
        """Settle ``record`` with one ``query.php`` call; return the matches (None when it failed)."""
        value = record.fields[self.dedupe_field]
        matches = self._query(value)
        if matches is None:
            settlement.failed.append(record)
            return None
        matches = [m for m in matches if m.get(api.ID_FIELD) and same_value(value, m.get(self.dedupe_field))]
        if matches:
            settlement.found[record.index] = str(matches[0][api.ID_FIELD])
        else:
            settlement.absent.append(record)
        return matches

    def _query(self, value: Any) -> list[dict[str, Any]] | None:
        try:
            return self.client.query(self.operation, self.module, self.dedupe_field, value)
        except WolkvoxError as error:
            if error.fail_fast and not isinstance(error, WolkvoxBadRequestError):
                raise
            log.warning("wolkvox: could not look up a record of unknown outcome: %s", error)
            return None
