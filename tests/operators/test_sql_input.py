"""The ``sql`` input of the load operators against the fake CRM, from real databases: SQLite files in
every run, and the throw-away PostgreSQL cluster of ``tests/sql_db.py``. The fake's store is the truth."""

from __future__ import annotations

import json
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from airflow.providers.common.compat.sdk import AirflowFailException

from airflow_provider_wolkvox import api
from airflow_provider_wolkvox.exceptions import WolkvoxInputError
from airflow_provider_wolkvox.operators.insert import WolkvoxInsertManyOperator
from airflow_provider_wolkvox.operators.upsert import WolkvoxUpsertOperator
from airflow_provider_wolkvox.testing import CONN_ENV_VAR, FakeWolkvoxServer
from tests.conftest import OPERATION, TOKEN, RecordingTaskInstance
from tests.sql_db import PostgresCluster, sqlite_connection, sqlite_db

CONTACTS = 'SELECT email AS "Email", name AS "Nombre", city AS "Ciudad" FROM contacts ORDER BY id'


@pytest.fixture
def server(monkeypatch: pytest.MonkeyPatch, fast_retries: object) -> Iterator[FakeWolkvoxServer]:
    with FakeWolkvoxServer({TOKEN: OPERATION}) as fake:
        monkeypatch.setenv(CONN_ENV_VAR, fake.airflow_connection())
        yield fake


@pytest.fixture
def spool_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Where the operators make their spools in these tests (the system's temporary folder otherwise)."""
    folder = tmp_path / "spools"
    folder.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(folder))
    return folder


def contacts_db(path: Path, count: int, *, extra: str = "") -> Path:
    return sqlite_db(
        path,
        f"CREATE TABLE contacts (id INTEGER PRIMARY KEY, email TEXT, name TEXT, city TEXT{extra})",
        [(n, f"c{n}@example.com", f"C{n}", "Cali" if n % 2 else "Bogotá") for n in range(1, count + 1)],
        "INSERT INTO contacts (id, email, name, city) VALUES (?, ?, ?, ?)",
    )


@pytest.fixture
def sqlite_conn(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = contacts_db(tmp_path / "crm.sqlite", 25, extra=", photo BLOB")
    monkeypatch.setenv("AIRFLOW_CONN_CRM_DB", sqlite_connection(path))
    return path


def sync(**kwargs: Any) -> tuple[Any, RecordingTaskInstance]:
    ti = RecordingTaskInstance()
    operator = WolkvoxUpsertOperator(task_id="sync", module="contacts", key_field="Email", **kwargs)
    return operator.execute({"ti": ti}), ti  # type: ignore[arg-type]


def stored(server: FakeWolkvoxServer) -> dict[str, dict[str, Any]]:
    return {record["Email"]: record for record in server.records("contacts")}


def test_a_sync_from_sqlite_creates_every_row_once_and_its_unchanged_rerun_makes_no_call(
    server: FakeWolkvoxServer, sqlite_conn: Path, spool_dir: Path, tmp_path: Path
) -> None:
    state = str(tmp_path / "contacts.sync-state.jsonl")

    summary, ti = sync(sql=CONTACTS, sql_conn_id="crm_db", state_path=state, sql_fetch_size=4)

    records = server.records("contacts")
    assert sorted(record["Email"] for record in records) == sorted(f"c{n}@example.com" for n in range(1, 26))
    assert stored(server)["c2@example.com"]["Ciudad"] == "Bogotá"
    assert (summary["total"], summary["created"], summary["failed"]) == (25, 25, 0)
    assert ti.pushed["failed_records"] == []
    calls = server.calls()

    again, _ = sync(sql=CONTACTS, sql_conn_id="crm_db", state_path=state)

    assert server.calls() == calls  # not one call: every row is known unchanged from the state
    assert (again["total"], again["unchanged"], again["created"]) == (25, 25, 0)
    assert len(server.records("contacts")) == 25
    assert list(spool_dir.iterdir()) == []


def test_a_sync_from_sql_updates_what_changed_in_the_database(
    server: FakeWolkvoxServer, sqlite_conn: Path, tmp_path: Path
) -> None:
    state = str(tmp_path / "contacts.sync-state.jsonl")
    sync(sql=CONTACTS, sql_conn_id="crm_db", state_path=state)
    sqlite_db(sqlite_conn, "UPDATE contacts SET city = 'Medellín' WHERE id = 3")
    calls = server.calls()

    summary, _ = sync(sql=CONTACTS, sql_conn_id="crm_db", state_path=state)

    assert (summary["updated"], summary["unchanged"]) == (1, 24)
    assert server.calls() - calls == 1
    assert server.calls(api.UPDATE_PATH) == 1
    assert stored(server)["c3@example.com"]["Ciudad"] == "Medellín"


def test_an_insert_many_from_sql_creates_every_row_and_its_results_give_the_ids(
    server: FakeWolkvoxServer, sqlite_conn: Path, spool_dir: Path, tmp_path: Path
) -> None:
    results = tmp_path / "results.jsonl"
    ti = RecordingTaskInstance()
    operator = WolkvoxInsertManyOperator(
        task_id="load", module="contacts", sql=CONTACTS, sql_conn_id="crm_db", results_path=str(results)
    )

    summary = operator.execute({"ti": ti})  # type: ignore[arg-type]

    assert (summary["total"], summary["created"], summary["calls"]) == (25, 25, 1)
    assert summary["results_path"] == str(results)
    ids = [json.loads(line)["wolkvox_id"] for line in results.read_text().splitlines()]
    by_email = {email: record["wolkvox_id"] for email, record in stored(server).items()}
    assert ids == [by_email[f"c{n}@example.com"] for n in range(1, 26)]  # in row order
    assert list(spool_dir.iterdir()) == []


def test_the_sql_parameters_are_rendered_and_passed(server: FakeWolkvoxServer, sqlite_conn: Path) -> None:
    operator = WolkvoxInsertManyOperator(
        task_id="load",
        module="contacts",
        sql='SELECT email AS "Email" FROM contacts WHERE city = :city AND id <= :last',
        sql_conn_id="{{ params.db }}",
        sql_parameters={"city": "{{ params.city }}", "last": 9},
    )
    operator.render_template_fields({"params": {"city": "Cali", "db": "crm_db"}})
    assert operator.sql_parameters == {"city": "Cali", "last": 9}

    operator.execute({"ti": RecordingTaskInstance()})  # type: ignore[arg-type]

    assert sorted(stored(server)) == [f"c{n}@example.com" for n in (1, 3, 5, 7, 9)]


def test_a_binary_column_fails_the_task_before_any_request_naming_the_row_and_key(
    server: FakeWolkvoxServer, sqlite_conn: Path, spool_dir: Path
) -> None:
    sqlite_db(sqlite_conn, "UPDATE contacts SET photo = X'89504e47' WHERE id = 17")
    with pytest.raises(AirflowFailException) as raised:
        sync(sql='SELECT email AS "Email", photo AS "Foto" FROM contacts ORDER BY id', sql_conn_id="crm_db")
    assert "row 17 (Email='c17@example.com'): field 'Foto': binary data (bytes) cannot be sent" in str(
        raised.value
    )
    assert isinstance(raised.value.__cause__, WolkvoxInputError)
    assert server.calls() == 0
    assert list(spool_dir.iterdir()) == []


def test_a_null_key_fails_the_sync_before_any_request_naming_the_row(
    server: FakeWolkvoxServer, sqlite_conn: Path, spool_dir: Path
) -> None:
    sqlite_db(sqlite_conn, "UPDATE contacts SET email = NULL WHERE id = 20")
    with pytest.raises(AirflowFailException, match=r"row 20: no value for the key field 'Email' \(NULL\)"):
        sync(sql=CONTACTS, sql_conn_id="crm_db")
    assert server.calls() == 0
    assert list(spool_dir.iterdir()) == []


def test_a_key_given_by_two_rows_fails_the_sync_naming_both(
    server: FakeWolkvoxServer, sqlite_conn: Path
) -> None:
    sqlite_db(sqlite_conn, "UPDATE contacts SET email = ' c5@example.com ' WHERE id = 8")
    sqlite_db(sqlite_conn, "UPDATE contacts SET email = 'c5@example.com' WHERE id = 5")
    with pytest.raises(
        AirflowFailException, match=r"row 5 and row 8 have the same key Email='c5@example\.com'"
    ):
        sync(sql=CONTACTS, sql_conn_id="crm_db")
    assert server.calls() == 0


def test_a_bad_value_in_an_insert_many_names_the_row(server: FakeWolkvoxServer, sqlite_conn: Path) -> None:
    operator = WolkvoxInsertManyOperator(
        task_id="load",
        module="contacts",
        sql='SELECT email AS "Email", CASE WHEN id = 4 THEN 1e999 END AS "Puntos" FROM contacts ORDER BY id',
        sql_conn_id="crm_db",
    )
    with pytest.raises(AirflowFailException, match=r"row 4: field 'Puntos': inf is not a JSON number"):
        operator.execute({"ti": RecordingTaskInstance()})  # type: ignore[arg-type]
    assert server.calls() == 0


def test_the_spool_is_removed_when_the_load_fails_after_it_was_made(
    server: FakeWolkvoxServer, sqlite_conn: Path, spool_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(CONN_ENV_VAR, server.airflow_connection().replace(TOKEN, "not-the-token"))
    with pytest.raises(AirflowFailException):
        sync(sql=CONTACTS, sql_conn_id="crm_db")
    assert server.records("contacts") == []
    assert list(spool_dir.iterdir()) == []


@pytest.mark.parametrize(
    ("inputs", "problem"),
    [
        ({}, "exactly one of records and records_path, or sql with sql_conn_id; got none of them"),
        ({"records": [], "sql": "SELECT 1", "sql_conn_id": "db"}, "got records and sql"),
        ({"sql": "SELECT 1"}, "sql and sql_conn_id go together"),
        ({"records": [], "sql_conn_id": "db"}, "sql and sql_conn_id go together"),
        ({"records": [], "sql_parameters": {"a": 1}}, "sql_parameters is given without sql"),
        ({"sql": "  ", "sql_conn_id": "db"}, "sql must be a query"),
        ({"sql": "SELECT 1", "sql_conn_id": "db", "sql_fetch_size": 0}, "sql_fetch_size must be a number"),
    ],
)
@pytest.mark.parametrize("operator", [WolkvoxInsertManyOperator, WolkvoxUpsertOperator])
def test_the_input_form_is_checked_when_the_dag_is_parsed(
    operator: type[Any], inputs: dict[str, Any], problem: str
) -> None:
    keys = {"key_field": "Email"} if operator is WolkvoxUpsertOperator else {}
    with pytest.raises(WolkvoxInputError, match=problem.replace("(", r"\(").replace(")", r"\)")):
        operator(task_id="t", module="contacts", **keys, **inputs)


def test_sql_is_templated_and_may_be_a_sql_file() -> None:
    for operator in (WolkvoxInsertManyOperator, WolkvoxUpsertOperator):
        assert {"sql", "sql_conn_id", "sql_parameters"} <= set(operator.template_fields)
        assert ".sql" in operator.template_ext


# PostgreSQL


@pytest.fixture
def pg_contacts(postgres: PostgresCluster, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    table = "contacts_sync"
    postgres.execute(
        f"DROP TABLE IF EXISTS {table}",
        f"CREATE TABLE {table} (id int PRIMARY KEY, email text NOT NULL, name text, street text, since date)",
        f"INSERT INTO {table} SELECT g, 'p' || g || '@example.com', 'P' || g, 'Calle ' || g || ' #1-2',"
        " DATE '2026-01-01' + g FROM generate_series(1, 23) AS g",
    )
    monkeypatch.setenv("AIRFLOW_CONN_CRM_PG", postgres.connection())
    yield table
    postgres.execute(f"DROP TABLE {table}")


def test_a_sync_from_postgres_reads_through_a_server_side_cursor_and_reruns_without_calls(
    server: FakeWolkvoxServer,
    pg_contacts: str,
    spool_dir: Path,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    state = str(tmp_path / "contacts.sync-state.jsonl")
    sql = f"""
        SELECT email AS "Email", name AS "Nombre", since AS "Cliente desde",
               jsonb_build_object('type', 'address', 'value', street) AS "Direccion"
        FROM {pg_contacts} WHERE id <= %(last)s ORDER BY id
    """
    caplog.set_level("INFO", logger="airflow_provider_wolkvox.sql_source")

    # 23 rows in chunks of 5: five fetches through the named cursor.
    summary, _ = sync(
        sql=sql, sql_conn_id="crm_pg", sql_parameters={"last": 100}, sql_fetch_size=5, state_path=state
    )

    assert (summary["total"], summary["created"]) == (23, 23)
    assert "read 23 rows of the SQL query on Connection 'crm_pg' (a server-side cursor)" in caplog.text
    record = stored(server)["p7@example.com"]
    assert record["Nombre"] == "P7"
    assert record["Cliente desde"] == "2026-01-08"
    assert record["Direccion"] == {"type": "address", "value": "Calle 7 #1-2"}  # a typed field from jsonb
    assert len(server.records("contacts")) == 23
    calls = server.calls()

    again, _ = sync(
        sql=sql, sql_conn_id="crm_pg", sql_parameters={"last": 100}, sql_fetch_size=5, state_path=state
    )

    assert (again["unchanged"], server.calls()) == (23, calls)
    assert list(spool_dir.iterdir()) == []
