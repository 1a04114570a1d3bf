"""Bulk loads under a real scheduler: a task process killed with SIGKILL (Airflow retries it), and a
load that waits for the quota in the ``deferred`` state (the triggerer resumes it).

One scheduler stack (LocalExecutor, sqlite, triggerer; the ``stack`` fixture of ``conftest.py``,
shared with ``test_triggered.py``) serves the module; the fake CRMs run here, on loopback. The kill
DAGs have ``retries=1``: every record must end in the store exactly once.
"""

from __future__ import annotations

import os
import random
from pathlib import Path

import pytest

from airflow_provider_wolkvox.testing import FakeWolkvoxServer
from tests.airflow_processes import wait_for
from tests.example_dags.airflow_runs import RERUN_TESTS, SchedulerStack, kill_when
from tests.example_dags.records import MODULE, LoadFiles, assert_stored_once, contacts

pytestmark = [*RERUN_TESTS, pytest.mark.scheduler]

RECORDS = 2000
#: Set it to replay the kill moments of an earlier session.
SEED_VARIABLE = "WOLKVOX_KILL_SEED"


@pytest.fixture(scope="module")
def seed() -> int:
    return int(os.environ.get(SEED_VARIABLE) or random.SystemRandom().randrange(2**32))


def start_load(stack: SchedulerStack, dag_id: str, run_id: str, files: LoadFiles) -> list[dict]:
    """Trigger a load of ``RECORDS`` records whose first try pauses after ``execute``; return them."""
    records = contacts(RECORDS)
    files.write(records)
    stack.trigger(dag_id, run_id, files.conf(pause=True))
    return records


def assert_retried_to_success(stack: SchedulerStack, dag_id: str, run_id: str) -> None:
    assert stack.wait_for_end(dag_id, run_id) == "success"
    assert stack.task_instance(dag_id, run_id, "load")["try_number"] == 2


def test_kill_after_execute_returned_then_retry_creates_nothing_twice(
    stack: SchedulerStack, empty_crm: FakeWolkvoxServer, tmp_path: Path
) -> None:
    dag_id, run_id = "wolkvox_rerun_no_dedupe", "kill-after-execute"
    files = LoadFiles(tmp_path)
    records = start_load(stack, dag_id, run_id, files)

    task = stack.task_process(dag_id, run_id, "load")
    kill_when(task, files.pause_marker.exists, "execute returned", stack.log_tails)
    assert empty_crm.record_count(MODULE) == RECORDS
    assert_retried_to_success(stack, dag_id, run_id)

    assert_stored_once(empty_crm, records, files.returned_ids(records))


@pytest.mark.parametrize("moment", ["random", "last_record"])
def test_kill_at_any_moment_then_retry_creates_each_record_once(
    stack: SchedulerStack, empty_crm: FakeWolkvoxServer, tmp_path: Path, seed: int, moment: str
) -> None:
    dag_id, run_id = "wolkvox_rerun", f"kill-at-{moment}"
    # The kill comes once the fake has stored this many records (or once execute returned).
    stored = RECORDS if moment == "last_record" else random.Random(seed).randint(1, RECORDS - 1)
    print(f"killing the task once {stored} of {RECORDS} records are stored ({SEED_VARIABLE}={seed})")
    files = LoadFiles(tmp_path)
    records = start_load(stack, dag_id, run_id, files)

    task = stack.task_process(dag_id, run_id, "load")
    kill_when(
        task,
        lambda: empty_crm.record_count(MODULE) >= stored or files.pause_marker.exists(),
        f"{stored} records stored",
        stack.log_tails,
    )
    files.pause_marker.touch()  # the retry does not pause
    assert_retried_to_success(stack, dag_id, run_id)

    assert_stored_once(empty_crm, records, files.returned_ids(records))


def test_a_load_waiting_for_the_quota_is_deferred_then_resumed_by_the_triggerer(
    stack: SchedulerStack, quota_crm: FakeWolkvoxServer, tmp_path: Path
) -> None:
    # 1,000 records in batches of 100: 10 calls, of a quota of 5 a day (one reads the quota).
    quota_crm.reset()
    records = contacts(1000)
    files = LoadFiles(tmp_path)
    files.write(records)
    dag_id, run_id = "wolkvox_quota_wait", "quota-wait"
    stack.trigger(
        dag_id,
        run_id,
        {
            "conn_id": "wolkvox_quota",
            "records_path": str(files.records_path),
            "results_path": str(files.results_path),
        },
    )

    states = set()

    def deferred() -> bool:
        states.add(stack.task_instance(dag_id, run_id, "load")["state"])
        return "deferred" in states

    wait_for(deferred, 120, "the load deferred for the quota", logs=stack.log_tails)
    stored_while_waiting = quota_crm.record_count(MODULE)
    assert 0 < stored_while_waiting < len(records)
    assert stack.wait_for_end(dag_id, run_id) == "success"

    assert_stored_once(quota_crm, records, files.returned_ids(records))
    instance = stack.task_instance(dag_id, run_id, "load")
    assert (instance["state"], instance["try_number"]) == ("success", 1)  # waited, not retried


def test_a_dag_scheduled_on_the_module_runs_after_a_load_and_reads_its_counts(
    stack: SchedulerStack, empty_crm: FakeWolkvoxServer
) -> None:
    stack.trigger("example_wolkvox_asset_producer", "asset-load", {})
    assert stack.wait_for_end("example_wolkvox_asset_producer", "asset-load") == "success"

    consumer = "example_wolkvox_asset_consumer"
    [run] = wait_for(lambda: stack.dag_runs(consumer), 120, "a run of the consumer DAG", logs=stack.log_tails)
    assert run["run_type"] == "asset_triggered"
    assert stack.wait_for_end(consumer, run["dag_run_id"]) == "success"
    assert stack.xcom(consumer, run["dag_run_id"], "arrivals") == {"created": 20, "rejected": 0}
    assert empty_crm.record_count(MODULE) == 20


def test_the_readme_way_clears_the_journal_of_a_task_instance(
    stack: SchedulerStack, empty_crm: FakeWolkvoxServer, tmp_path: Path
) -> None:
    dag_id, run_id = "wolkvox_rerun_no_dedupe", "clear-state"
    files = LoadFiles(tmp_path)
    records = start_load(stack, dag_id, run_id, files)
    files.pause_marker.touch()  # no pause after execute
    assert stack.wait_for_end(dag_id, run_id) == "success"
    state = f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances/load/state-store"
    assert stack.rest("GET", state).json()["total_entries"] > 0  # the journal's notes

    # docs/retries-and-crash-safety.md, "Sending the same records again on purpose":
    # DELETE .../taskInstances/<task_id>/state-store
    assert stack.rest("DELETE", state).status_code == 204
    assert stack.rest("GET", state).json()["total_entries"] == 0
    assert empty_crm.record_count(MODULE) == len(records)
