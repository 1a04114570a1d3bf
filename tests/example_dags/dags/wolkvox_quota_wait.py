"""Test DAG: a load larger than the token's quota, which waits for the quota to restart and goes on."""

from __future__ import annotations

from datetime import timedelta

import pendulum
from airflow.providers.common.compat.sdk import DAG

from airflow_provider_wolkvox.operators.insert import WolkvoxInsertManyOperator

with DAG(
    "wolkvox_quota_wait",
    schedule=None,
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    params={"conn_id": "wolkvox_default", "records_path": "", "results_path": ""},
):
    WolkvoxInsertManyOperator(
        task_id="load",
        module="contacts",
        records_path="{{ params.records_path }}",
        results_path="{{ params.results_path }}",
        wolkvox_conn_id="{{ params.conn_id }}",
        batch_size=100,
        dedupe_field="Email",
        on_quota_exhausted="wait",
        max_wait=timedelta(minutes=10),
    )
