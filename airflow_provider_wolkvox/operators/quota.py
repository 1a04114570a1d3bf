"""Waiting out the daily quota: a load that meets it defers until the quota restarts, holding no worker slot.

The wait is a ``DateTimeTrigger`` run by the triggerer. It lasts until the restart the token
information announced (``hours_to_restart_count``), plus a margin of a tenth of the wait (at least
1 s, at most 5 minutes) for the CRM's clock and rounding. The waits of a task instance are noted
with their try (in the task state store where Airflow has one, else in the deferral itself), so that
``max_wait`` bounds the waits of one try together. :class:`QuotaWait` is that state for one run of
the load: what it reads at the start, notes and carries into the deferral.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass, field
from typing import Any

from airflow_provider_wolkvox.client import TokenInfo
from airflow_provider_wolkvox.exceptions import WolkvoxQuotaExceededError
from airflow_provider_wolkvox.operators.checkpoint import MemoryStore

QUOTA_WAITS_KEY = "wolkvox_load/quota_waits"
ON_QUOTA_EXHAUSTED = ("fail", "wait")
DEFAULT_MAX_WAIT = datetime.timedelta(days=2)
#: How long to wait when the CRM did not say when its quota restarts.
UNKNOWN_RESTART_WAIT = datetime.timedelta(hours=1)
_MARGIN_SHARE = 0.1
_MIN_MARGIN = datetime.timedelta(seconds=1)
_MAX_MARGIN = datetime.timedelta(minutes=5)


def now() -> datetime.datetime:
    return datetime.datetime.now(datetime.timezone.utc)


def restart_time(info: TokenInfo, read_at: datetime.datetime) -> datetime.datetime | None:
    """When the token's quota restarts, by its token information read at ``read_at``."""
    if info.hours_to_reset is None:
        return None
    return read_at + datetime.timedelta(hours=info.hours_to_reset)


def resume_time(restarts_at: datetime.datetime | None, at: datetime.datetime) -> datetime.datetime:
    """When a load stopped by the quota at ``at`` resumes: at the restart plus a margin (at once, plus
    the margin, if the restart has come meanwhile; in an hour if the CRM did not say)."""
    until = at + UNKNOWN_RESTART_WAIT if restarts_at is None else max(restarts_at, at)
    margin = min(max((until - at) * _MARGIN_SHARE, _MIN_MARGIN), _MAX_MARGIN)
    return until + margin


@dataclass
class QuotaWaits:
    """The quota waits of one task instance: each with its try, when it began, its end and the load's
    progress (None where the quota was spent before the load began).

    :param try_number: the current try; ``max_wait`` bounds the waits of one try.
    """

    try_number: int
    waits: list[dict[str, Any]] = field(default_factory=list)

    @classmethod
    def of(cls, value: Any, try_number: int) -> QuotaWaits:
        return cls(try_number, list(value) if isinstance(value, list) else [])

    @property
    def first_at(self) -> datetime.datetime | None:
        """When this try first waited."""
        ours = [wait["at"] for wait in self.waits if wait.get("try_number") == self.try_number]
        return datetime.datetime.fromisoformat(ours[0]) if ours else None

    def add(
        self,
        at: datetime.datetime,
        until: datetime.datetime,
        records_done: int | None,
        calls_left: int | None,
    ) -> None:
        self.waits.append(
            {
                "try_number": self.try_number,
                "at": at.isoformat(timespec="seconds"),
                "until": until.isoformat(timespec="seconds"),
                "records_done": records_done,
                "calls_left_to_make": calls_left,
            }
        )


@dataclass
class QuotaWait:
    """The quota-wait state of one run of a load (its first, or one resumed after a wait).

    :param waiting: whether the task waits for the quota (``on_quota_exhausted="wait"``) or fails.
    :param waits: the task instance's quota waits so far.
    :param store: Airflow's task state store, where it has one: it keeps the waits across deferrals
        and tries (and the journal's notes, which :func:`task_state_journal` finds there itself).
    :param memory: the journal's notes while waiting without a task state store; the deferral carries
        them to the resumed run.
    :param restarts_at: when the quota restarts, by the token information this run read (None when it
        did not read it, or the CRM did not say).
    :param stop: the spent quota that stopped this run's load, when the task waits for it.
    """

    waiting: bool
    waits: QuotaWaits
    store: Any = None
    memory: MemoryStore | None = None
    restarts_at: datetime.datetime | None = None
    stop: WolkvoxQuotaExceededError | None = None

    @classmethod
    def of(cls, context: Any, carried: dict[str, Any] | None, *, waiting: bool) -> QuotaWait:
        """The state of the run of ``context``: the waits from the task state store, else from what the
        deferral carried (``carried``, None on the first run; see :meth:`deferral_kwargs`)."""
        store = context.get("task_state_store") if hasattr(context, "get") else None
        carried = carried or {}
        waits = QuotaWaits.of(
            store.get(QUOTA_WAITS_KEY) if store is not None else carried.get("waits"),
            context["ti"].try_number,
        )
        memory = MemoryStore(carried.get("notes") or {}) if waiting and store is None else None
        return cls(waiting, waits, store, memory)

    @property
    def resumable(self) -> bool:
        """Whether a task retry would find this try's journal: only a task state store outlives the
        try, a journal kept in memory does not."""
        return self.store is not None

    def resume_at(self, at: datetime.datetime) -> datetime.datetime:
        """When a load stopped by the quota at ``at`` resumes (see :func:`resume_time`)."""
        return resume_time(self.restarts_at, at)

    def first_at(self, at: datetime.datetime) -> datetime.datetime:
        """When this try first waited: ``at`` if this is its first wait."""
        return self.waits.first_at or at

    def note(
        self,
        at: datetime.datetime,
        until: datetime.datetime,
        records_done: int | None,
        calls_left: int | None,
    ) -> None:
        """Add a wait and keep the waits in the task state store, if there is one."""
        self.waits.add(at, until, records_done, calls_left)
        if self.store is not None:
            self.store.set(QUOTA_WAITS_KEY, self.waits.waits)

    def deferral_kwargs(self) -> dict[str, Any]:
        """The deferral's ``kwargs``, for ``resume_after_quota(carried=...)``: the waits, and the
        journal's notes where no task state store keeps them (what :meth:`of` reads back)."""
        notes = dict(self.memory) if self.memory is not None else None
        return {"carried": {"waits": self.waits.waits, "notes": notes}}


def date_time_trigger(moment: datetime.datetime) -> Any:
    """The standard provider's ``DateTimeTrigger`` (Airflow 3), or core's (Airflow 2.11)."""
    try:
        from airflow.providers.standard.triggers.temporal import DateTimeTrigger
    except ImportError:  # Airflow 2.11 without the standard provider
        from airflow.triggers.temporal import DateTimeTrigger  # type: ignore[no-redef]
    return DateTimeTrigger(moment=moment)
