"""Load records in parallel chunks: WolkvoxInsertManyOperator mapped over chunks of rows.

Each mapped task loads one chunk with batched calls. Several tasks at once would exceed the CRM's
limit of two requests in flight per token, so in a real deployment give them a pool of 2 slots
per token (``airflow pools set wolkvox_crm0001 2 "wolkvox token"``) and ``pool="wolkvox_crm0001",
max_in_flight=1`` in ``partial()``, as docs/bulk-loads.md explains with the measured figures: the
hook's gate holds only one task's own threads, and every Airflow task runs in a process of its own.
"""

from __future__ import annotations

import pendulum
from airflow.providers.common.compat.sdk import DAG, task

from airflow_provider_wolkvox.operators.insert import WolkvoxInsertManyOperator

with DAG(
    dag_id="example_wolkvox_chunked_load",
    schedule=None,
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    tags=["example", "wolkvox"],
) as dag:

    @task
    def chunk_leads(chunk_size: int = 40) -> list[list[dict]]:
        leads = [
            {"Nombre": f"Lead {n}", "Email": f"lead{n}@example.com", "Fuente": "web"} for n in range(100)
        ]
        return [leads[start : start + chunk_size] for start in range(0, len(leads), chunk_size)]

    loaded = WolkvoxInsertManyOperator.partial(task_id="load_chunk", module="leads", batch_size=20).expand(
        records=chunk_leads()
    )

    @task
    def collect(ids_per_chunk: list[list[str]]) -> int:
        ids = [wolkvox_id for chunk in ids_per_chunk[:] for wolkvox_id in chunk]
        print(f"loaded {len(ids)} leads in {len(ids_per_chunk)} chunks")
        return len(ids)

    collect(loaded.output)
