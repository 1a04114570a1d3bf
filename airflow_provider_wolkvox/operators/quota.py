"""Waiting out the daily quota: a load that meets it defers until the quota restarts, holding no worker slot.

The wait is a ``DateTimeTrigger`` run by the triggerer. It lasts until the restart the token
information announced (``hours_to_restart_count``), plus a margin of a tenth of the wait (at least
1 s, at most 5 minutes) for the CRM's clock and rounding. The waits of a task instance are noted
with their try (in the task state store where Airflow has one, else in the deferral itself), so that
``max_wait`` bounds the waits of one try together.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass, field
from typing import Any

from airflow_provider_wolkvox.client import TokenInfo

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


def date_time_trigger(moment: datetime.datetime) -> Any:
    """The standard provider's ``DateTimeTrigger`` (Airflow 3), or core's (Airflow 2.11)."""
    try:
        from airflow.providers.standard.triggers.temporal import DateTimeTrigger
    except ImportError:  # Airflow 2.11 without the standard provider
        from airflow.triggers.temporal import DateTimeTrigger  # type: ignore[no-redef]
    return DateTimeTrigger(moment=moment)
