"""Reading the CRM's records by creation time (``queryDates.php``), a page after the other.

An answer holding as many records as its limit may be truncated: the next page asks again from the
newest second the last one showed (that second is read again whole; records seen twice are kept
once). A second holding more records than one answer can show cannot be read whole at all.
"""

from __future__ import annotations

import calendar
import time
from collections.abc import Iterator
from typing import Any

from airflow_provider_wolkvox import api
from airflow_provider_wolkvox.client.client import WolkvoxClient


class WindowUnreadable(Exception):
    """More records were created in one second than one answer shows: the window cannot be read whole."""


def created_between(
    client: WolkvoxClient, operation: str, module: str, start: int, end: int, *, pages: int | None = None
) -> Iterator[list[dict[str, Any]]]:
    """The records of ``module`` created from ``start`` to ``end`` (CRM clock, as UTC epoch seconds).

    Yields each page's records not yielded before, oldest first.

    :param pages: calls at most; ``WindowUnreadable`` when the window needs more.
    :raises WindowUnreadable: the window cannot be read whole.
    :raises WolkvoxError: a call failed (after the client's retries).
    """
    seen: set[Any] = set()  # ids of the newest second read, which the next page shows again
    calls = 0
    while True:
        if pages is not None and calls == pages:
            raise WindowUnreadable(f"the window needs more than {pages} calls")
        page = client.query_dates(operation, module, crm_text(start), crm_text(end))
        calls += 1
        fresh = [record for record in page if record.get(api.ID_FIELD) not in seen]
        yield fresh
        if len(page) < api.QUERY_DATES_LIMIT:
            return
        seconds = [crm_seconds(record.get(api.CREATED_AT_FIELD)) for record in page]
        newest = max((second for second in seconds if second is not None), default=None)
        if newest is None or newest <= start:
            raise WindowUnreadable("one second of the window holds more records than an answer shows")
        seen = {
            record.get(api.ID_FIELD) for record, second in zip(page, seconds, strict=True) if second == newest
        }
        start = newest


def crm_text(seconds: float) -> str:
    """CRM-clock seconds (as UTC epoch) in the CRM's "YYYY-MM-DD HH:MM:SS"."""
    return time.strftime(api.CRM_DATETIME_FORMAT, time.gmtime(seconds))


def crm_seconds(text: Any) -> int | None:
    """The CRM's "YYYY-MM-DD HH:MM:SS" as UTC epoch seconds, or None when it is not one."""
    try:
        return calendar.timegm(time.strptime(str(text), api.CRM_DATETIME_FORMAT))
    except ValueError:
        return None
