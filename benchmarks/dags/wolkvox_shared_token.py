"""The DAGs of ``benchmarks/shared_token.py``: mapped loads on one token, in four configurations.

Each DAG loads the partitions written to the folder named by ``WOLKVOX_SHARED_TOKEN_DIR`` (the
benchmark sets it for every process of its scheduler stack): ``part-0.jsonl`` to ``part-3.jsonl``
mapped over four tasks, or ``all.jsonl`` in one task. The benchmark makes the pools.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import pendulum
from airflow.providers.common.compat.sdk import DAG

from airflow_provider_wolkvox.operators.insert import WolkvoxInsertManyOperator

FOLDER_VARIABLE = "WOLKVOX_SHARED_TOKEN_DIR"
# Unset, every task fails naming this path.
FOLDER = os.environ.get(FOLDER_VARIABLE, f"<{FOLDER_VARIABLE} is not set>")
TASKS = 4
MODULE = "contacts"
BATCH_SIZE = 100


@dataclass(frozen=True)
class Sharing:
    """One way for the tasks to share the token: one DAG."""

    dag_id: str
    label: str
    max_in_flight: int
    pool: str | None = None  # None: the default pool, which holds them all
    pool_slots: int = 0
    alone: bool = False  # one task loads every partition's records

    @property
    def name(self) -> str:
        return f"{self.label}, max_in_flight={self.max_in_flight}"


SHARINGS = (
    Sharing("wolkvox_share_no_pool", "no pool", 2),
    Sharing("wolkvox_share_pool_2", "pool of 2 slots", 1, "wolkvox_share_2", 2),
    Sharing("wolkvox_share_pool_1", "pool of 1 slot", 2, "wolkvox_share_1", 1),
    Sharing("wolkvox_share_alone", "one task alone", 2, alone=True),
)

START = pendulum.datetime(2026, 1, 1, tz="UTC")

for sharing in SHARINGS:
    with DAG(sharing.dag_id, schedule=None, start_date=START, catchup=False):
        load = WolkvoxInsertManyOperator.partial(
            task_id="load",
            module=MODULE,
            batch_size=BATCH_SIZE,
            max_in_flight=sharing.max_in_flight,
            **({"pool": sharing.pool} if sharing.pool else {}),
        )
        parts = ["all"] if sharing.alone else [f"part-{n}" for n in range(TASKS)]
        load.expand(records_path=[f"{FOLDER}/{part}.jsonl" for part in parts])
