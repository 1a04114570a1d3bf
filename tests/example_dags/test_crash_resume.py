"""A bulk load dies mid-load (execution timeout while a batch is in flight); Airflow retries the task.

On Airflow 3.3+ the operator's journal in the task state store lets the retry skip the batches the
first try settled and settle the in-flight one without sending it blindly again.
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


def test_retry_resumes_without_duplicates_and_returns_every_id(fake_crm: FakeWolkvoxServer) -> None:
    crash_on_third_batch(fake_crm)
    outcome = run_dag("wolkvox_crash_resume", DAG_FILE)

    assert outcome.state == "success"
    stored = fake_crm.records("contacts")
    assert len(stored) == RECORDS
    by_email = {record["Email"]: record["wolkvox_id"] for record in stored}
    assert len(by_email) == RECORDS
    [ids] = outcome.values_of("load")
    assert ids == [by_email[f"r{n}@example.com"] for n in range(RECORDS)]
    batches = [entry for entry in fake_crm.request_log if entry.path == api.INSERT_MANY_PATH]
    # 3 in the first try; the retry sends only batches 4 and 5 (batches 1-2 were journalled as
    # settled, batch 3 was found in the CRM by its e-mails).
    assert len(batches) == 5
    assert fake_crm.calls(api.QUERY_PATH) == 10


def test_retry_without_dedupe_field_names_the_in_flight_records(fake_crm: FakeWolkvoxServer) -> None:
    crash_on_third_batch(fake_crm)
    outcome = run_dag("wolkvox_crash_resume_no_dedupe", DAG_FILE)

    assert outcome.state == "failed"
    stored = fake_crm.records("contacts")
    assert len(stored) == RECORDS  # batch 3 was stored by the first try and not sent again
    assert len({record["Email"] for record in stored}) == RECORDS
    assert fake_crm.calls(api.INSERT_MANY_PATH) == 5
    failed = outcome.xcom("load", "failed_records")
    assert [f["index"] for f in failed] == list(range(20, 30))
    assert {f["status"] for f in failed} == {"outcome_unknown"}
    assert all("earlier try" in f["msg"] for f in failed)
