"""A nightly sync of a CSV export into the CRM's contacts, keyed on the e-mail, with a sync state file.

The upstream task stands for a warehouse export. ``WolkvoxUpsertOperator`` creates the contacts the
CRM does not hold, updates only the changed fields of those it does, and keeps a sync state: the
next night, records unchanged since cost no call at all, and keys the state knows need no look-up.
Run it twice: the second run's summary says every record is ``unchanged``, with 0 calls.
"""

from __future__ import annotations

import csv
import tempfile
from pathlib import Path

import pendulum
from airflow.providers.common.compat.sdk import DAG, Param, task

from airflow_provider_wolkvox.operators.upsert import WolkvoxUpsertOperator

CONTACTS = 300

with DAG(
    dag_id="example_wolkvox_sync",
    schedule="@daily",
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    params={"state_dir": Param(tempfile.gettempdir(), type="string")},
    tags=["example", "wolkvox"],
) as dag:

    @task
    def export_contacts(params: dict | None = None) -> str:
        """Stands for the warehouse export: the same contacts every night, unless they changed."""
        path = Path((params or {})["state_dir"]) / "wolkvox_contacts_export.csv"
        with path.open("w", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle)
            writer.writerow(["Email", "Nombre", "Ciudad"])
            for n in range(CONTACTS):
                writer.writerow([f"cliente{n}@example.com", f"Cliente {n}", "Medellín" if n % 2 else "Cali"])
        return str(path)

    sync = WolkvoxUpsertOperator(
        task_id="sync_contacts",
        module="contacts",
        key_field="Email",
        records_path=export_contacts(),
        state_path="{{ params.state_dir }}/contacts.sync-state.jsonl",
        results_path="{{ params.state_dir }}/contacts.sync-results.jsonl",
    )

    @task
    def report(summary: dict) -> dict:
        counts = {status: summary[status] for status in ("created", "updated", "unchanged", "skipped")}
        print(f"synced {summary['total']} contacts: {counts}, {summary['calls']} API calls")
        return {**counts, "calls": summary["calls"]}

    report(sync.output)
