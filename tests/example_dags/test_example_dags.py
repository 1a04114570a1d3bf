"""The example DAG files run end to end with ``dag.test()`` on a sqlite Airflow DB, against the fake CRM."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from airflow_provider_wolkvox import api
from airflow_provider_wolkvox.testing import CONN_ENV_VAR, FakeWolkvoxServer
from example_dags.run_demo import run_dag
from tests.conftest import OPERATION, REPO_ROOT, TOKEN, simultaneous_refusals

pytestmark = pytest.mark.e2e


def test_insert_dag_passes_the_new_id_downstream(fake_crm: FakeWolkvoxServer) -> None:
    outcome = run_dag("example_wolkvox_insert", run_conf={"name": "Bea Ortiz", "email": "bea@example.com"})

    assert outcome.state == "success"
    [wolkvox_id] = outcome.values_of("insert_contact")
    assert outcome.values_of("welcome") == [wolkvox_id]
    [record] = fake_crm.records("contacts")
    assert record["wolkvox_id"] == wolkvox_id
    assert record["Nombre"] == "Bea Ortiz"
    assert record["Email"] == "bea@example.com"
    assert record["Direccion"] == {"type": "address", "value": "Calle 145a #12-60"}
    [request] = fake_crm.request_log
    assert (request.method, request.path, request.status) == ("POST", api.INSERT_PATH, 200)


def test_mapped_insert_dag_collects_every_id_in_order(fake_crm: FakeWolkvoxServer) -> None:
    outcome = run_dag("example_wolkvox_mapped_insert")

    assert outcome.state == "success"
    ids = outcome.values_of("insert_lead")
    assert len(ids) == 3
    assert len(set(ids)) == 3
    assert outcome.values_of("report") == [ids]
    records = {record["wolkvox_id"]: record for record in fake_crm.records("leads")}
    assert [records[i]["Nombre"] for i in ids] == ["Luis Pérez", "Marta Ruiz", "Sofía Díaz"]
    # Decimal and datetime values crossed XCom and were sent by the documented rule.
    assert records[ids[0]]["Valor"] == 1750905.5
    assert records[ids[2]]["Contactar el"] == "2026-12-01 09:30:00"


def test_refused_token_fails_the_task_and_never_shows_the_token(
    airflow_db: None, monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture
) -> None:
    wrong_token = "wrong-token-9b1f2e77c4"
    with FakeWolkvoxServer({TOKEN: OPERATION}) as server:
        monkeypatch.setenv(CONN_ENV_VAR, server.airflow_connection().replace(TOKEN, wrong_token))
        outcome = run_dag("example_wolkvox_insert")
        assert server.records("contacts") == []

    assert outcome.state == "failed"
    assert outcome.task_states[("insert_contact", -1)] == "failed"
    output = capfd.readouterr()
    assert api.MSG_INVALID_TOKEN in output.out + output.err
    assert wrong_token not in output.out + output.err
    assert_token_not_stored(wrong_token)


def assert_token_not_stored(token: str) -> None:
    """Neither XComs nor rendered template fields in the metadata DB carry the token."""
    from airflow.models.renderedtifields import RenderedTaskInstanceFields
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        for model, column in (
            (XComModel, XComModel.value),
            (RenderedTaskInstanceFields, RenderedTaskInstanceFields.rendered_fields),
        ):
            stored = [json.dumps(value, default=str) for value in session.scalars(select(column)).all()]
            assert stored, f"nothing stored in {model.__name__}: the check would prove nothing"
            assert not any(token in text for text in stored)


def test_demo_entry_point_runs_and_prints_the_ids() -> None:
    result = subprocess.run(
        [sys.executable, str(REPO_ROOT / "example_dags" / "run_demo.py")],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=REPO_ROOT,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "wolkvox demo: all tasks succeeded" in result.stdout
    # contacts: 1 from the single insert + 250 from the bulk load (one repeated e-mail rejected)
    # + 300 from the sync, whose second run writes nothing and makes no call.
    assert "records now in the fake CRM, module 'contacts': 551" in result.stdout
    [first_sync, second_sync] = re.findall(
        r"^example_wolkvox_sync: success in [\d.]+ s, (.*)$", result.stdout, re.M
    )
    assert first_sync != "0 calls"
    assert second_sync == "0 calls"
    # leads: 3 mapped inserts + 100 from the chunked load.
    assert "records now in the fake CRM, module 'leads': 103" in result.stdout
    # A short report; Airflow's own logs, and nothing else, in the file it names.
    assert len(result.stdout.splitlines()) < 100
    assert result.stderr == ""
    [log_path] = re.findall(r"Airflow's logs go to (\S+)", result.stdout)
    log = (REPO_ROOT / log_path).read_text(encoding="utf-8")
    assert "[DAG TEST] end task task_id=insert_contact" in log
    assert "[DAG TEST]" not in result.stdout
    # The demo's operation is long enough for Airflow to mask.
    assert "too short" not in log


def test_bulk_load_dag_streams_a_csv_and_reports_counts(
    monkeypatch: pytest.MonkeyPatch, airflow_db: None
) -> None:
    with FakeWolkvoxServer({TOKEN: OPERATION}, unique_fields={"contacts": ["Email"]}) as server:
        monkeypatch.setenv(CONN_ENV_VAR, server.airflow_connection())
        outcome = run_dag("example_wolkvox_bulk_load")
        stored = server.records("contacts")
        batch_calls = server.calls(api.INSERT_MANY_PATH)

    assert outcome.state == "success"
    [summary] = outcome.values_of("load_contacts")
    assert (summary["total"], summary["created"], summary["rejected"]) == (251, 250, 1)
    assert outcome.values_of("report") == [{"created": 250, "rejected": 1}]
    assert len(stored) == 250
    assert len({record["Email"] for record in stored}) == 250
    assert batch_calls >= 6  # 6 batches of 50 (+ the calls that isolated the repeated e-mail)
    results = [json.loads(line) for line in Path(summary["results_path"]).read_text().splitlines()]
    assert [(r["line"], r["try"]) for r in results] == [
        (line, 1) for line in range(2, 253)
    ]  # below the header
    assert results[250]["status"] == "rejected"
    stored_ids = {record["wolkvox_id"] for record in stored}
    assert {r["wolkvox_id"] for r in results[:250]} == stored_ids


def test_chunked_load_dag_maps_over_chunks(fake_crm: FakeWolkvoxServer) -> None:
    outcome = run_dag("example_wolkvox_chunked_load")

    assert outcome.state == "success"
    chunks = outcome.values_of("load_chunk")
    assert [len(chunk) for chunk in chunks] == [40, 40, 20]
    by_email = {record["Email"]: record["wolkvox_id"] for record in fake_crm.records("leads")}
    assert [wolkvox_id for chunk in chunks for wolkvox_id in chunk] == [
        by_email[f"lead{n}@example.com"] for n in range(100)
    ]
    assert outcome.values_of("collect") == [100]
    assert simultaneous_refusals(fake_crm) == 0


def test_sync_dag_creates_then_finds_everything_unchanged_with_no_call(
    fake_crm: FakeWolkvoxServer, tmp_path: Path
) -> None:
    conf = {"state_dir": str(tmp_path)}
    first = run_dag("example_wolkvox_sync", run_conf=conf)
    assert first.state == "success"
    [summary] = first.values_of("sync_contacts")
    assert (summary["created"], summary["unchanged"], summary["failed"]) == (300, 0, 0)
    stored = {record["Email"]: record["wolkvox_id"] for record in fake_crm.records("contacts")}
    assert len(stored) == 300
    results = [
        json.loads(line) for line in (tmp_path / "contacts.sync-results.jsonl").read_text().splitlines()
    ]
    assert {row["key"]: row["wolkvox_id"] for row in results} == stored
    calls_after_first = fake_crm.calls()

    second = run_dag("example_wolkvox_sync", run_conf=conf)

    assert second.state == "success"
    assert second.values_of("report") == [
        {"created": 0, "updated": 0, "unchanged": 300, "skipped": 0, "calls": 0}
    ]
    assert fake_crm.calls() == calls_after_first
    assert len(fake_crm.records("contacts")) == 300


def test_the_producer_load_attaches_its_counts_to_the_asset_event(fake_crm: FakeWolkvoxServer) -> None:
    from airflow.models.asset import AssetEvent, AssetModel
    from airflow.utils.session import create_session
    from sqlalchemy import select

    outcome = run_dag("example_wolkvox_asset_producer")

    assert outcome.state == "success"
    uri = f"wolkvox://{fake_crm.url.removeprefix('http://')}/{OPERATION}/contacts"
    with create_session() as session:
        extras = (
            session.execute(
                select(AssetEvent.extra)
                .join(AssetModel, AssetEvent.asset_id == AssetModel.id)
                .where(AssetModel.uri == uri)
            )
            .scalars()
            .all()
        )
    [extra] = extras
    assert {k: extra[k] for k in ("total", "created", "rejected", "failed", "calls")} == {
        "total": 20,
        "created": 20,
        "rejected": 0,
        "failed": 0,
        "calls": 1,
    }
    assert len(fake_crm.records("contacts")) == 20
