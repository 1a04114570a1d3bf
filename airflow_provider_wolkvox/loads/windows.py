"""Reading the CRM's records by creation time (``queryDates.php``), whatever the order it lists them in.

The vendor documents neither which records an answer holds when the window holds more than its
limit, nor their order. So a window is trusted as read whole only when its answer holds fewer
records than the limit. A full answer is narrowed:

- sorted oldest first, it is taken for the window's oldest records: the window is read on from the
  newest second it shows (that second is read again whole), a page after the other;
- sorted newest first, for the newest: read on back from the oldest second it shows;
- in any other order, the window is split in two at the answer's median second (about half of
  what it holds on each side) and both halves are read the same way.

A one-second window whose answer is full cannot be read whole: the rest is read all the same and
``WindowUnreadable`` raised at the end. Every record is yielded once (by its id): the windows read
are disjoint but for the boundary second of a page read on, whose records are remembered.
"""

from __future__ import annotations

import calendar
import time
from collections.abc import Iterator
from itertools import pairwise
from typing import Any

from airflow_provider_wolkvox import api
from airflow_provider_wolkvox.client.client import WolkvoxClient

# A window to read: its first and last second, and the ids yielded already of records created in it
# (with their second; None when the record's date could not be read).
_Window = tuple[int, int, dict[Any, int | None]]


class WindowUnreadable(Exception):
    """More records were created in one second than one answer shows, or the call budget was too
    small: the window cannot be read whole."""


def created_between(
    client: WolkvoxClient, operation: str, module: str, start: int, end: int, *, pages: int | None = None
) -> Iterator[list[dict[str, Any]]]:
    """The records of ``module`` created from ``start`` to ``end`` (CRM clock, as UTC epoch seconds).

    Yields each answer's records not yielded before, in no particular order.

    :param pages: calls at most; ``WindowUnreadable`` as soon as the window needs more.
    :raises WindowUnreadable: the window cannot be read whole (raised after everything else was read
        when seconds too dense are the reason).
    :raises WolkvoxError: a call failed (after the client's retries).
    """
    limit = api.QUERY_DATES_LIMIT
    calls = 0
    dense: list[int] = []  # the seconds holding as many records as an answer shows, or more
    todo: list[_Window] = [(start, end, {})]  # the next window to read last
    while todo:
        low, high, known = todo.pop()
        if pages is not None and calls == pages:
            raise WindowUnreadable(f"the window needs more than {pages} calls")
        page = client.query_dates(operation, module, crm_text(low), crm_text(high))
        calls += 1
        seconds = [crm_seconds(record.get(api.CREATED_AT_FIELD)) for record in page]
        fresh = []
        for record, second in zip(page, seconds, strict=True):
            wolkvox_id = record.get(api.ID_FIELD)
            if wolkvox_id is None or wolkvox_id not in known:
                fresh.append(record)
                if wolkvox_id is not None:  # a date outside the window places it nowhere: kept in every part
                    known[wolkvox_id] = second if second is not None and low <= second <= high else None
        yield fresh
        if len(page) < limit:
            continue  # read whole
        todo += _narrowed(low, high, known, seconds, dense)
    if dense:
        listed = ", ".join(crm_text(second) for second in sorted(dense)[:3]) + (
            ", ..." if len(dense) > 3 else ""
        )
        several = len(dense) > 1
        raise WindowUnreadable(
            f"{len(dense)} second{'s' if several else ''} of the window hold{'' if several else 's'} "
            f"{limit:,} records or more, which no answer shows whole ({listed}, CRM clock)"
        )


def _narrowed(
    low: int, high: int, known: dict[Any, int | None], seconds: list[int | None], dense: list[int]
) -> list[_Window]:
    """The windows left to read of ``low``..``high``, whose answer was full, the next one last.

    :param seconds: the creation second of each record of the answer, in its order.
    :param dense: gets the seconds found too dense to read whole.
    """
    if low == high:
        dense.append(low)
        return []
    placed = [second for second in seconds if second is not None and low <= second <= high]
    in_order = len(placed) == len(seconds)
    ascending = in_order and all(a <= b for a, b in pairwise(placed))
    descending = in_order and all(a >= b for a, b in pairwise(placed))
    # A window read on from a page's boundary second starts (or ends) with it: an answer sorted by
    # time that does not is not the window's oldest (or newest) records.
    ascending = ascending and (placed[0] == low or not _holds(known, low))
    descending = descending and (placed[0] == high or not _holds(known, high))
    if ascending and descending:  # all in one second
        second = placed[0]
        dense.append(second)  # at least a full answer's worth there
        return [*_window(second + 1, high, known), *_window(low, second - 1, known)]
    if ascending:  # the oldest records: those before its newest second (past low) were all shown
        return _window(placed[-1], high, known)
    if descending:  # the newest records: those after its oldest second (before high) were all shown
        return _window(low, placed[-1], known)
    # No order to trust: split where about half of what the answer shows lies on each side (both
    # halves smaller than the window).
    if placed:
        ordered = sorted(placed)
        middle = ordered[len(ordered) // 2]
        if middle == ordered[-1]:  # more than half in the newest second: split just before it
            middle -= 1
    else:
        middle = low + (high - low) // 2
    middle = max(low, min(middle, high - 1))
    return [*_window(middle + 1, high, known), *_window(low, middle, known)]


def _holds(known: dict[Any, int | None], second: int) -> bool:
    return any(when == second for when in known.values())


def _window(low: int, high: int, known: dict[Any, int | None]) -> list[_Window]:
    """The window ``low``..``high`` to read, with the ids known in it (none when it is empty)."""
    if low > high:
        return []
    return [(low, high, {key: when for key, when in known.items() if when is None or low <= when <= high})]


def crm_text(seconds: float) -> str:
    """CRM-clock seconds (as UTC epoch) in the CRM's "YYYY-MM-DD HH:MM:SS"."""
    return time.strftime(api.CRM_DATETIME_FORMAT, time.gmtime(seconds))


def crm_seconds(text: Any) -> int | None:
    """The CRM's "YYYY-MM-DD HH:MM:SS" as UTC epoch seconds, or None when it is not one."""
    try:
        return calendar.timegm(time.strptime(str(text), api.CRM_DATETIME_FORMAT))
    except ValueError:
        return None
