"""Every example DAG runs when triggered as a user triggers it: by hand, without a logical date.

Airflow 3 gives a DAG run triggered from the UI, the REST API or ``airflow dags trigger`` no logical
date unless one is given, so templates such as ``{{ ds }}`` are undefined there. Each file of
``example_dags/`` (but ``run_demo.py``) is linked into the package's scheduler stack (LocalExecutor),
each of its DAGs triggered through the REST API with ``logical_date`` null, as the UI does, and
every run must succeed; a person approves what a run asks them to approve.

The DAG files are linked in only now: a scheduled DAG (``example_wolkvox_sync`` is ``@daily``) gets a
run of its own as soon as it is parsed, and its manual run waits for that run's end, as two runs of
one sync sharing its files should not overlap.
"""

from __future__ import annotations

import re
from datetime import datetime, timezone
from importlib.metadata import version
from pathlib import Path
from typing import Any

import pytest
from packaging.version import Version

from airflow_provider_wolkvox.testing import FakeWolkvoxServer
from tests.airflow_processes import wait_for
from tests.example_dags.airflow_runs import FINISHED, RUN_TIMEOUT, SchedulerStack, api_time
from tests.example_dags.conftest import EXAMPLES

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(
        Version(version("apache-airflow")) < Version("3"),
        reason="runs without a logical date, and the api-server the stack needs, arrived in Airflow 3",
    ),
]

#: Every example DAG file, whatever exists when the test runs.
EXAMPLE_FILES = sorted(path for path in EXAMPLES.glob("*.py") if path.name != "run_demo.py")
RUN_ID = "triggered-by-hand"
ACTIVE = ("queued", "running")
#: Seconds for the dag-processor to find and parse the new files.
PARSE_TIMEOUT = 120.0


def parsed_dags(stack: SchedulerStack, files: list[Path]) -> dict[str, list[dict[str, Any]]] | None:
    """Each file's DAGs once every file is parsed; None before.

    :raises AssertionError: a file failed to import.
    """
    names = {path.name for path in files}
    errors = [error for error in stack.import_errors() if Path(error["filename"]).name in names]
    assert errors == [], "\n".join(f"{error['filename']}:\n{error['stack_trace']}" for error in errors)
    by_file: dict[str, list[dict[str, Any]]] = {name: [] for name in names}
    for dag in stack.dags():
        if Path(dag["fileloc"]).name in names:
            by_file[Path(dag["fileloc"]).name].append(dag)
    return by_file if all(by_file.values()) else None


def settled(dag: dict[str, Any], runs: list[dict[str, Any]]) -> bool:
    """Whether the DAG has no run due that the scheduler has yet to make, and no run queued or running."""
    due = dag["next_dagrun_run_after"]
    if due is not None and api_time(due) <= datetime.now(timezone.utc):
        return False
    return not any(run["dag_id"] == dag["dag_id"] and run["state"] in ACTIVE for run in runs)


def test_every_example_dag_succeeds_when_triggered_without_a_logical_date(
    stack: SchedulerStack, empty_crm: FakeWolkvoxServer
) -> None:
    assert EXAMPLE_FILES, "no example DAG found"
    stack.add_dag_files(EXAMPLE_FILES)
    by_file = wait_for(
        lambda: parsed_dags(stack, EXAMPLE_FILES),
        PARSE_TIMEOUT,
        "every example DAG file parsed",
        logs=stack.log_tails,
        interval=1,
    )
    dag_ids = sorted(dag["dag_id"] for dags in by_file.values() for dag in dags)

    # Trigger each DAG once it has no run of its own going (a scheduled DAG runs when parsed).
    untriggered = set(dag_ids)

    def trigger_the_settled() -> bool:
        runs = stack.dag_runs_of_every_dag()
        for dag in stack.dags():
            if dag["dag_id"] in untriggered and settled(dag, runs):
                stack.trigger(dag["dag_id"], RUN_ID, {})  # "logical_date": null
                untriggered.discard(dag["dag_id"])
        return not untriggered

    wait_for(
        trigger_the_settled, RUN_TIMEOUT, "every example DAG triggered", logs=stack.log_tails, interval=1
    )

    # A person approves what a run asks them to approve (human-in-the-loop tasks, Airflow 3.1+).
    def ended() -> dict[str, str] | None:
        stack.approve_waiting()
        states = {
            run["dag_id"]: run["state"]
            for run in stack.dag_runs_of_every_dag()
            if run["dag_run_id"] == RUN_ID
        }
        return states if all(state in FINISHED for state in states.values()) else None

    states = wait_for(ended, RUN_TIMEOUT, "every triggered run ended", logs=stack.log_tails, interval=1)
    assert sorted(states) == dag_ids
    failed = [dag_id for dag_id, state in states.items() if state != "success"]
    assert failed == [], "\n".join(stack.task_logs(dag_id, RUN_ID) for dag_id in failed)

    # The runs these started (the asset consumer's) end too, so that the stack is left idle.
    def others_ended() -> list[dict[str, Any]] | None:
        runs = [run for run in stack.dag_runs_of_every_dag() if run["dag_id"] in states]
        return None if any(run["state"] in ACTIVE for run in runs) else runs

    runs = wait_for(
        others_ended, RUN_TIMEOUT, "every example DAG run ended", logs=stack.log_tails, interval=1
    )
    assert sorted(
        (run["dag_id"], run["run_type"], run["logical_date"]) for run in runs if run["dag_run_id"] == RUN_ID
    ) == [(dag_id, "manual", None) for dag_id in dag_ids]
    assert [
        (run["dag_id"], run["dag_run_id"], run["state"]) for run in runs if run["state"] != "success"
    ] == []
    # The insert's sign-up date is a date, without a logical date too.
    dates = [record["Fecha de alta"] for record in empty_crm.records("contacts") if "Fecha de alta" in record]
    assert dates
    assert [date for date in dates if not re.fullmatch(r"\d{4}-\d{2}-\d{2}", date)] == []
