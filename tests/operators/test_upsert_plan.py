"""WolkvoxUpsertOperator's dry run and mirror mode against the fake CRM: the plan as the task's return
value for every input form, the delete guard failing the task without retries, ``deleted`` results
lines, and mirror refused without a state."""

from __future__ import annotations

import json
import re
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from airflow.providers.common.compat.sdk import AirflowFailException

from airflow_provider_wolkvox import api
from airflow_provider_wolkvox.exceptions import WolkvoxDeleteGuardError, WolkvoxInputError
from airflow_provider_wolkvox.operators.upsert import WolkvoxUpsertOperator
from airflow_provider_wolkvox.testing import CONN_ENV_VAR, FakeWolkvoxServer, Fault
from tests.conftest import OPERATION, TOKEN, RecordingTaskInstance
from tests.sql_db import sqlite_connection, sqlite_db

WRITES = (api.INSERT_PATH, api.INSERT_MANY_PATH, api.UPDATE_PATH, api.DELETE_PATH)
PLAN_KEYS = {"create", "update", "unchanged", "skip", "delete", "write_calls", "calls_used", "quota_left"}


@pytest.fixture
def server(monkeypatch: pytest.MonkeyPatch, fast_retries: object) -> Iterator[FakeWolkvoxServer]:
    with FakeWolkvoxServer({TOKEN: OPERATION}) as fake:
        monkeypatch.setenv(CONN_ENV_VAR, fake.airflow_connection())
        yield fake


@pytest.fixture
def state(tmp_path: Path) -> str:
    return str(tmp_path / "contacts.sync-state.jsonl")


def rows(count: int, start: int = 0, **changes: Any) -> list[dict[str, Any]]:
    return [{"Email": f"c{n}@example.com", "Nombre": f"C{n}", **changes} for n in range(start, start + count)]


def run(**kwargs: Any) -> tuple[Any, RecordingTaskInstance]:
    ti = RecordingTaskInstance()
    operator = WolkvoxUpsertOperator(task_id="sync", module="contacts", key_field="Email", **kwargs)
    return operator.execute({"ti": ti}), ti  # type: ignore[arg-type]


def writes(server: FakeWolkvoxServer) -> int:
    return sum(server.calls(path) for path in WRITES)


def test_a_dry_run_returns_the_plan_and_the_apply_makes_its_write_calls(
    server: FakeWolkvoxServer, state: str
) -> None:
    run(records=rows(8), state_path=state, mode="mirror")
    records = [*rows(2), *rows(2, 2, Nombre="Nuevo"), *rows(3, 20)]  # 2 unchanged, 2 changed, 3 new, 4 gone
    state_before, stored_before, writes_before = (
        Path(state).read_bytes(),
        server.records("contacts"),
        writes(server),
    )

    plan, ti = run(records=records, state_path=state, mode="mirror", dry_run=True, batch_size=2)

    assert set(plan) >= PLAN_KEYS
    assert {k: plan[k] for k in ("create", "update", "unchanged", "skip", "delete")} == {
        "create": 3,
        "update": 2,
        "unchanged": 2,
        "skip": 0,
        "delete": 4,
    }
    assert plan["write_calls"] == 2 + 2 + 2  # ceil(3 / 2) insertMany, 2 update, ceil(4 / 2) delete
    assert plan["calls_used"] == 3 + 1  # the new keys' look-ups and the token information
    assert json.loads(json.dumps(plan)) == plan  # XCom-ready
    assert ti.pushed == {}
    assert (writes(server), Path(state).read_bytes(), server.records("contacts")) == (
        writes_before,
        state_before,
        stored_before,
    )

    returned, _ = run(records=records, state_path=state, mode="mirror", batch_size=2)

    assert writes(server) - writes_before == plan["write_calls"]
    assert set(returned) == {r["Email"] for r in records}  # the deleted keys are not among the CRM's


def test_a_dry_run_of_a_file_returns_the_plan_too(
    server: FakeWolkvoxServer, tmp_path: Path, state: str
) -> None:
    path = tmp_path / "contacts.jsonl"
    path.write_text("".join(json.dumps(row) + "\n" for row in rows(5)), encoding="utf-8")
    results = tmp_path / "results.jsonl"

    plan, _ = run(records_path=str(path), state_path=state, results_path=str(results), dry_run=True)

    assert (plan["create"], plan["write_calls"], plan["calls_used"]) == (5, 1, 5 + 1)
    assert not results.exists()
    assert writes(server) == 0


def test_a_dry_run_of_a_query_returns_the_plan_too(
    server: FakeWolkvoxServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, state: str
) -> None:
    db = sqlite_db(
        tmp_path / "crm.sqlite",
        "CREATE TABLE contacts (email TEXT, name TEXT)",
        [(f"c{n}@example.com", f"C{n}") for n in range(4)],
        "INSERT INTO contacts VALUES (?, ?)",
    )
    monkeypatch.setenv("AIRFLOW_CONN_CRM_DB", sqlite_connection(db))
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    run(records=rows(4), state_path=state)
    query = 'SELECT email AS "Email", name AS "Nombre" FROM contacts'

    plan, _ = run(sql=query, sql_conn_id="crm_db", state_path=state, dry_run=True)

    assert (plan["unchanged"], plan["write_calls"], plan["calls_used"]) == (4, 0, 1)
    assert not list(tmp_path.glob("wolkvox-sql-*"))  # the spool is removed


def test_the_delete_guard_fails_the_task_without_retries_and_writes_nothing(
    server: FakeWolkvoxServer, state: str
) -> None:
    run(records=rows(40), state_path=state, mode="mirror")
    calls, stored = server.calls(), server.records("contacts")

    with pytest.raises(AirflowFailException, match=re.escape("35 of the 40 keys its state tracks")) as raised:
        run(records=[*rows(4), *rows(1, 4, Nombre="Cambio"), *rows(2, 50)], state_path=state, mode="mirror")

    assert isinstance(raised.value.__cause__, WolkvoxDeleteGuardError)
    assert "max_deletes=0.1 allows (10: 10 % of the tracked keys, at least 10)" in str(raised.value)
    assert "The input has 7 records: 5 known from the state (1 changed), 2 to look up" in str(raised.value)
    assert (server.calls(), server.records("contacts")) == (calls, stored)


def test_mirror_results_lines_carry_the_deleted_keys_with_their_ids(
    server: FakeWolkvoxServer, tmp_path: Path, state: str
) -> None:
    run(records=rows(4), state_path=state, mode="mirror")
    ids = {record["Email"]: record["wolkvox_id"] for record in server.records("contacts")}
    path = tmp_path / "contacts.jsonl"
    path.write_text("".join(json.dumps(row) + "\n" for row in rows(2)), encoding="utf-8")
    results = tmp_path / "results.jsonl"

    summary, ti = run(records_path=str(path), results_path=str(results), state_path=state, mode="mirror")

    lines = [json.loads(line) for line in results.read_text().splitlines()]
    assert [(line["line"], line["key"], line["status"]) for line in lines[:2]] == [
        (1, "c0@example.com", "unchanged"),
        (2, "c1@example.com", "unchanged"),
    ]
    assert sorted((line["line"], line["key"], line["status"], line["wolkvox_id"]) for line in lines[2:]) == [
        (None, "c2@example.com", "deleted", ids["c2@example.com"]),
        (None, "c3@example.com", "deleted", ids["c3@example.com"]),
    ]
    assert (summary["deleted"], summary["already_absent"], summary["failed"]) == (2, 0, 0)
    assert ti.pushed["failed_records"] == []
    assert {record["Email"] for record in server.records("contacts")} == {"c0@example.com", "c1@example.com"}


def test_mirror_without_a_state_path_is_refused_when_the_dag_is_parsed() -> None:
    with pytest.raises(WolkvoxInputError, match=re.escape("mode='mirror' needs a state_path")):
        WolkvoxUpsertOperator(task_id="s", module="contacts", key_field="Email", records=[], mode="mirror")


@pytest.mark.parametrize(("name", "value"), [("max_deletes", 2.5), ("max_deletes", -3), ("dry_run", "yes")])
def test_bad_plan_options_fail_when_the_dag_is_parsed(name: str, value: Any, state: str) -> None:
    with pytest.raises(WolkvoxInputError, match=name):
        WolkvoxUpsertOperator(
            task_id="s", module="contacts", key_field="Email", records=[], state_path=state, **{name: value}
        )


def test_the_operator_keeps_base_operator_dry_run(state: str) -> None:
    """``airflow tasks test --dry-run`` calls the task's ``dry_run()`` (render only): still a method."""
    operator = WolkvoxUpsertOperator(
        task_id="s", module="contacts", key_field="Email", records=[], state_path=state, dry_run=True
    )
    assert callable(operator.dry_run)
    assert operator.sync_dry_run is True


def test_a_refused_delete_fails_the_task_naming_the_tracked_key(
    server: FakeWolkvoxServer, state: str
) -> None:
    run(records=rows(2), state_path=state, mode="mirror")
    refusal = {"code": 400, "error": "BAD REQUEST", "msg": "THE RECORD IS IN USE"}
    server.inject(Fault.RESPOND, path=api.DELETE_PATH, status=400, body=json.dumps(refusal).encode())

    with pytest.raises(AirflowFailException, match="1 of 2 records failed") as raised:
        run(records=rows(1), state_path=state, mode="mirror")

    assert "tracked key 'c1@example.com': rejected THE RECORD IS IN USE" in str(raised.value)
    assert len(server.records("contacts")) == 2
