"""Plan, approve, apply: a mirror sync that says what it will write before it writes anything.

``plan`` is a dry run of the sync (``dry_run=True``): every look-up the sync needs and no write; it
returns the plan (creates, updates, unchanged, deletes, the write calls they take, the calls left
today). Then the plan is approved: by a person, with Airflow 3.1+'s human-in-the-loop
``ApprovalOperator`` (standard provider) when it is installed and the run's ``approval`` param is
``"human"``; else by a plain condition on the plan's counts (at most ``max_auto_deletes`` deletes,
and within the sync's own ``max_deletes`` guard). ``apply`` then runs the same sync for real: with
nothing changed in between, it makes exactly the plan's ``write_calls`` write calls. A rejected or
failed approval skips ``apply``: nothing is written.

The upstream task stands for a warehouse export (``contacts`` rows). Triggered by hand, without a
logical date; ``approval="auto"`` runs it through without waiting for anyone.
"""

from __future__ import annotations

import csv
import tempfile
from pathlib import Path

import pendulum
from airflow.providers.common.compat.sdk import DAG, AirflowOptionalProviderFeatureException, Param, task

from airflow_provider_wolkvox.operators.upsert import WolkvoxUpsertOperator

try:  # Airflow 3.1+ with a standard provider that has human-in-the-loop operators
    from airflow.providers.standard.operators.hitl import ApprovalOperator
except (ImportError, AirflowOptionalProviderFeatureException):
    ApprovalOperator = None

SYNC = {
    "module": "contacts",
    "key_field": "Email",
    "mode": "mirror",
    "state_path": "{{ params.state_dir }}/contacts.mirror-state.jsonl",
}

with DAG(
    dag_id="example_wolkvox_sync_plan_apply",
    schedule=None,
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    params={
        "state_dir": Param(tempfile.gettempdir(), type="string"),
        "contacts": Param(30, type="integer", minimum=0),
        "approval": Param("human" if ApprovalOperator else "auto", type="string", enum=["auto", "human"]),
        "max_auto_deletes": Param(10, type="integer", minimum=0),
    },
    tags=["example", "wolkvox"],
) as dag:

    @task
    def export_contacts(params: dict | None = None) -> str:
        """Stands for the warehouse export: the first ``contacts`` members (keys of their own, apart
        from the other example syncs' customers)."""
        params = params or {}
        path = Path(params["state_dir"]) / "wolkvox_contacts_mirror_export.csv"
        with path.open("w", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle)
            writer.writerow(["Email", "Nombre"])
            for n in range(params["contacts"]):
                writer.writerow([f"miembro{n}@example.com", f"Miembro {n}"])
        return str(path)

    export = export_contacts()
    plan = WolkvoxUpsertOperator(task_id="plan", records_path=export, dry_run=True, **SYNC)

    @task.branch
    def choose_approval(params: dict | None = None) -> str:
        human = (params or {}).get("approval") == "human" and ApprovalOperator is not None
        return "approve" if human else "check_plan"

    @task.short_circuit
    def check_plan(plan: dict, params: dict | None = None) -> bool:
        """Apply only a plan within the limits: no guard tripped, few deletes."""
        allowed = (params or {})["max_auto_deletes"]
        print(f"plan: {plan['create']} creates, {plan['update']} updates, {plan['delete']} deletes")
        return not plan["exceeds_max_deletes"] and plan["delete"] <= allowed

    apply = WolkvoxUpsertOperator(
        task_id="apply",
        records_path=export,
        results_path="{{ params.state_dir }}/contacts.mirror-results.jsonl",
        trigger_rule="none_failed_min_one_success",
        **SYNC,
    )

    approval = choose_approval()
    plan >> approval
    approval >> check_plan(plan.output) >> apply
    if ApprovalOperator is not None:
        approve = ApprovalOperator(
            task_id="approve",
            subject="Apply the wolkvox contacts sync?",
            body=(
                "{% set p = ti.xcom_pull(task_ids='plan') %}"
                "{{ p.create }} creates, {{ p.update }} updates, {{ p.delete }} deletes: "
                "{{ p.write_calls }} write calls, {{ p.quota_left }} calls left today."
            ),
        )
        approval >> approve >> apply
