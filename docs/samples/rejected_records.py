"""Rejected records found in the results file, fixed in the source and sent again by a later try.

``docs/bulk-loads.md`` quotes it; ``tests/test_docs.py`` runs it against the embedded fake CRM:
``.venv/bin/python docs/samples/rejected_records.py``.
"""

from __future__ import annotations

import csv
import json
import os
import tempfile
from pathlib import Path
from typing import Any

from airflow_provider_wolkvox.operators.insert import WolkvoxInsertManyOperator
from airflow_provider_wolkvox.testing import CONN_ENV_VAR, FakeWolkvoxServer

FAILED = {"rejected", "outcome_unknown", "not_sent", "ambiguous"}


def failed_in_last_try(results_path: str) -> list[dict]:
    """The results lines of the records that the task's last try did not write."""
    with open(results_path, encoding="utf-8") as handle:
        lines = [json.loads(line) for line in handle]
    last = max((line["try"] for line in lines), default=None)
    return [line for line in lines if line["try"] == last and line["status"] in FAILED]


class TaskStateStore(dict):
    """Stands for Airflow's task state store (3.3+), which keeps the load's journal across tries."""

    def set(self, key: str, value: Any) -> None:
        self[key] = value


class TaskInstance:
    """Stands for the task instance of a DAG run: its try number, and its XComs."""

    def __init__(self, try_number: int) -> None:
        self.try_number = try_number
        self.xcom: dict[str, Any] = {}

    def xcom_push(self, key: str, value: Any) -> None:
        self.xcom[key] = value


def write_contacts(path: Path, emails: list[str]) -> None:
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["Nombre", "Email"])
        writer.writerows([f"Contacto {n}", email] for n, email in enumerate(emails))


def main() -> None:
    with tempfile.TemporaryDirectory() as folder:
        fix_and_send_again(Path(folder))


def fix_and_send_again(folder: Path) -> None:
    source, results = folder / "contacts.csv", str(folder / "contacts.results.jsonl")
    emails = ["ana@example.com", "luis@example.com", "ana@example.com", "eva@example.com"]
    write_contacts(source, emails)  # line 4 repeats line 2's e-mail
    load = WolkvoxInsertManyOperator(
        task_id="load_contacts",
        module="contacts",
        records_path=str(source),
        results_path=results,
        dedupe_field="Email",
        max_failed_records=10,
    )
    store = TaskStateStore()
    with FakeWolkvoxServer({"demo-token": "demo"}, unique_fields={"contacts": ["Email"]}) as server:
        os.environ[CONN_ENV_VAR] = server.airflow_connection()
        first = TaskInstance(try_number=1)
        load.execute({"ti": first, "task_state_store": store})
        [rejected] = failed_in_last_try(results)
        assert (rejected["line"], rejected["key"], rejected["status"]) == (4, "ana@example.com", "rejected")
        assert first.xcom["failed_records"] == [rejected]

        emails[rejected["line"] - 2] = "ana.maria@example.com"  # the fix, in the source
        write_contacts(source, emails)
        calls = server.calls()
        load.execute({"ti": TaskInstance(try_number=2), "task_state_store": store})  # the task cleared
        assert failed_in_last_try(results) == []
        assert server.calls() == calls + 1  # only the fixed record was sent again
        stored = sorted(record["Email"] for record in server.records("contacts"))
    assert stored == sorted(emails)
    with open(results, encoding="utf-8") as handle:
        assert rejected in [json.loads(line) for line in handle]  # try 1's lines are still there
    print(f"line {rejected['line']} rejected by try 1, fixed and created by try 2; {len(stored)} contacts")


if __name__ == "__main__":
    main()
