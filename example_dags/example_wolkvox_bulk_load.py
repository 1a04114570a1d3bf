"""Extract rows to a CSV file, bulk-load them with WolkvoxInsertManyOperator, report the counts.

The load streams the file in batches of ``batch_size`` records per API call, at most two calls in
flight (the CRM's limit per token), and writes one result line per record to ``results_path``.
One row repeats an e-mail: where the CRM marks ``Email`` as unique it is rejected, the others are
created, and the task stays green because ``max_failed_records`` allows it.
"""

from __future__ import annotations

import csv
import tempfile
from pathlib import Path

import pendulum
from airflow.providers.common.compat.sdk import DAG, XComArg, task

from airflow_provider_wolkvox.operators.insert import WolkvoxInsertManyOperator

ROWS = 250

with DAG(
    dag_id="example_wolkvox_bulk_load",
    schedule=None,
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    tags=["example", "wolkvox"],
) as dag:

    @task
    def extract_contacts(run_id: str | None = None) -> str:
        """Stands for a warehouse export: writes the rows to a CSV file and returns its path."""
        path = Path(tempfile.gettempdir()) / f"wolkvox_contacts_{abs(hash(run_id))}.csv"
        with path.open("w", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle)
            writer.writerow(["Nombre", "Email", "Ciudad"])
            for n in range(ROWS):
                writer.writerow([f"Contacto {n}", f"contacto{n}@example.com", "Medellín"])
            writer.writerow(["Contacto repetido", "contacto7@example.com", "Cali"])
        return str(path)

    csv_path = extract_contacts()
    load = WolkvoxInsertManyOperator(
        task_id="load_contacts",
        module="contacts",
        records_path=csv_path,
        results_path="{{ ti.xcom_pull(task_ids='extract_contacts') }}.results.jsonl",
        batch_size=50,
        max_failed_records=10,
        dedupe_field="Email",
    )

    @task
    def report(summary: dict, failed_records: list[dict]) -> dict:
        print(f"created {summary['created']}, rejected {summary['rejected']} of {summary['total']} rows")
        for failure in failed_records:
            print(f"  line {failure['line']}: {failure['status']} {failure.get('msg')}")
        return {"created": summary["created"], "rejected": summary["rejected"]}

    report(load.output, XComArg(load, key="failed_records"))
