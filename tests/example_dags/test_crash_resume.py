"""A bulk load times out mid-load (execution timeout while a batch is in flight); Airflow retries the task.

The timed-out try still waits for the answer of the batch in flight and notes it in the journal, so
the retry (Airflow 3.3+, the task state store) sends only the batches never sent. A kill that gives
the try no such chance is tested in test_reruns.py and test_scheduler_kill.py.
"""

from __future__ import annotations

import pytest

from airflow_provider_wolkvox import api
from airflow_provider_wolkvox.testing import FakeWolkvoxServer, Fault
from example_dags.run_demo import run_dag

pytestmark = pytest.mark.e2e

DAG_FILE = "wolkvox_crash_resume.py"
RECORDS = 50


def crash_on_third_batch(server: FakeWolkvoxServer) -> None:
    # The third batch is stored, but its answer comes after the task's 3 s execution timeout.
    server.inject(Fault.SLOW, path=api.INSERT_MANY_PATH, after=2, delay=5)


@pytest.mark.parametrize("dag_id", ["wolkvox_crash_resume", "wolkvox_crash_resume_no_dedupe"])
def test_retry_resumes_without_duplicates_and_returns_every_id(
    fake_crm: FakeWolkvoxServer, dag_id: str
) -> None:
    crash_on_third_batch(fake_crm)
    outcome = run_dag(dag_id, DAG_FILE)

    assert outcome.state == "success"
    stored = fake_crm.records("contacts")
    assert len(stored) == RECORDS
    by_email = {record["Email"]: record["wolkvox_id"] for record in stored}
    assert len(by_email) == RECORDS
    [ids] = outcome.values_of("load")
    assert ids == [by_email[f"r{n}@example.com"] for n in range(RECORDS)]
    batches = [entry for entry in fake_crm.request_log if entry.path == api.INSERT_MANY_PATH]
    # 3 in the first try (the third answered after the timeout, and noted); the retry sends only
    # batches 4 and 5, and has nothing to look up.
    assert [entry.record_count for entry in batches] == [10] * 5
    assert fake_crm.calls(api.QUERY_PATH) + fake_crm.calls(api.QUERY_DATES_PATH) == 0
    assert outcome.task_states[("load", -1)] == "success"
