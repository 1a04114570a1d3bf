"""Mapped load tasks sharing one token: a pool of 2 slots and one request in flight per task.

``docs/bulk-loads.md`` quotes the DAG; ``tests/test_docs.py`` runs this file against the embedded
fake CRM (``.venv/bin/python docs/samples/shared_token.py``), executing each mapped task's load as
its own operator, one after another (no scheduler here: the pool only matters under one).
The pool must exist first: ``airflow pools set wolkvox_crm0001 2 "wolkvox token of crm0001"``.
"""

from __future__ import annotations

import os
from typing import Any

import pendulum
from airflow.providers.common.compat.sdk import DAG, task

from airflow_provider_wolkvox.operators.insert import WolkvoxInsertManyOperator
from airflow_provider_wolkvox.testing import CONN_ENV_VAR, FakeWolkvoxServer

with DAG(
    dag_id="wolkvox_shared_token",
    schedule=None,
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
) as dag:

    @task
    def partitions(count: int = 4, size: int = 200) -> list[list[dict]]:
        leads = [{"Nombre": f"Lead {n}", "Email": f"lead{n}@example.com"} for n in range(count * size)]
        return [leads[start : start + size] for start in range(0, len(leads), size)]

    # At most 2 tasks of the token at once (the pool), each with 1 request in flight: the CRM's
    # limit of 2 simultaneous requests per token is kept across processes and workers.
    WolkvoxInsertManyOperator.partial(
        task_id="load_partition",
        module="leads",
        batch_size=100,
        pool="wolkvox_crm0001",
        max_in_flight=1,
    ).expand(records=partitions())


class TaskInstance:
    """Stands for a mapped task instance: its try number and its XComs."""

    try_number = 1

    def xcom_push(self, key: str, value: Any) -> None:
        pass


def main() -> None:
    with FakeWolkvoxServer({"sample-token": "sample"}) as server:
        os.environ[CONN_ENV_VAR] = server.airflow_connection()
        loaded = dag.get_task("load_partition")
        assert loaded.partial_kwargs["pool"] == "wolkvox_crm0001"
        for number, records in enumerate(partitions.function()):
            operator = WolkvoxInsertManyOperator(
                task_id=f"load_partition_{number}",
                module="leads",
                records=records,
                batch_size=100,
                max_in_flight=1,
            )
            operator.execute({"ti": TaskInstance()})  # type: ignore[arg-type]
        assert server.record_count("leads") == 800
        assert server.quota_used("sample-token") == 8, server.stats()
    print("shared token: 4 partitions of 200 leads loaded in 8 calls")


if __name__ == "__main__":
    main()
