"""Test DAGs: a bulk load whose first try dies mid-load (execution timeout), then an Airflow retry."""

from __future__ import annotations

from datetime import timedelta

import pendulum
from airflow.providers.common.compat.sdk import DAG

from airflow_provider_wolkvox.operators.insert import WolkvoxInsertManyOperator

RECORDS = [{"Nombre": f"Registro {n}", "Email": f"r{n}@example.com"} for n in range(50)]

for dag_id, dedupe_field in (("wolkvox_crash_resume", "Email"), ("wolkvox_crash_resume_no_dedupe", None)):
    with DAG(dag_id, schedule=None, start_date=pendulum.datetime(2026, 1, 1, tz="UTC"), catchup=False):
        WolkvoxInsertManyOperator(
            task_id="load",
            module="contacts",
            records=RECORDS,
            batch_size=10,
            max_in_flight=1,
            dedupe_field=dedupe_field,
            retries=1,
            retry_delay=timedelta(seconds=0),
            execution_timeout=timedelta(seconds=3),
        )
