"""A bulk load run again in the same DAG run with ``airflow tasks test``: after a fix, a kill, a success.

The promise (issue 11): within one task instance, a record that was created is never sent again,
whatever the batch size or input order of the later try. The fake CRM has no unique field here, so
whatever is sent twice is stored twice, and its store shows it.
"""

from __future__ import annotations

import os
import random
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from airflow_provider_wolkvox import api
from airflow_provider_wolkvox.testing import CONN_ENV_VAR, FakeWolkvoxServer
from tests.airflow_processes import run_airflow
from tests.conftest import OPERATION, PROCESS_LOST_ANSWER_TIMEOUT, TOKEN
from tests.example_dags.airflow_runs import CLI_TIMEOUT, RERUN_TESTS, TaskTestRun
from tests.example_dags.records import (
    MODULE,
    LoadFiles,
    assert_stored_once,
    contacts,
    last_try,
    read_jsonl,
)

pytestmark = RERUN_TESTS

RECORDS = 2000
# 40 batches of 50 (the DAG's batch size), two in flight, 30 ms each: a load of a few seconds.
LATENCY = 0.03
SHUFFLE_SEED = 11
# The batch size of the DAGs in dags/wolkvox_reruns.py.
BATCH_SIZE = 50


@pytest.fixture(scope="session")
def serialized_dags(airflow_db: None, tmp_path_factory: pytest.TempPathFactory) -> None:
    """The session's DAG files in its metadata DB, where ``dags trigger`` and ``tasks test`` read them."""
    run_airflow(
        ["dags", "reserialize"], os.environ, tmp_path_factory.mktemp("reserialize") / "log", CLI_TIMEOUT
    )


@pytest.fixture
def crm(serialized_dags: None, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeWolkvoxServer]:
    with FakeWolkvoxServer({TOKEN: OPERATION}, latency=LATENCY) as server:
        monkeypatch.setenv(CONN_ENV_VAR, server.airflow_connection(timeout=PROCESS_LOST_ANSWER_TIMEOUT))
        yield server


@pytest.fixture
def files(tmp_path: Path) -> LoadFiles:
    return LoadFiles(tmp_path)


def new_run(
    request: pytest.FixtureRequest, files: LoadFiles, dag_id: str, records: list[dict], *, pause: bool = False
) -> TaskTestRun:
    """Write ``records`` to the input file and make a DAG run of ``dag_id``, named after the test."""
    files.write(records)
    run = TaskTestRun(dag_id, "load", request.node.name.replace("[", "-").rstrip("]"))
    run.trigger(files.conf(pause=pause))
    return run


def test_fix_a_rejected_row_and_clear_creates_nothing_twice(
    crm: FakeWolkvoxServer, files: LoadFiles, request: pytest.FixtureRequest
) -> None:
    records = contacts(RECORDS)
    bad = records[RECORDS // 2]
    bad["Notas"] = "x" * (api.MAX_TEXT_LENGTH + 1)  # the CRM refuses a text this long
    run = new_run(request, files, "wolkvox_rerun_no_dedupe", records)

    run.run()
    assert run.state() == "failed"
    assert crm.record_count(MODULE) == RECORDS - 1  # every record but the refused one
    # The user deletes the refused row and clears the task.
    records.remove(bad)
    files.write(records)
    run.run()

    assert_stored_once(crm, records, files.returned_ids(records))
    assert run.state() == "success"


def kill_mid_load_then_shuffle(
    crm: FakeWolkvoxServer, files: LoadFiles, request: pytest.FixtureRequest, dag_id: str
) -> tuple[TaskTestRun, list[dict]]:
    records = contacts(RECORDS)
    run = new_run(request, files, dag_id, records)

    run.run_killed(lambda: crm.record_count(MODULE) >= RECORDS // 2, "half of the records stored")
    assert 0 < crm.record_count(MODULE) < RECORDS, "the kill did not land mid-load"
    # The upstream task writes the same records again, in another order.
    random.Random(SHUFFLE_SEED).shuffle(records)
    files.write(records)
    run.run()
    return run, records


def test_kill_then_shuffled_input_creates_nothing_twice(
    crm: FakeWolkvoxServer, files: LoadFiles, request: pytest.FixtureRequest
) -> None:
    run, records = kill_mid_load_then_shuffle(crm, files, request, "wolkvox_rerun")

    assert_stored_once(crm, records, files.returned_ids(records))
    assert run.state() == "success"


def test_kill_then_shuffled_input_without_dedupe_field_names_the_records_in_flight(
    crm: FakeWolkvoxServer, files: LoadFiles, request: pytest.FixtureRequest
) -> None:
    run, records = kill_mid_load_then_shuffle(crm, files, request, "wolkvox_rerun_no_dedupe")

    # Records in flight at the kill cannot be recognised without a dedupe field: never sent again,
    # they are reported outcome_unknown, and the task fails naming them. Everything else once.
    results = last_try(read_jsonl(files.results_path))
    unknown = [records[row["line"] - 1]["Email"] for row in results if row["status"] == "outcome_unknown"]
    assert 0 < len(unknown) <= 2 * BATCH_SIZE  # at most the two requests in flight
    assert {row["status"] for row in results} == {"created", "outcome_unknown"}
    copies = Counter(record["Email"] for record in crm.records(MODULE))
    assert max(copies.values()) == 1
    assert set(copies) >= {record["Email"] for record in records} - set(unknown)
    stored = {record["Email"]: record["wolkvox_id"] for record in crm.records(MODULE)}
    returned = files.returned_ids(records)
    assert all(returned[email] == stored[email] for email in stored.keys() - set(unknown))
    assert run.state() == "failed"


def test_kill_after_execute_returned_then_rerun_creates_nothing_twice(
    crm: FakeWolkvoxServer, files: LoadFiles, request: pytest.FixtureRequest
) -> None:
    records = contacts(RECORDS)
    run = new_run(request, files, "wolkvox_rerun_no_dedupe", records, pause=True)

    run.run_killed(files.pause_marker.exists, "execute returned")
    assert crm.record_count(MODULE) == RECORDS
    run.run()

    assert_stored_once(crm, records, files.returned_ids(records))
    assert run.state() == "success"
