"""Insert several records with one mapped task per record and collect their ids downstream.

An upstream ``@task`` extracts the records (here a fixed list standing for a warehouse query); the
insert is mapped over them with ``.partial().expand()``; a downstream task receives every id.
For large loads prefer ``WolkvoxInsertManyOperator``: it batches records into few API calls.
"""

from __future__ import annotations

import datetime
from decimal import Decimal

import pendulum
from airflow.providers.common.compat.sdk import DAG, task

from airflow_provider_wolkvox.operators.insert import WolkvoxInsertOperator

with DAG(
    dag_id="example_wolkvox_mapped_insert",
    schedule=None,
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    tags=["example", "wolkvox"],
) as dag:

    @task
    def extract_leads() -> list[dict]:
        return [
            {"Nombre": "Luis Pérez", "Email": "luis@example.com", "Valor": Decimal("1750905.50")},
            {"Nombre": "Marta Ruiz", "Email": "marta@example.com", "Valor": 6700},
            {
                "Nombre": "Sofía Díaz",
                "Email": "sofia@example.com",
                "Contactar el": datetime.datetime(2026, 12, 1, 9, 30),
            },
        ]

    inserted = WolkvoxInsertOperator.partial(task_id="insert_lead", module="leads").expand(
        fields=extract_leads()
    )

    @task
    def report(wolkvox_ids: list[str]) -> list[str]:
        ids = list(wolkvox_ids[:])  # a slice reads every mapped result in one query
        print(f"inserted {len(ids)} leads: {ids}")
        return ids

    report(inserted.output)
