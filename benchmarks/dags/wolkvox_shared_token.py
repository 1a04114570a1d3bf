"""The DAGs of ``benchmarks/shared_token.py``: four mapped loads on one token, in four configurations.

Each DAG loads the partitions written to the folder named by ``WOLKVOX_SHARED_TOKEN_DIR`` (the
benchmark sets it for every process of its scheduler stack): ``part-0.jsonl`` to ``part-3.jsonl``
mapped over four tasks, or ``all.jsonl`` in one task. The pools are made by the benchmark.
"""

from __future__ import annotations

import os

import pendulum
from airflow.providers.common.compat.sdk import DAG

from airflow_provider_wolkvox.operators.insert import WolkvoxInsertManyOperator

FOLDER = os.environ.get("WOLKVOX_SHARED_TOKEN_DIR", "/nonexistent")
TASKS = 4
MODULE = "contacts"
BATCH_SIZE = 100
#: dag_id: (pool, or None for the default pool; max_in_flight; one task for every record?).
CONFIGURATIONS = {
    "wolkvox_share_no_pool": (None, 2, False),
    "wolkvox_share_pool_2": ("wolkvox_share_2", 1, False),
    "wolkvox_share_pool_1": ("wolkvox_share_1", 2, False),
    "wolkvox_share_alone": (None, 2, True),
}

for dag_id, (pool, max_in_flight, alone) in CONFIGURATIONS.items():
    with DAG(dag_id, schedule=None, start_date=pendulum.datetime(2026, 1, 1, tz="UTC"), catchup=False):
        load = WolkvoxInsertManyOperator.partial(
            task_id="load",
            module=MODULE,
            batch_size=BATCH_SIZE,
            max_in_flight=max_in_flight,
            **({"pool": pool} if pool else {}),
        )
        paths = [f"{FOLDER}/all.jsonl"] if alone else [f"{FOLDER}/part-{n}.jsonl" for n in range(TASKS)]
        load.expand(records_path=paths)
