"""``example_wolkvox_sync_plan_apply``: it parses on the installed Airflow, and, run with ``dag.test()``
and ``approval="auto"``, its apply makes exactly the write calls its plan predicted, or is skipped
when the plan deletes too much."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from airflow_provider_wolkvox import api
from airflow_provider_wolkvox.testing import FakeWolkvoxServer
from example_dags.run_demo import run_dag

DAG_ID = "example_wolkvox_sync_plan_apply"
WRITES = (api.INSERT_PATH, api.INSERT_MANY_PATH, api.UPDATE_PATH, api.DELETE_PATH)


def test_the_plan_apply_dag_parses() -> None:
    try:  # Airflow 3
        from airflow.dag_processing.dagbag import DagBag
    except ImportError:  # Airflow 2.11
        from airflow.models.dagbag import DagBag

    try:
        from airflow.providers.standard.operators.hitl import ApprovalOperator  # noqa: F401

        human = True
    except Exception:  # not installed, or Airflow before 3.1
        human = False
    bag = DagBag(dag_folder=str(Path(os.environ["AIRFLOW__CORE__DAGS_FOLDER"]) / f"{DAG_ID}.py"))

    assert bag.import_errors == {}
    dag = bag.dags[DAG_ID]  # as parsed (get_dag reads the metadata DB)
    expected = {"export_contacts", "plan", "choose_approval", "check_plan", "apply"}
    assert set(dag.task_ids) == expected | ({"approve"} if human else set())
    assert dag.params["approval"] == ("human" if human else "auto")


def writes(server: FakeWolkvoxServer) -> int:
    return sum(server.calls(path) for path in WRITES)


@pytest.mark.e2e
def test_the_plan_predicts_the_apply_s_write_calls_and_a_plan_deleting_too_much_is_not_applied(
    fake_crm: FakeWolkvoxServer, tmp_path: Path
) -> None:
    def run(contacts: int) -> tuple[dict, int, object]:
        before = writes(fake_crm)
        conf = {"state_dir": str(tmp_path), "contacts": contacts, "approval": "auto"}
        outcome = run_dag(DAG_ID, run_conf=conf)
        [plan] = outcome.values_of("plan")
        return plan, writes(fake_crm) - before, outcome

    plan, written, first = run(30)

    assert first.state == "success"
    assert (plan["create"], plan["delete"], plan["write_calls"]) == (30, 0, 1)
    assert written == plan["write_calls"]
    [summary] = first.values_of("apply")
    assert (summary["created"], summary["failed"]) == (30, 0)
    assert len(fake_crm.records("contacts")) == 30

    plan, written, second = run(25)  # five contacts left the source

    assert second.state == "success"
    assert (plan["create"], plan["unchanged"], plan["delete"], plan["write_calls"]) == (0, 25, 5, 1)
    assert plan["calls_used"] == 1  # the state knows every key: no look-up, one token-information call
    assert written == plan["write_calls"]
    [summary] = second.values_of("apply")
    assert (summary["deleted"], summary["unchanged"]) == (5, 25)
    assert len(fake_crm.records("contacts")) == 25

    plan, written, third = run(5)  # a source cut short: 20 deletes, past max_auto_deletes and max_deletes

    assert third.state == "success"
    assert (plan["delete"], plan["exceeds_max_deletes"]) == (20, True)
    assert third.task_states[("apply", -1)] == "skipped"
    assert written == 0
    assert len(fake_crm.records("contacts")) == 25
