"""A load larger than the day's quota, under dag.test(): it defers until the quota restarts, then goes on."""

from __future__ import annotations

import datetime
import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from airflow_provider_wolkvox import api
from airflow_provider_wolkvox.testing import CONN_ENV_VAR, FakeWolkvoxServer
from example_dags.run_demo import run_dag
from tests.conftest import OPERATION, TOKEN

pytestmark = pytest.mark.e2e

RECORDS = 2000  # 20 batches: three "days" of 9 batches, two waits
QUOTA = 10  # calls a "day"
DAY = 2.0  # seconds


@pytest.fixture
def small_quota(airflow_db: None, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeWolkvoxServer]:
    with FakeWolkvoxServer({TOKEN: OPERATION}, quota=QUOTA, quota_period=DAY) as server:
        monkeypatch.setenv(CONN_ENV_VAR, server.airflow_connection())
        yield server


def test_a_load_of_many_days_of_quota_finishes_by_waiting_for_each_restart(
    small_quota: FakeWolkvoxServer, tmp_path: Path
) -> None:
    records = [{"Nombre": f"Registro {n}", "Email": f"q{n}@example.com"} for n in range(RECORDS)]
    records_path, results_path = tmp_path / "records.jsonl", tmp_path / "results.jsonl"
    records_path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    conf = {"records_path": str(records_path), "results_path": str(results_path)}

    outcome = run_dag("wolkvox_quota_wait", "wolkvox_quota_wait.py", run_conf=conf)

    assert outcome.state == "success"
    assert outcome.task_states[("load", -1)] == "success"
    stored = small_quota.records("contacts")
    by_email = {record["Email"]: record["wolkvox_id"] for record in stored}
    assert len(by_email) == len(stored) == RECORDS  # every record once
    results = [json.loads(line) for line in results_path.read_text().splitlines()]
    # Each once, in input order: the run after each wait replaced the lines its try wrote before it.
    assert [(row["line"], row["try"]) for row in results] == [(n + 1, 1) for n in range(RECORDS)]
    assert [row["wolkvox_id"] for row in results] == [by_email[r["Email"]] for r in records]
    # One deferral per exhausted quota: each run but the last used its whole day (one call reads
    # the quota, the others send batches), and the CRM never had to refuse a call for the quota.
    waits = outcome.xcom("load", "quota_waits")
    assert small_quota.calls(api.INSERT_MANY_PATH) == RECORDS // 100
    assert small_quota.calls(api.TOKEN_INFO_PATH) == len(waits) + 1
    assert len(waits) >= -(-(RECORDS // 100) // (QUOTA - 1)) - 1
    done = [wait["records_done"] for wait in waits]
    # Never backwards; on a slow machine a "day" may end during a run, and the next run then finds
    # the new day's quota spent already and waits again without progress.
    assert done == sorted(done)
    assert 0 < done[0] <= done[-1] < RECORDS
    assert all(wait["calls_left_to_make"] == -(-(RECORDS - wait["records_done"]) // 100) for wait in waits)
    for wait in waits:
        waited = datetime.datetime.fromisoformat(wait["until"]) - datetime.datetime.fromisoformat(wait["at"])
        assert datetime.timedelta(0) < waited <= datetime.timedelta(seconds=DAY + 2)
    assert not any(entry.msg == api.MSG_QUOTA_EXCEEDED for entry in small_quota.request_log)
