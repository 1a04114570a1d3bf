"""The CRM's clock, and when the tokens' quota restarts."""

from __future__ import annotations

import math
import time
from datetime import datetime, timedelta, timezone
from typing import Protocol

from airflow_provider_wolkvox.api import CRM_DATETIME_FORMAT

# Seconds in an hour, for ``hours_to_restart_count``.
_HOUR = 3600


class FakeClock:
    """The CRM's wall clock: UTC plus a fixed offset, whatever the clock of the machine running the fake.

    :param utc_offset_hours: hours added to UTC, strictly between -24 and 24.
    :raises ValueError: an offset out of that range.
    """

    def __init__(self, utc_offset_hours: float) -> None:
        if not -24 < utc_offset_hours < 24:
            raise ValueError(f"utc_offset_hours must be strictly between -24 and 24, not {utc_offset_hours}")
        self._zone = timezone(timedelta(hours=utc_offset_hours))

    def now(self) -> datetime:
        """Return the CRM's time now, naive."""
        return datetime.now(self._zone).replace(tzinfo=None)

    def stamp(self, moment: datetime | None = None) -> str:
        """Return ``moment`` (default now) as the CRM writes times, "YYYY-MM-DD HH:MM:SS" on its clock.

        :param moment: a naive time is on the CRM's clock already; an aware one is converted.
        """
        if moment is None:
            moment = self.now()
        elif moment.tzinfo is not None:
            moment = moment.astimezone(self._zone)
        return moment.strftime(CRM_DATETIME_FORMAT)


class QuotaRestart(Protocol):
    """When every token's used count starts again from zero."""

    def begin(self) -> None:
        """Start counting periods now (the server starts)."""

    def due(self) -> bool:
        """Return whether a restart came since the last call, and move on to the period now running."""

    def hours_left(self) -> float:
        """Return ``hours_to_restart_count``: the hours until the next restart."""


def _midnight_after(moment: datetime) -> datetime:
    return datetime.combine(moment.date() + timedelta(days=1), datetime.min.time())


class MidnightRestart:
    """The vendor's daily quota: it restarts at midnight on the CRM's clock.

    :param clock: the CRM's clock.
    """

    def __init__(self, clock: FakeClock) -> None:
        self._clock = clock
        self._next = _midnight_after(clock.now())

    def begin(self) -> None:
        """Nothing to do: midnight does not depend on when the server started."""

    def due(self) -> bool:
        now = self._clock.now()
        if now < self._next:
            return False
        self._next = _midnight_after(now)
        return True

    def hours_left(self) -> float:
        """Return the whole hours until midnight, rounded up (1 to 24), as the vendor's example shows."""
        return max(math.ceil((self._next - self._clock.now()).total_seconds() / _HOUR), 1)


class PeriodicRestart:
    """A short quota period for tests of loads that wait for the quota: a restart every ``seconds``.

    :param seconds: the period, counted from :meth:`begin` (the server's start).
    :raises ValueError: a period that is not positive.
    """

    def __init__(self, seconds: float) -> None:
        if not seconds > 0:
            raise ValueError(f"quota_period must be a positive number of seconds, not {seconds}")
        self._seconds = seconds
        self.begin()

    def begin(self) -> None:
        self._origin = time.monotonic()
        self._next = self._origin + self._seconds

    def due(self) -> bool:
        now = time.monotonic()
        if now < self._next:
            return False
        periods = math.floor((now - self._origin) / self._seconds)
        self._next = self._origin + (periods + 1) * self._seconds
        return True

    def hours_left(self) -> float:
        """Return the hours left in the period, rounded up to 6 decimals (2 s: 0.000556)."""
        hours = (self._next - time.monotonic()) / _HOUR
        # Rounded to 3 decimals of a micro-hour first, so that float noise does not round up a whole step.
        return math.ceil(round(max(hours, 0.0) * 1e6, 3)) / 1e6
