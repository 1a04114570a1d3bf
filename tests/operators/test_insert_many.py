"""WolkvoxInsertManyOperator against the fake CRM: inputs, results, XCom, failure semantics."""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from airflow.providers.common.compat.sdk import AirflowFailException

from airflow_provider_wolkvox import api, sources
from airflow_provider_wolkvox.exceptions import WolkvoxError, WolkvoxInputError
from airflow_provider_wolkvox.operators.insert import WolkvoxInsertManyOperator
from airflow_provider_wolkvox.testing import CONN_ENV_VAR, FakeWolkvoxServer, Fault
from tests.conftest import OPERATION, TOKEN, RecordingTaskInstance


@pytest.fixture
def server(monkeypatch: pytest.MonkeyPatch, fast_retries: object) -> Iterator[FakeWolkvoxServer]:
    with FakeWolkvoxServer({TOKEN: OPERATION}, unique_fields={"contacts": ["Email"]}) as fake:
        monkeypatch.setenv(CONN_ENV_VAR, fake.airflow_connection())
        yield fake


def rows(count: int) -> list[dict[str, Any]]:
    return [{"Nombre": f"C{n}", "Email": f"c{n}@example.com"} for n in range(count)]


def run(**kwargs: Any) -> tuple[Any, RecordingTaskInstance]:
    ti = RecordingTaskInstance()
    operator = WolkvoxInsertManyOperator(task_id="load", module="contacts", batch_size=10, **kwargs)
    return operator.execute({"ti": ti}), ti  # type: ignore[arg-type]


def ids_by_email(server: FakeWolkvoxServer) -> dict[str, str]:
    return {record["Email"]: record["wolkvox_id"] for record in server.records("contacts")}


def test_template_fields() -> None:
    assert WolkvoxInsertManyOperator.template_fields == (
        "module",
        "records",
        "records_path",
        "sql",
        "sql_conn_id",
        "sql_parameters",
        "results_path",
        "operation",
        "wolkvox_conn_id",
    )


@pytest.mark.parametrize("as_json", [False, True], ids=["list", "json-string"])
def test_in_memory_records_return_ids_in_order(server: FakeWolkvoxServer, as_json: bool) -> None:
    records = rows(25)
    ids, ti = run(records=json.dumps(records) if as_json else records)

    by_email = ids_by_email(server)
    assert ids == [by_email[f"c{n}@example.com"] for n in range(25)]
    assert ti.pushed["failed_records"] == []


def write_jsonl(path: Path, records: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    return path


def write_csv(path: Path, records: list[dict[str, Any]]) -> Path:
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(records[0]))
        writer.writeheader()
        writer.writerows(records)
    return path


@pytest.mark.parametrize("writer", [write_jsonl, write_csv], ids=["jsonl", "csv"])
def test_file_records_stream_results_to_a_file(
    server: FakeWolkvoxServer, tmp_path: Path, writer: Any
) -> None:
    source = writer(tmp_path / f"contacts.{'jsonl' if writer is write_jsonl else 'csv'}", rows(23))
    results_path = tmp_path / "results.jsonl"

    summary, ti = run(records_path=str(source), results_path=str(results_path))

    assert summary["total"] == 23
    assert summary["created"] == 23
    assert summary["failed"] == 0
    assert summary["calls"] == 3
    assert summary["results_path"] == str(results_path)
    results = [json.loads(line) for line in results_path.read_text().splitlines()]
    by_email = ids_by_email(server)
    first = 1 if writer is write_jsonl else 2  # a CSV file's records start below its header
    assert results == [
        {"line": first + n, "try": 1, "status": "created", "wolkvox_id": by_email[f"c{n}@example.com"]}
        for n in range(23)
    ]
    assert ti.pushed["failed_records"] == []


def test_rejections_within_the_allowance_keep_the_task_green(server: FakeWolkvoxServer) -> None:
    records = [*rows(10), {"Nombre": "again", "Email": "c4@example.com"}]
    # One request at a time, so that the first of the two e-mails is the one stored.
    ids, ti = run(records=records, max_failed_records=1, max_in_flight=1)

    assert ids[:10] == [ids_by_email(server)[f"c{n}@example.com"] for n in range(10)]
    assert ids[10] is None
    [failed] = ti.pushed["failed_records"]
    assert failed["index"] == 10
    assert failed["status"] == "rejected"
    assert "Email" in failed["msg"]


def test_too_many_failures_fail_the_task_after_every_record_was_tried(server: FakeWolkvoxServer) -> None:
    records = [{"Nombre": "dup", "Email": "c0@example.com"}, *rows(10)]
    ti = RecordingTaskInstance()
    operator = WolkvoxInsertManyOperator(task_id="load", module="contacts", records=records, batch_size=10)
    with pytest.raises(
        AirflowFailException, match=r"1 of 11 records failed \(allowed: 0\); 10 created, 1 rejected"
    ):
        operator.execute({"ti": ti})  # type: ignore[arg-type]
    assert len(server.records("contacts")) == 10
    assert [f["index"] for f in ti.pushed["failed_records"]] == [1]


def test_failed_records_xcom_is_bounded(server: FakeWolkvoxServer, tmp_path: Path) -> None:
    records = rows(10) * 2  # the second half repeats every e-mail
    results_path = tmp_path / "results.jsonl"
    # One request at a time, so that the first copy of each e-mail is the one stored.
    ids, ti = run(
        records=records,
        max_failed_records=10,
        failed_records_limit=3,
        results_path=str(results_path),
        max_in_flight=1,
    )

    assert len(ti.pushed["failed_records"]) == 3
    assert sum(1 for line in results_path.read_text().splitlines() if '"rejected"' in line) == 10
    assert ids[10:] == [None] * 10


def test_transient_stop_before_anything_was_created_is_retryable(server: FakeWolkvoxServer) -> None:
    server.inject(Fault.MAINTENANCE, times=None)
    operator = WolkvoxInsertManyOperator(task_id="load", module="contacts", records=rows(5))
    with pytest.raises(WolkvoxError, match="Stopped by") as raised:
        operator.execute({"ti": RecordingTaskInstance()})  # type: ignore[arg-type]
    assert not isinstance(raised.value, AirflowFailException)
    assert server.records("contacts") == []


@pytest.mark.parametrize("on_quota_exhausted", ["fail", "wait"])
def test_transient_stop_after_records_were_created_fails_fast_without_a_journal(
    server: FakeWolkvoxServer, on_quota_exhausted: str
) -> None:
    # The first batch is acknowledged, then the CRM goes into maintenance for good. Without a task
    # state store a task retry would send the acknowledged records again, so the task must not retry
    # (a load that waits for the quota keeps its journal in memory, which a retry does not see).
    acknowledged = {
        "code": 200,
        "error": "null",
        "msg": "ok",
        "data": [{"wolkvox_id": f"{n:024x}"} for n in range(10)],
    }
    server.inject(Fault.RESPOND, path=api.INSERT_MANY_PATH, status=200, body=acknowledged)
    server.inject(Fault.MAINTENANCE, path=api.INSERT_MANY_PATH, times=None)
    operator = WolkvoxInsertManyOperator(
        task_id="load",
        module="contacts",
        records=rows(30),
        batch_size=10,
        max_in_flight=1,
        on_quota_exhausted=on_quota_exhausted,
    )
    ti = RecordingTaskInstance()
    with pytest.raises(AirflowFailException, match="20 of 30 records failed") as raised:
        operator.execute({"ti": ti})  # type: ignore[arg-type]
    assert "10 created, 20 not_sent" in str(raised.value)
    assert {f["status"] for f in ti.pushed["failed_records"]} == {"not_sent"}


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"records": "not json"}, "records is a string that is not JSON"),
        ({"records": {"a": 1}}, "records must be a list of mappings or a JSON array string, got dict"),
        ({"records": [{"a": 1}, "x"]}, "record 1: fields must be a mapping of field name to value, got str"),
        ({"records_path": "/nonexistent/contacts.jsonl"}, "cannot open '/nonexistent/contacts.jsonl'"),
        (
            {"records_path": "/tmp/contacts.parquet"},
            "unknown format; name the file *.jsonl, *.ndjson or *.csv",
        ),
    ],
)
def test_bad_input_fails_fast_before_any_request(
    server: FakeWolkvoxServer, kwargs: dict, message: str
) -> None:
    with pytest.raises(AirflowFailException) as raised:
        run(**kwargs)
    assert message in str(raised.value)
    assert isinstance(raised.value.__cause__, WolkvoxInputError)
    assert server.calls() == 0


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("bad.jsonl", '{"a": 1}\n{"a": 2\n', "line 2: not valid JSON"),
        ("list.jsonl", '{"a": 1}\n\n[1, 2]\n', "line 3: a record must be a JSON object, got list"),
        ("ragged.csv", "Nombre,Email\nAna,a@x.co\nBea\n", "line 3: 1 values where the header has 2 columns"),
        ("bytes.jsonl", '{"a": 1}\n{"a": NaN}\n', "record line 2: field 'a': nan is not a JSON number"),
        ("twice.jsonl", '{"a": 1}\n{"a": 2, "a": 3}\n', "line 2: key 'a' appears 2 times in one object"),
    ],
)
def test_bad_files_are_named_by_line_before_any_request(
    server: FakeWolkvoxServer, tmp_path: Path, name: str, content: str, message: str
) -> None:
    path = tmp_path / name
    path.write_text(content, encoding="utf-8")
    with pytest.raises(AirflowFailException) as raised:
        run(records_path=str(path))
    assert message in str(raised.value)
    assert server.calls() == 0


def test_a_records_path_that_is_not_a_regular_file_fails_before_any_request(
    server: FakeWolkvoxServer, tmp_path: Path
) -> None:
    path = tmp_path / "contacts.jsonl"
    path.mkdir()
    with pytest.raises(AirflowFailException) as raised:
        run(records_path=str(path))
    assert f"cannot open {str(path)!r}: it is a directory, not a regular file" in str(raised.value)
    assert server.calls() == 0


def test_a_line_over_the_limit_fails_before_any_request(
    server: FakeWolkvoxServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sources, "MAX_LINE_BYTES", 1024)
    path = tmp_path / "contacts.jsonl"
    path.write_text(json.dumps(rows(1)[0]) + "\n" + json.dumps({"Nota": "x" * 2048}) + "\n", encoding="utf-8")
    with pytest.raises(AirflowFailException) as raised:
        run(records_path=str(path))
    assert f"{path} line 2: longer than 1,024 bytes, the most a line may hold" in str(raised.value)
    assert server.calls() == 0


def test_exactly_one_input_is_required() -> None:
    with pytest.raises(ValueError, match="exactly one of records and records_path"):
        WolkvoxInsertManyOperator(task_id="t", module="contacts")
    with pytest.raises(ValueError, match="exactly one of records and records_path"):
        WolkvoxInsertManyOperator(task_id="t", module="contacts", records=[], records_path="x.csv")


def test_a_load_broken_off_after_sending_fails_without_task_retries(server: FakeWolkvoxServer) -> None:
    # The results file fails when written (a full disk): the records are in the CRM by then, and
    # without a journal a task retry would send them again.
    operator = WolkvoxInsertManyOperator(
        task_id="load", module="contacts", records=rows(10), results_path="/dev/full"
    )
    with pytest.raises(AirflowFailException, match=r"broke off after 1 API calls \(OSError") as raised:
        operator.execute({"ti": RecordingTaskInstance()})  # type: ignore[arg-type]
    assert "a retry would send them again" in str(raised.value)
    assert len(server.records("contacts")) == 10


def test_unknown_outcomes_make_a_transient_stop_fail_fast(server: FakeWolkvoxServer) -> None:
    # Batch 1 is stored but its answer lost; then the CRM stays in maintenance.
    server.inject(Fault.STORE_THEN_DROP)
    server.inject(Fault.MAINTENANCE, times=None)
    operator = WolkvoxInsertManyOperator(
        task_id="load", module="contacts", records=rows(20), batch_size=10, max_in_flight=1
    )
    with pytest.raises(AirflowFailException, match="10 outcome_unknown, 10 not_sent"):
        operator.execute({"ti": RecordingTaskInstance()})  # type: ignore[arg-type]
    assert len(server.records("contacts")) == 10


def test_an_unparsable_fields_string_fails_without_task_retries(server: FakeWolkvoxServer) -> None:
    from airflow_provider_wolkvox.operators.insert import WolkvoxInsertOperator

    with pytest.raises(AirflowFailException, match="fields is a string that is not JSON"):
        WolkvoxInsertOperator(task_id="t", module="contacts", fields="{oops").execute({})  # type: ignore[arg-type]
    assert server.calls() == 0
