"""WolkvoxUpsertOperator against the fake CRM: inputs, return values, XCom, when the task fails."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from airflow.providers.common.compat.sdk import AirflowFailException

from airflow_provider_wolkvox import api
from airflow_provider_wolkvox.exceptions import WolkvoxInputError
from airflow_provider_wolkvox.operators.upsert import WolkvoxUpsertOperator
from airflow_provider_wolkvox.testing import CONN_ENV_VAR, FakeWolkvoxServer
from tests.conftest import OPERATION, TOKEN, RecordingTaskInstance


@pytest.fixture
def server(monkeypatch: pytest.MonkeyPatch, fast_retries: object) -> Iterator[FakeWolkvoxServer]:
    with FakeWolkvoxServer({TOKEN: OPERATION}, unique_fields={"contacts": ["Telefono"]}) as fake:
        monkeypatch.setenv(CONN_ENV_VAR, fake.airflow_connection())
        yield fake


def rows(count: int, **changes: Any) -> list[dict[str, Any]]:
    return [{"Email": f"c{n}@example.com", "Nombre": f"C{n}", **changes} for n in range(count)]


def run(**kwargs: Any) -> tuple[Any, RecordingTaskInstance]:
    ti = RecordingTaskInstance()
    operator = WolkvoxUpsertOperator(task_id="sync", module="contacts", key_field="Email", **kwargs)
    return operator.execute({"ti": ti}), ti  # type: ignore[arg-type]


def test_in_memory_input_returns_the_id_of_every_key(server: FakeWolkvoxServer) -> None:
    returned, ti = run(records=rows(3))

    stored = {record["Email"]: record["wolkvox_id"] for record in server.records("contacts")}
    assert returned == stored
    assert len(stored) == 3
    assert ti.pushed["failed_records"] == []


def test_file_input_returns_the_summary_and_the_results_file_has_every_record(
    server: FakeWolkvoxServer, tmp_path: Path
) -> None:
    path = tmp_path / "contacts.jsonl"
    path.write_text("".join(json.dumps(row) + "\n" for row in rows(4)), encoding="utf-8")
    results = tmp_path / "results.jsonl"

    summary, _ = run(records_path=str(path), results_path=str(results))

    assert {k: summary[k] for k in ("total", "created", "updated", "unchanged", "failed")} == {
        "total": 4,
        "created": 4,
        "updated": 0,
        "unchanged": 0,
        "failed": 0,
    }
    assert summary["results_path"] == str(results)
    lines = [json.loads(line) for line in results.read_text().splitlines()]
    assert [(row["line"], row["status"], row["key"], row["try"]) for row in lines] == [
        (n + 1, "created", f"c{n}@example.com", 1) for n in range(4)
    ]


def test_a_rejected_record_fails_the_task_with_max_failed_records_0(server: FakeWolkvoxServer) -> None:
    records = rows(3)
    records[0]["Telefono"] = records[2]["Telefono"] = "3001234567"  # the second one breaks a unique field
    with pytest.raises(AirflowFailException, match=r"1 of 3 records failed \(allowed: 0\)") as raised:
        run(records=records)
    assert "record 2: rejected" in str(raised.value)
    assert len(server.records("contacts")) == 2


def test_a_file_with_a_key_given_twice_is_refused_naming_the_lines(
    server: FakeWolkvoxServer, tmp_path: Path
) -> None:
    path = tmp_path / "contacts.csv"
    path.write_text("Email,Nombre\na@example.com,A\nb@example.com,B\n A@example.com ,C\na@example.com,D\n")
    with pytest.raises(
        AirflowFailException, match=re.escape("line 2 and line 5 have the same key Email='a@example.com'")
    ) as raised:
        run(records_path=str(path))
    assert isinstance(raised.value.__cause__, WolkvoxInputError)
    assert server.calls() == 0


def test_a_bad_option_fails_when_the_dag_is_parsed() -> None:
    with pytest.raises(
        WolkvoxInputError, match="mode must be one of upsert, insert_only, update_only, mirror, got 'merge'"
    ):
        WolkvoxUpsertOperator(task_id="s", module="contacts", key_field="Email", records=[], mode="merge")


def test_a_records_string_is_parsed_at_render_time(server: FakeWolkvoxServer) -> None:
    operator = WolkvoxUpsertOperator(
        task_id="sync", module="contacts", key_field="Email", records="{{ params.rows | tojson }}"
    )
    operator.render_template_fields({"params": {"rows": rows(2)}})
    assert operator.records == rows(2)  # the Rendered Templates view shows the JSON, not a string
    operator.records = "[{'Email': 'x@example.com'}]"  # a rendered Python repr is read too
    operator.render_template_fields({})
    assert operator.records == [{"Email": "x@example.com"}]
    assert server.calls(api.INSERT_MANY_PATH) == 0
