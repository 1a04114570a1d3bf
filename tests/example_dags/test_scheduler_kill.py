"""A bulk load under a real scheduler whose task process is killed with SIGKILL; Airflow retries it.

One scheduler stack (LocalExecutor, sqlite) serves the module; the fake CRM runs here, on loopback.
The test DAGs have ``retries=1``: every record must end in the store exactly once after the retry.
"""

from __future__ import annotations

import os
import random
from collections.abc import Iterator
from pathlib import Path

import pytest

from airflow_provider_wolkvox.testing import CONN_ENV_VAR, FakeWolkvoxServer
from tests.conftest import OPERATION, REPO_ROOT, TOKEN
from tests.example_dags.airflow_runs import RERUN_TESTS, SchedulerStack, kill_when
from tests.example_dags.records import MODULE, LoadFiles, assert_stored_once, contacts

pytestmark = [*RERUN_TESTS, pytest.mark.scheduler]

DAG_FILE = REPO_ROOT / "tests" / "example_dags" / "dags" / "wolkvox_reruns.py"
RECORDS = 2000
LATENCY = 0.03
#: Set it to replay the kill moments of an earlier session.
SEED_VARIABLE = "WOLKVOX_KILL_SEED"


@pytest.fixture(scope="module")
def crm() -> Iterator[FakeWolkvoxServer]:
    """One fake CRM for the stack, whose processes are pointed at it once; emptied before each test."""
    with FakeWolkvoxServer({TOKEN: OPERATION}, latency=LATENCY) as server:
        yield server


@pytest.fixture(scope="module")
def stack(crm: FakeWolkvoxServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[SchedulerStack]:
    home = tmp_path_factory.mktemp("airflow-scheduler-home")
    with SchedulerStack(home, [DAG_FILE], {CONN_ENV_VAR: crm.airflow_connection()}) as running:
        yield running


@pytest.fixture
def empty_crm(crm: FakeWolkvoxServer, stack: SchedulerStack) -> Iterator[FakeWolkvoxServer]:
    crm.reset()
    yield crm
    print(stack.log_tails())  # shown when the test failed


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
