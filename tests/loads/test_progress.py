"""Progress lines of loads and syncs (``loads/progress.py``): the module, done/total and the share done,
the rate, an ETA when the total is known, failures and calls."""

from __future__ import annotations

import logging
from typing import Any

import pytest

from airflow_provider_wolkvox.hooks.wolkvox import WolkvoxHook
from airflow_provider_wolkvox.loads import RecordResult, RecordStatus
from airflow_provider_wolkvox.loads.progress import Progress
from airflow_provider_wolkvox.loads.results import LoadSummary
from airflow_provider_wolkvox.testing import FakeWolkvoxServer


class CountingClient:
    """Stands for the client: only its counters are read."""

    def __init__(self) -> None:
        self.calls = 0
        self.refused_busy = 0


def summary_of(created: int, rejected: int = 0) -> LoadSummary:
    summary = LoadSummary.of_sync()
    for index in range(created):
        summary.add(RecordResult(index, RecordStatus.CREATED, "a" * 24))
    for index in range(rejected):
        summary.add(RecordResult(created + index, RecordStatus.REJECTED))
    return summary


def progress(summary: LoadSummary, total: int | None, **kwargs: Any) -> tuple[Progress, CountingClient]:
    client = CountingClient()
    line = Progress("sync", summary, client, total, 10.0, **kwargs)  # type: ignore[arg-type]
    return line, client


def test_the_line_says_the_share_done_the_rate_and_the_time_left() -> None:
    summary = summary_of(40_700)
    line, client = progress(summary, 100_000, module="contacts")
    client.calls = 408

    assert line.line(line.started + 10.0) == (
        "wolkvox sync of 'contacts': 40,700/100,000 records (40.7 %), 4,070 records/s, ETA 15 s, "
        "0 failed, 408 API calls"
    )


@pytest.mark.parametrize(
    ("elapsed", "eta"),
    [(1.0, "ETA 9 s"), (100.0, "ETA 15 min"), (1000.0, "ETA 2.5 h")],
)
def test_the_time_left_is_in_seconds_minutes_or_hours(elapsed: float, eta: str) -> None:
    line, _ = progress(summary_of(100), 1000, module="leads")
    assert f"records/s, {eta}, " in line.line(line.started + elapsed)


def test_without_a_total_or_a_module_the_line_is_shorter() -> None:
    line, _ = progress(summary_of(30, rejected=2), None)

    assert line.line(line.started + 2.0) == "wolkvox sync: 32 records, 16 records/s, 2 failed, 0 API calls"


def test_when_done_there_is_no_eta() -> None:
    line, _ = progress(summary_of(50), 50, module="contacts")

    assert line.line(line.started + 1.0).startswith(
        "wolkvox sync of 'contacts': 50/50 records (100.0 %), 50 "
    )
    assert "ETA" not in line.line(line.started + 1.0)


def test_a_sync_logs_its_plan_then_its_progress(
    server: FakeWolkvoxServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    records = [{"Email": f"c{n}@example.com", "Nombre": f"Contacto {n}"} for n in range(300)]

    WolkvoxHook().upsert_many("contacts", records, key_field="Email", batch_size=50, progress_interval=0)

    plan = (
        "wolkvox sync of module 'contacts' by 'Email': 300 keys: 300 to look up by a scan of the module "
        "(about one queryDates.php call per 1,000 records, its size not known yet, instead of 300 query.php "
        "calls), then about 6 insertMany calls, plus one update call per looked-up key found changed."
    )
    assert plan in caplog.messages
    lines = [message for message in caplog.messages if message.startswith("wolkvox sync of 'contacts': ")]
    print("\n".join([plan, *lines]))
    assert lines[0].startswith("wolkvox sync of 'contacts': 50/300 records (16.7 %), ")
    assert ", ETA " in lines[0]
    assert lines[-1].startswith("wolkvox sync of 'contacts': 300/300 records (100.0 %), ")
    assert lines[-1].endswith(", 0 failed, 7 API calls")  # the scan, then 6 batches


def test_a_count_given_to_tick_replaces_the_records_of_the_summary() -> None:
    line, client = progress(summary_of(0), 20_000, module="contacts", unit="keys looked up")
    client.calls = 1_200

    assert line.line(line.started + 30.0, done=1_200) == (
        "wolkvox sync of 'contacts': 1,200/20,000 keys looked up (6.0 %), 40 keys/s, ETA 8 min, "
        "1,200 API calls"
    )


def test_a_sync_logs_its_look_ups_as_they_go(
    server: FakeWolkvoxServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    records = [{"Email": f"c{n}@example.com", "Nombre": f"Contacto {n}"} for n in range(20)]

    WolkvoxHook().upsert_many("contacts", records, key_field="Email", lookup="query", progress_interval=0)

    looked_up = [message for message in caplog.messages if " keys looked up " in message]
    assert looked_up[0].startswith("wolkvox sync of 'contacts': 1/20 keys looked up (5.0 %), ")
    assert looked_up[-1].startswith("wolkvox sync of 'contacts': 20/20 keys looked up (100.0 %), ")
    assert looked_up[-1].endswith(", 20 API calls")
