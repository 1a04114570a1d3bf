"""What a person reads in a load's log (``operators/report.py``): a start line, progress whose rate
is this try's own, and an end line in words naming the results file."""

from __future__ import annotations

import dataclasses
import json
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_wolkvox import api
from airflow_provider_wolkvox.loads import LoadSummary, RecordStatus
from airflow_provider_wolkvox.operators.insert import WolkvoxInsertManyOperator
from airflow_provider_wolkvox.operators.report import end_line
from airflow_provider_wolkvox.operators.upsert import WolkvoxUpsertOperator
from airflow_provider_wolkvox.testing import CONN_ENV_VAR, FakeWolkvoxServer, Fault
from tests.conftest import OPERATION, TOKEN, DictStateStore, RecordingTaskInstance


@pytest.fixture
def server(monkeypatch: pytest.MonkeyPatch, fast_retries: object) -> Iterator[FakeWolkvoxServer]:
    with FakeWolkvoxServer({TOKEN: OPERATION}, unique_fields={"contacts": ["Email"]}) as fake:
        monkeypatch.setenv(CONN_ENV_VAR, fake.airflow_connection())
        yield fake


@pytest.fixture(autouse=True)
def task_log(monkeypatch: pytest.MonkeyPatch) -> None:
    """The operators' task log through ``logging``, where ``caplog`` sees it (Airflow's is structlog)."""
    for operator in (WolkvoxInsertManyOperator, WolkvoxUpsertOperator):
        monkeypatch.setattr(operator, "log", logging.getLogger("tests.task"))


def write_rows(path: Path, count: int) -> Path:
    rows = ({"Nombre": f"C{n}", "Email": f"c{n}@example.com"} for n in range(count))
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    return path


def messages(caplog: pytest.LogCaptureFixture, start: str) -> list[str]:
    return [message for message in caplog.messages if message.startswith(start)]


def load_try(
    store: DictStateStore, try_number: int, source: Path, results: Path, interval: float = 10.0
) -> Any:
    ti = RecordingTaskInstance()
    ti.try_number = try_number
    operator = WolkvoxInsertManyOperator(
        task_id="load", module="contacts", records_path=str(source), results_path=str(results), batch_size=10
    )
    operator.load_options = dataclasses.replace(operator.load_options, progress_interval=interval)
    return operator.execute({"ti": ti, "task_state_store": store})  # type: ignore[arg-type]


def test_a_load_logs_a_start_line_and_an_end_line_in_words(
    server: FakeWolkvoxServer, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    source, results = write_rows(tmp_path / "contacts.jsonl", 25), tmp_path / "results.jsonl"
    server.inject(Fault.SIMULTANEOUS, path=api.INSERT_MANY_PATH, times=2)

    load_try(DictStateStore(), 1, source, results)

    assert messages(caplog, "wolkvox load of module 'contacts' from ") == [
        f"wolkvox load of module 'contacts' from file {str(source)!r}: 25 records, in batches of 10, "
        f"2 requests in flight, results to {str(results)!r}"
    ]
    [end] = messages(caplog, "wolkvox load of module 'contacts' finished in ")
    assert end.endswith(
        ": 25 created, 0 rejected, 0 of unknown outcome, 0 not sent; 3 API calls, 2 requests refused "
        f"as busy (retried); results in {str(results)!r}"
    )
    assert not [message for message in caplog.messages if "'elapsed_seconds'" in message]  # no dict repr


def test_a_later_try_says_what_an_earlier_one_created_and_rates_only_its_own_records(
    server: FakeWolkvoxServer, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    store, results = DictStateStore(), tmp_path / "results.jsonl"
    load_try(store, 1, write_rows(tmp_path / "first.jsonl", 30), results)  # the try that "crashed" at 30
    caplog.set_level(logging.INFO)
    caplog.clear()

    summary = load_try(store, 2, write_rows(tmp_path / "all.jsonl", 50), results, interval=0.0)

    [start] = messages(caplog, "wolkvox load of module 'contacts' from ")
    assert start.endswith("; try 2: 30 records created by an earlier try, not sent again")
    assert (summary["created"], summary["calls"]) == (50, 2)
    progress = messages(caplog, "wolkvox load of 'contacts': ")
    assert progress[-1].startswith(
        "wolkvox load of 'contacts': 50/50 records (100.0 %), 30 of them by an earlier try, "
    )


def test_the_rate_leaves_out_the_records_of_an_earlier_try() -> None:
    from airflow_provider_wolkvox.loads.progress import Progress

    class Client:
        calls = refused_busy = 0

    summary = LoadSummary()
    summary.counts[RecordStatus.CREATED] = 40_400
    line = Progress("load", summary, Client(), 100_000, 10.0, module="contacts")  # type: ignore[arg-type]
    line.reused = 31_000

    assert line.line(line.started + 10.0) == (
        "wolkvox load of 'contacts': 40,400/100,000 records (40.4 %), 31,000 of them by an earlier try, "
        "940 records/s, ETA 63 s, 0 failed, 0 API calls"
    )


def test_a_sync_ends_with_a_line_in_words(
    server: FakeWolkvoxServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    records = [{"Nombre": f"C{n}", "Email": f"c{n}@example.com"} for n in range(5)]
    operator = WolkvoxUpsertOperator(task_id="sync", module="contacts", records=records, key_field="Email")

    operator.execute({"ti": RecordingTaskInstance()})  # type: ignore[arg-type]

    [end] = messages(caplog, "wolkvox sync of module 'contacts' finished in ")
    assert end.endswith(
        ": 5 created, 0 rejected, 0 of unknown outcome, 0 not sent; 6 API calls; "
        "no results file (results_path not set)"
    )


def test_the_end_line_names_a_sync_s_other_states_and_why_it_stopped() -> None:
    summary = LoadSummary.of_sync()
    summary.counts.update({RecordStatus.CREATED: 2, RecordStatus.UPDATED: 3, RecordStatus.NOT_SENT: 4})
    summary.calls, summary.elapsed_seconds, summary.stopped_reason = 1, 2.04, "the quota is spent"

    assert end_line("sync", "leads", summary, "r.jsonl") == (
        "wolkvox sync of module 'leads' finished in 2.0 s: 2 created, 3 updated, 0 rejected, "
        "0 of unknown outcome, 4 not sent; 1 API call; results in 'r.jsonl'; "
        "stopped early: the quota is spent"
    )
