"""The CRM's clock as settling learns it (``loads/settle.py``), and its times (``loads/windows.py``).

The rules (``CrmClock``'s docstrings): the offset is the CRM's wall time read as UTC minus the
worker's epoch time, known as an interval; a record created between a request's send and answer
bounds it (the CRM's seconds are truncated: created within [crm, crm + 1)); each further reading
narrows it, and a reading outside it means the CRM's clock moved: it replaces it; an unreadable
time teaches nothing. A window is widened by ``CLOCK_MARGIN`` (1 s) on both sides.
"""

from __future__ import annotations

from typing import Any

import pytest

from airflow_provider_wolkvox.loads.settle import CLOCK_MARGIN, CrmClock
from airflow_provider_wolkvox.loads.windows import crm_seconds, crm_text

# 2026-01-01 00:00:00 UTC, as epoch seconds.
NEW_YEAR = 1_767_225_600
# The worker's epoch time when the CRM (5 h behind UTC, the fake's default) shows NEW_YEAR.
WORKER = NEW_YEAR + 5 * 3600

# (created, sent_at, answered_at): a record's creation time as the CRM shows it, and when its
# request went out and came back on the worker's clock.
FIRST = ("2026-01-01 00:00:10", WORKER + 9.25, WORKER + 10.75)  # offset in [-18000.75, -17998.25]
NARROWER = ("2026-01-01 00:01:00", WORKER + 59.5, WORKER + 60.0)  # [-18000.0, -17998.5]
WIDER = ("2026-01-01 00:02:00", WORKER + 116.0, WORKER + 121.0)  # [-18001.0, -17995.0]
TOUCHING = ("2026-01-01 00:03:00", WORKER + 181.75, WORKER + 181.75 + 0.5)  # [-18002.25, -18000.75]
MOVED_LATER = ("2026-01-01 02:02:00", WORKER + 119.5, WORKER + 120.0)  # the CRM's clock 2 h on
MOVED_EARLIER = ("2025-12-31 23:01:00", WORKER + 59.5, WORKER + 60.0)  # the CRM's clock 1 h back

OBSERVE = [
    pytest.param([FIRST], [(-18000.75, -17998.25)], id="first-reading"),
    pytest.param([FIRST, NARROWER], [(-18000.75, -17998.25), (-18000.0, -17998.5)], id="narrowed"),
    pytest.param(
        [NARROWER, FIRST], [(-18000.0, -17998.5), (-18000.0, -17998.5)], id="wider-second-adds-nothing"
    ),
    pytest.param([FIRST, WIDER], [(-18000.75, -17998.25), (-18000.75, -17998.25)], id="wider-reading"),
    pytest.param(
        [FIRST, TOUCHING], [(-18000.75, -17998.25), (-18000.75, -18000.75)], id="touching-narrows-to-a-point"
    ),
    pytest.param(
        [FIRST, MOVED_LATER], [(-18000.75, -17998.25), (-10800.0, -10798.5)], id="clock-moved-later"
    ),
    pytest.param(
        [FIRST, MOVED_EARLIER], [(-18000.75, -17998.25), (-21600.0, -21598.5)], id="clock-moved-earlier"
    ),
    pytest.param(
        [FIRST, NARROWER, MOVED_LATER, NARROWER],
        [(-18000.75, -17998.25), (-18000.0, -17998.5), (-10800.0, -10798.5), (-18000.0, -17998.5)],
        id="moved-and-back",
    ),
]


@pytest.mark.parametrize(("readings", "offsets"), OBSERVE)
def test_observe(readings: list[tuple[str, float, float]], offsets: list[tuple[float, float]]) -> None:
    clock = CrmClock()
    assert not clock.known
    learned: list[tuple[float | None, float | None]] = []
    for created, sent_at, answered_at in readings:
        assert clock.observe(created, sent_at, answered_at) is True
        assert clock.known
        learned.append((clock.low, clock.high))
    assert learned == offsets


UNREADABLE = [
    pytest.param(None, id="null"),
    pytest.param("", id="blank"),
    pytest.param("yesterday", id="words"),
    pytest.param("2026-01-01", id="a-date-alone"),
    pytest.param("2026-01-01T00:00:10", id="iso-t"),
    pytest.param("2026-01-01 00:00:10.5", id="fractions"),
    pytest.param("2026-02-30 00:00:10", id="no-such-day"),
    pytest.param(NEW_YEAR + 10, id="epoch-number"),
]


@pytest.mark.parametrize("created", UNREADABLE)
def test_an_unreadable_time_teaches_nothing(created: Any) -> None:
    clock = CrmClock()
    assert clock.observe(created, WORKER + 9.25, WORKER + 10.75) is False
    assert not clock.known
    with pytest.raises(ValueError, match="the CRM's clock is not known yet"):
        clock.window(WORKER, WORKER + 1)

    clock.observe(*FIRST)
    assert clock.observe(created, *NARROWER[1:]) is False
    assert (clock.low, clock.high) == (-18000.75, -17998.25)  # unchanged


WINDOW = [
    # floor(sent_at + low - 1), ceil(until + high + 1), on the CRM's clock.
    pytest.param(
        WORKER + 100.5, WORKER + 102.5, (NEW_YEAR + 98, NEW_YEAR + 106), id="fractions-widened-outwards"
    ),
    pytest.param(
        WORKER + 100.75, WORKER + 100.75, (NEW_YEAR + 99, NEW_YEAR + 104), id="a-request-of-no-time"
    ),
    pytest.param(WORKER + 0.25, WORKER + 60.25, (NEW_YEAR - 2, NEW_YEAR + 63), id="a-minute-long-timeout"),
]


@pytest.mark.parametrize(("sent_at", "until", "window"), WINDOW)
def test_window(sent_at: float, until: float, window: tuple[int, int]) -> None:
    assert CLOCK_MARGIN == 1.0
    clock = CrmClock()
    clock.observe(*FIRST)  # offset in [-18000.75, -17998.25]
    assert clock.window(sent_at, until) == window


CRM_SECONDS = [
    pytest.param("2026-01-01 00:00:00", NEW_YEAR, id="new-year"),
    pytest.param("1970-01-01 00:00:00", 0, id="epoch"),
    pytest.param("2024-02-29 23:59:59", 1_709_251_199, id="leap-day"),
    pytest.param("2026-12-31 23:59:59", 1_798_761_599, id="year-end"),
    pytest.param("2026-01-01 00:00:10", NEW_YEAR + 10, id="seconds"),
    *(
        pytest.param(value, None, id=f"unreadable-{param.id}")
        for param in UNREADABLE
        for value in param.values
    ),
]


@pytest.mark.parametrize(("text", "expected"), CRM_SECONDS)
def test_crm_seconds(text: Any, expected: int | None) -> None:
    # Read as UTC whatever the worker's time zone: the CRM's zone is learned apart (CrmClock).
    assert crm_seconds(text) == expected


CRM_TEXT = [
    pytest.param(0, "1970-01-01 00:00:00", id="epoch"),
    pytest.param(NEW_YEAR, "2026-01-01 00:00:00", id="new-year"),
    pytest.param(NEW_YEAR + 0.999, "2026-01-01 00:00:00", id="fractions-truncated"),
    pytest.param(1_709_251_199, "2024-02-29 23:59:59", id="leap-day"),
]


@pytest.mark.parametrize(("seconds", "expected"), CRM_TEXT)
def test_crm_text(seconds: float, expected: str) -> None:
    assert crm_text(seconds) == expected
    assert crm_seconds(crm_text(seconds)) == int(seconds)
