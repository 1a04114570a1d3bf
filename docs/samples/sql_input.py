"""A sync whose records are the rows of a SQL query, run twice: the second run makes no call.

``docs/operators.md`` ("SQL input") quotes it; ``tests/test_docs.py`` runs it against the embedded
fake CRM, with a SQLite file standing for the warehouse: ``.venv/bin/python docs/samples/sql_input.py``.
"""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
import tempfile
from pathlib import Path
from typing import Any

from airflow_provider_wolkvox.operators.upsert import WolkvoxUpsertOperator
from airflow_provider_wolkvox.testing import CONN_ENV_VAR, FakeWolkvoxServer

# The column names (SQL aliases) are the CRM's field labels.
CONTACTS_SQL = """
    SELECT email AS "Email",
           first_name || ' ' || last_name AS "Nombre",
           city AS "Ciudad",
           signed_up AS "Fecha de alta"
    FROM customers
    WHERE country = :country
    ORDER BY email
"""


def sync_contacts(state_path: str) -> WolkvoxUpsertOperator:
    return WolkvoxUpsertOperator(
        task_id="sync_contacts",
        module="contacts",
        key_field="Email",
        sql=CONTACTS_SQL,
        sql_conn_id="warehouse",
        sql_parameters={"country": "{{ params.country }}"},
        state_path=state_path,
    )


class TaskInstance:
    """Stands for the task instance of a DAG run: its XComs."""

    try_number = 1

    def __init__(self) -> None:
        self.xcom: dict[str, Any] = {}

    def xcom_push(self, key: str, value: Any) -> None:
        self.xcom[key] = value


def make_warehouse(path: Path) -> None:
    with contextlib.closing(sqlite3.connect(path)) as db, db:
        db.execute("CREATE TABLE customers (email, first_name, last_name, city, country, signed_up)")
        db.executemany(
            "INSERT INTO customers VALUES (?, ?, ?, ?, ?, ?)",
            [
                ("ana@example.com", "Ana", "Gómez", "Medellín", "CO", "2026-01-05"),
                ("luis@example.com", "Luis", "Pérez", "Cali", "CO", "2026-02-11"),
                ("eva@example.com", "Eva", "Ruiz", "Quito", "EC", "2026-03-02"),
            ],
        )


def main() -> None:
    with tempfile.TemporaryDirectory() as folder:
        warehouse, state = Path(folder, "warehouse.sqlite"), str(Path(folder, "contacts.sync-state.jsonl"))
        make_warehouse(warehouse)
        os.environ["AIRFLOW_CONN_WAREHOUSE"] = json.dumps({"conn_type": "sqlite", "host": str(warehouse)})
        with FakeWolkvoxServer({"demo-token": "demo"}) as server:
            os.environ[CONN_ENV_VAR] = server.airflow_connection()
            for night in (1, 2):
                task = sync_contacts(state)
                task.render_template_fields({"params": {"country": "CO"}})
                summary = task.execute({"ti": TaskInstance()})
                print(f"night {night}: {summary}")
                # Night 1: two look-ups (query.php) and one insertMany call; night 2: nothing to do.
                expected = (2, 0, 3) if night == 1 else (0, 2, 0)
                assert (summary["created"], summary["unchanged"], summary["calls"]) == expected
            names = sorted(record["Nombre"] for record in server.records("contacts"))
            assert names == ["Ana Gómez", "Luis Pérez"], names


if __name__ == "__main__":
    main()
