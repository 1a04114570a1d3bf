"""Test DAGs of the re-run and crash tests: one bulk load from a JSONL file, run again and again.

The DAG run's conf names the input file, the results file and a pause marker. A try that finds no
marker at the marker path writes it after ``execute`` returned and then holds the task, before
Airflow records its success, so that a test can kill the task exactly there; a later try finds the
marker and goes on. Without a marker path no try pauses.
"""

from __future__ import annotations

import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import pendulum
from airflow.providers.common.compat.sdk import DAG

from airflow_provider_wolkvox.operators.insert import WolkvoxInsertManyOperator

#: How long the first try holds after ``execute``: far longer than any test waits to kill it.
PAUSE_SECONDS = 120
BATCH_SIZE = 50


class PausingInsertManyOperator(WolkvoxInsertManyOperator):
    """A bulk load whose first try holds between ``execute`` returning and Airflow recording success."""

    def post_execute(self, context: Any, result: Any = None) -> None:
        super().post_execute(context, result)
        marker = context["params"]["pause_marker"]
        if not marker or Path(marker).exists():
            return
        Path(marker).write_text("execute returned\n", encoding="utf-8")
        time.sleep(PAUSE_SECONDS)


for dag_id, dedupe_field in (("wolkvox_rerun", "Email"), ("wolkvox_rerun_no_dedupe", None)):
    with DAG(
        dag_id,
        schedule=None,
        start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
        catchup=False,
        params={"records_path": "", "results_path": "", "pause_marker": ""},
    ):
        PausingInsertManyOperator(
            task_id="load",
            module="contacts",
            records_path="{{ params.records_path }}",
            results_path="{{ params.results_path }}",
            batch_size=BATCH_SIZE,
            dedupe_field=dedupe_field,
            retries=1,
            retry_delay=timedelta(seconds=0),
        )
