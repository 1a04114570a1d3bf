"""Records read from SQL (``sql_source.py``): the value rules in a table, the spool, and the query
read from real databases: SQLite files and a throw-away PostgreSQL cluster (``tests/sql_db.py``)."""

from __future__ import annotations

import datetime
import json
import re
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_wolkvox.exceptions import WolkvoxInputError
from airflow_provider_wolkvox.sql_source import _columns, check_fetch_size, row_line, spooled_query
from tests.sql_db import PostgresCluster, sqlite_connection, sqlite_db

BOGOTA = datetime.timezone(datetime.timedelta(hours=-5))


def spooled(path: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in Path(path).read_text(encoding="utf-8").splitlines()]


def line(row: tuple[Any, ...] | dict[str, Any], *, key_field: str | None = None, number: int = 1) -> Any:
    columns = list(row) if isinstance(row, dict) else [f"c{n}" for n in range(len(row))]
    return json.loads(row_line(columns, row, number, key_field))


@pytest.mark.parametrize(
    ("value", "sent"),
    [
        (None, None),
        ("Ana", "Ana"),
        (7, 7),
        (True, True),
        (1.5, 1.5),
        (datetime.date(2026, 3, 1), "2026-03-01"),
        (datetime.datetime(2026, 3, 1, 9, 30, 15, 999), "2026-03-01 09:30:15"),
        # An aware datetime keeps the wall-clock time the database gave it in (one rule everywhere).
        (datetime.datetime(2026, 3, 1, 9, 30, tzinfo=BOGOTA), "2026-03-01 09:30:00"),
        (Decimal("1750905"), 1750905),
        (Decimal("1750905.00"), 1750905),
        (Decimal("1750905.50"), 1750905.5),
        (Decimal("123456789012345678901234567890"), 123456789012345678901234567890),
        ({"type": "address", "value": "Calle 1"}, {"type": "address", "value": "Calle 1"}),
        ([1, "a"], [1, "a"]),
    ],
)
def test_a_column_value_becomes_the_field_value_of_the_rule(value: Any, sent: Any) -> None:
    assert line({"Campo": value}) == {"Campo": sent}


@pytest.mark.parametrize("value", [b"\x00\xff", bytearray(b"ab"), memoryview(b"ab")])
def test_binary_data_is_refused_naming_the_row_the_column_and_the_key(value: Any) -> None:
    with pytest.raises(
        WolkvoxInputError, match=r"^record row 4 \(Email='a@x.com'\): field 'Foto': binary data"
    ) as e:
        line({"Email": "a@x.com", "Foto": value}, key_field="Email", number=4)
    assert e.value.field == "Foto"


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        (float("nan"), "nan is not a JSON number"),
        (datetime.time(9, 30), "a time value cannot be sent as JSON"),
        (datetime.timedelta(days=1), "a timedelta value cannot be sent as JSON"),
    ],
)
def test_a_value_without_a_json_form_is_refused_naming_the_row_and_the_column(
    value: Any, problem: str
) -> None:
    with pytest.raises(WolkvoxInputError, match=re.escape(f"row 2: field 'Hora': {problem}")) as e:
        line({"Nombre": "Ana", "Hora": value}, number=2)
    assert e.value.field == "Hora"


@pytest.mark.parametrize("key", [None, "", "  "])
def test_a_sync_row_without_its_key_is_refused(key: Any) -> None:
    with pytest.raises(WolkvoxInputError, match=r"^row 3: no value for the key field 'Email'"):
        line({"Email": key, "Nombre": "Ana"}, key_field="Email", number=3)


def test_rows_given_as_mappings_are_read_by_column_name() -> None:
    assert json.loads(row_line(["a", "b"], {"b": 2, "a": 1}, 1, None)) == {"a": 1, "b": 2}


@pytest.mark.parametrize(
    ("names", "key_field", "problem"),
    [
        (
            ["Email", "Nombre", "Email"],
            None,
            "column 'Email' appears 2 times in the sql's result (columns 1, 3)",
        ),
        (["Email", " "], None, "column 2 of the sql has no name"),
        (["Nombre"], "Email", "the sql has no column 'Email', the key_field; its columns: Nombre"),
    ],
)
def test_the_columns_are_checked_before_any_row(
    names: list[str], key_field: str | None, problem: str
) -> None:
    with pytest.raises(WolkvoxInputError, match=re.escape(problem)):
        _columns([(name, None) for name in names], key_field)


def test_a_statement_without_rows_is_refused() -> None:
    with pytest.raises(WolkvoxInputError, match="give a query that returns rows"):
        _columns(None, None)


@pytest.mark.parametrize("size", [0, -1, 2.5, "100", True])
def test_the_fetch_size_is_a_positive_int(size: Any) -> None:
    with pytest.raises(WolkvoxInputError, match="sql_fetch_size must be a number of rows"):
        check_fetch_size(size)


# SQLite


@pytest.fixture
def contacts_db(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = sqlite_db(
        tmp_path / "crm.sqlite",
        "CREATE TABLE contacts (email TEXT, name TEXT, city TEXT, score REAL, photo BLOB)",
        [(f"c{n}@example.com", f"C{n}", "Cali" if n % 2 else "Bogotá", n / 2, None) for n in range(7)],
        "INSERT INTO contacts VALUES (?, ?, ?, ?, ?)",
    )
    monkeypatch.setenv("AIRFLOW_CONN_CRM_DB", sqlite_connection(path))
    return path


def test_a_sqlite_query_is_spooled_row_by_row_and_the_spool_removed(
    contacts_db: Path, tmp_path: Path
) -> None:
    sql = 'SELECT email AS "Email", name AS "Nombre", score AS "Puntos" FROM contacts ORDER BY email'
    with spooled_query("crm_db", sql, fetch_size=3, directory=str(tmp_path)) as spool:
        assert spool.rows == 7
        assert not spool.server_side
        assert spooled(spool.path)[:2] == [
            {"Email": "c0@example.com", "Nombre": "C0", "Puntos": 0.0},
            {"Email": "c1@example.com", "Nombre": "C1", "Puntos": 0.5},
        ]
    assert not Path(spool.path).exists()


def test_the_parameters_are_passed_to_the_query(contacts_db: Path) -> None:
    sql = 'SELECT email AS "Email" FROM contacts WHERE city = :city AND score >= :least'
    with spooled_query("crm_db", sql, {"city": "Cali", "least": 1}) as spool:
        assert [row["Email"] for row in spooled(spool.path)] == [
            "c3@example.com",
            "c5@example.com",
        ]


def test_the_spool_is_removed_when_a_row_is_refused(contacts_db: Path, tmp_path: Path) -> None:
    sql = "SELECT email, CASE WHEN email = 'c4@example.com' THEN X'00ff' END AS photo FROM contacts"
    with (
        pytest.raises(
            WolkvoxInputError, match=r"row 5 \(email='c4@example.com'\): field 'photo': binary data"
        ),
        spooled_query("crm_db", sql, key_field="email", directory=str(tmp_path)),
    ):
        pass  # pragma: no cover - never reached
    assert list(tmp_path.glob("wolkvox-sql-*")) == []


def test_the_spool_is_removed_when_the_block_fails(contacts_db: Path, tmp_path: Path) -> None:
    made: list[Path] = []

    def load_that_breaks() -> None:
        with spooled_query("crm_db", "SELECT 1 AS one", directory=str(tmp_path)):
            made.extend(tmp_path.glob("wolkvox-sql-*.jsonl"))
            raise RuntimeError("the load broke")

    with pytest.raises(RuntimeError, match="the load broke"):
        load_that_breaks()
    assert len(made) == 1
    assert list(tmp_path.glob("wolkvox-sql-*")) == []


def test_an_empty_result_makes_an_empty_spool(contacts_db: Path) -> None:
    with spooled_query("crm_db", "SELECT email FROM contacts WHERE 0", key_field="email") as spool:
        assert spool.rows == 0
        assert Path(spool.path).read_bytes() == b""


def test_a_connection_without_a_sql_hook_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(
        "AIRFLOW_CONN_NOT_A_DB", json.dumps({"conn_type": "wolkvox", "host": "h", "password": "t"})
    )
    with (
        pytest.raises(WolkvoxInputError, match="'not_a_db': a 'wolkvox' Connection has no SQL hook"),
        spooled_query("not_a_db", "SELECT 1"),
    ):
        pass  # pragma: no cover - never reached


# PostgreSQL


@pytest.fixture
def pg(postgres: PostgresCluster, monkeypatch: pytest.MonkeyPatch) -> PostgresCluster:
    monkeypatch.setenv("AIRFLOW_CONN_CRM_PG", postgres.connection())
    return postgres


def test_postgres_rows_come_through_a_server_side_cursor_in_chunks(pg: PostgresCluster) -> None:
    # pg_cursors lists the cursors open in the session: a plain query opens none, a named cursor one.
    sql = (
        'SELECT g AS "n", (SELECT string_agg(name, \',\') FROM pg_cursors) AS "cursores" '
        "FROM generate_series(1, %(count)s) AS g ORDER BY g"
    )
    with spooled_query("crm_pg", sql, {"count": 10}, fetch_size=3) as spool:
        rows = spooled(spool.path)
    assert spool.server_side
    assert [row["n"] for row in rows] == list(range(1, 11))
    assert all(re.fullmatch(r"wolkvox_sql_[0-9a-f]{32}", row["cursores"]) for row in rows)


def test_postgres_values_become_field_values_by_the_rules(pg: PostgresCluster) -> None:
    sql = """
        SELECT 'a@x.com' AS "Email", NULL::text AS "Vacio", DATE '2026-03-01' AS "Fecha",
               TIMESTAMP '2026-03-01 09:30:15.5' AS "Hora",
               TIMESTAMPTZ '2026-03-01 09:30:00-05' AT TIME ZONE 'America/Bogota' AS "Hora local",
               1750905.50::numeric(12, 2) AS "Valor", 42::numeric AS "Entero", true AS "Activo",
               jsonb_build_object('type', 'address', 'value', 'Calle 145a #12-60') AS "Direccion",
               '["a", 1]'::json AS "Lista"
    """
    with spooled_query("crm_pg", sql, key_field="Email") as spool:
        [row] = spooled(spool.path)
    assert row == {
        "Email": "a@x.com",
        "Vacio": None,
        "Fecha": "2026-03-01",
        "Hora": "2026-03-01 09:30:15",
        "Hora local": "2026-03-01 09:30:00",
        "Valor": 1750905.5,
        "Entero": 42,
        "Activo": True,
        "Direccion": {"type": "address", "value": "Calle 145a #12-60"},
        "Lista": ["a", 1],
    }


def test_postgres_bytea_is_refused_naming_the_row(pg: PostgresCluster) -> None:
    sql = "SELECT g AS id, CASE WHEN g = 3 THEN '\\x00ff'::bytea END AS foto FROM generate_series(1, 5) g"
    with (
        pytest.raises(WolkvoxInputError, match=r"row 3 \(id=3\): field 'foto': binary data"),
        spooled_query("crm_pg", sql, key_field="id", fetch_size=2),
    ):
        pass  # pragma: no cover - never reached


def test_postgres_an_empty_result_through_a_named_cursor(pg: PostgresCluster) -> None:
    with spooled_query("crm_pg", 'SELECT 1 AS "Email" WHERE false', key_field="Email") as spool:
        assert (spool.rows, spool.server_side) == (0, True)
