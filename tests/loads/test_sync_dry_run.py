"""A sync's dry run against the fake CRM over real HTTP: every look-up, no write, and a plan whose
``write_calls`` the real run that follows makes exactly (the fake's request log is the truth)."""

from __future__ import annotations

import datetime
import logging
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_wolkvox import api
from airflow_provider_wolkvox.exceptions import WolkvoxInputError
from airflow_provider_wolkvox.hooks.wolkvox import WolkvoxHook
from airflow_provider_wolkvox.loads import DryRunPlan, RecordStatus, UpsertResult
from airflow_provider_wolkvox.testing import FakeWolkvoxServer
from tests.conftest import TOKEN
from tests.loads.records import MODULE, contact

WRITES = (api.INSERT_PATH, api.INSERT_MANY_PATH, api.UPDATE_PATH, api.DELETE_PATH)
LOOK_UPS = (api.QUERY_PATH, api.QUERY_DATES_PATH)
PLAN_KEYS = {"create", "update", "unchanged", "skip", "delete", "write_calls", "calls_used", "quota_left"}


def calls(server: FakeWolkvoxServer, *paths: str) -> int:
    return sum(server.calls(path) for path in paths)


def sync(records: list[dict[str, Any]], **settings: Any) -> UpsertResult:
    return WolkvoxHook().upsert_many(MODULE, records, key_field="Email", **settings)


def plan_of(records: list[dict[str, Any]], **settings: Any) -> DryRunPlan:
    return WolkvoxHook().upsert_many(MODULE, records, key_field="Email", dry_run=True, **settings)


def snapshot(server: FakeWolkvoxServer, state: Path) -> tuple[Any, bytes]:
    return sorted(server.records(MODULE), key=lambda r: r["wolkvox_id"]), state.read_bytes()


def test_a_dry_run_writes_nothing_and_predicts_the_write_calls_of_the_run_after_it(
    server: FakeWolkvoxServer, tmp_path: Path
) -> None:
    state = tmp_path / "contacts.sync-state.jsonl"
    sync([contact(n) for n in range(12)], state_path=str(state), mode="mirror")
    # Then: 0-2 unchanged, 3-5 changed, 6-11 left the source, 12-18 new; 7 creates in batches of 3.
    records = [
        *(contact(n) for n in range(3)),
        contact(3, Ciudad="Cali"),
        contact(4, Nombre="Cuatro", Ciudad="Pasto"),
        contact(5, Nombre="Cinco"),
        *(contact(n) for n in range(12, 19)),
    ]
    settings: dict[str, Any] = {
        "state_path": str(state),
        "mode": "mirror",
        "batch_size": 3,
        "max_deletes": 1.0,
    }
    before, calls_before, look_ups_before = snapshot(server, state), server.calls(), calls(server, *LOOK_UPS)

    plan = plan_of(records, **settings)

    assert snapshot(server, state) == before  # nothing written: neither the CRM nor the state
    assert calls(server, *WRITES) == 1  # the first sync's one insertMany call
    plan_dict = plan.as_dict()
    assert set(plan_dict) >= PLAN_KEYS
    counts = {key: plan_dict[key] for key in ("create", "update", "unchanged", "skip", "delete", "ambiguous")}
    assert counts == {"create": 7, "update": 3, "unchanged": 3, "skip": 0, "delete": 6, "ambiguous": 0}
    assert (plan.insert_calls, plan.update_calls, plan.delete_calls) == (3, 3, 2)
    assert plan_dict["write_calls"] == 3 + 3 + 2
    looked_up = calls(server, *LOOK_UPS) - look_ups_before
    assert looked_up == 7  # the new keys only, one query.php each
    assert plan_dict["calls_used"] == looked_up + 1 == server.calls() - calls_before
    assert plan_dict["quota_left"] == api.DEFAULT_DAILY_QUOTA - server.quota_used(TOKEN)
    assert plan_dict["updates"] == [
        {"key": "c3@example.com", "fields": ["Ciudad"]},
        {"key": "c4@example.com", "fields": ["Nombre", "Ciudad"]},
        {"key": "c5@example.com", "fields": ["Nombre"]},
    ]
    writes_before = calls(server, *WRITES)

    result = sync(records, **settings)

    assert calls(server, *WRITES) - writes_before == plan.write_calls
    assert calls(server, api.INSERT_MANY_PATH) - 1 == plan.insert_calls
    assert server.calls(api.UPDATE_PATH) == plan.update_calls
    assert server.calls(api.DELETE_PATH) == plan.delete_calls
    assert result.summary.counts[RecordStatus.CREATED] == plan.create
    assert result.summary.counts[RecordStatus.UPDATED] == plan.update
    assert result.summary.counts[RecordStatus.UNCHANGED] == plan.unchanged
    assert result.summary.counts[RecordStatus.DELETED] == plan.delete
    assert sorted(r["Email"] for r in server.records(MODULE)) == sorted(r["Email"] for r in records)


def test_with_a_current_state_neither_the_dry_run_nor_the_real_run_looks_anything_up(
    server: FakeWolkvoxServer, tmp_path: Path
) -> None:
    state = str(tmp_path / "contacts.sync-state.jsonl")
    sync([contact(n) for n in range(10)], state_path=state, mode="mirror")
    records = [contact(0, Ciudad="Cali"), *(contact(n) for n in range(1, 8))]  # 1 changed, 2 gone
    look_ups = calls(server, *LOOK_UPS)

    plan = plan_of(records, state_path=state, mode="mirror")

    assert calls(server, *LOOK_UPS) == look_ups
    assert (plan.lookup, plan.calls_used) == ("none", 1)  # the token-information call only
    assert (plan.update, plan.unchanged, plan.delete, plan.write_calls) == (1, 7, 2, 2)
    writes = calls(server, *WRITES)

    result = sync(records, state_path=state, mode="mirror")

    assert calls(server, *LOOK_UPS) == look_ups
    assert calls(server, *WRITES) - writes == plan.write_calls
    assert result.summary.calls == plan.write_calls


@pytest.mark.parametrize(
    ("batch_size", "new_every"),
    [
        pytest.param(2, 25, id="sparse-creates-cut-groups"),
        pytest.param(3, 2, id="dense-creates"),
        pytest.param(100, 1, id="creates-only"),
    ],
)
def test_the_predicted_insert_calls_follow_the_runs_grouping(
    server: FakeWolkvoxServer, tmp_path: Path, batch_size: int, new_every: int
) -> None:
    """A write group holds one batch of creates and at most ``batch_size`` x 10 records: sparse creates
    among many unchanged records take more than ceil(creates / batch_size) calls, and the plan says so."""
    state = str(tmp_path / "contacts.sync-state.jsonl")
    known = [contact(n) for n in range(120) if n % new_every]
    sync(known, state_path=state)
    records = [contact(n) for n in range(120)]
    inserts = server.calls(api.INSERT_MANY_PATH)

    plan = plan_of(records, state_path=state, batch_size=batch_size, lookup="query")
    sync(records, state_path=state, batch_size=batch_size, lookup="query")

    assert plan.create == 120 - len(known)
    assert server.calls(api.INSERT_MANY_PATH) - inserts == plan.insert_calls == plan.write_calls
    if new_every == 25:
        assert plan.insert_calls > -(-plan.create // batch_size)


def test_a_dry_run_without_a_state_looks_every_key_up_and_finds_the_crm_s_records(
    server: FakeWolkvoxServer,
) -> None:
    now = server.crm_now()
    server.add_records(MODULE, [contact(0), contact(1)], created_at=[now - datetime.timedelta(hours=2)] * 2)

    plan = plan_of([contact(0), contact(1, Ciudad="Cali"), contact(2)])

    assert (plan.lookup, plan.create, plan.update, plan.unchanged, plan.delete) == ("query", 1, 1, 1, 0)
    assert (plan.write_calls, plan.calls_used) == (2, 3 + 1)
    assert server.calls(api.INSERT_MANY_PATH) + server.calls(api.UPDATE_PATH) == 0
    assert len(server.records(MODULE)) == 2


def test_the_plan_table_names_the_fields_of_each_update_never_their_values(
    server: FakeWolkvoxServer, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    state = str(tmp_path / "contacts.sync-state.jsonl")
    sync([contact(n) for n in range(3)], state_path=state)
    caplog.set_level(logging.INFO, logger="airflow_provider_wolkvox")

    plan_of([contact(0, Ciudad="Villavicencio"), contact(1, Nombre="Zoraida Quintero")], state_path=state)

    table = next(r.getMessage() for r in caplog.records if "sync plan of module" in r.getMessage())
    assert "a dry run: nothing written" in table
    assert "c0@example.com: Ciudad" in table
    assert "c1@example.com: Nombre" in table
    assert "write calls" in table
    assert "quota left" in table
    assert "Villavicencio" not in caplog.text
    assert "Zoraida" not in caplog.text


def test_insert_only_and_update_only_dry_runs_count_their_skips(server: FakeWolkvoxServer) -> None:
    now = server.crm_now()
    server.add_records(MODULE, [contact(0)], created_at=now - datetime.timedelta(hours=1))
    records = [contact(0, Ciudad="Cali"), contact(1)]

    insert_only = plan_of(records, mode="insert_only")
    update_only = plan_of(records, mode="update_only")

    assert (insert_only.create, insert_only.update, insert_only.skip) == (1, 0, 1)
    assert (update_only.create, update_only.update, update_only.skip) == (0, 1, 1)
    assert server.calls(api.INSERT_MANY_PATH) + server.calls(api.UPDATE_PATH) == 0


def test_a_dry_run_load_is_not_iterated(server: FakeWolkvoxServer) -> None:
    load = WolkvoxHook().iter_upsert_many(MODULE, [contact(0)], key_field="Email", dry_run=True)
    with pytest.raises(WolkvoxInputError, match=r"dry_run=True writes nothing: call its dry_run\(\)"):
        list(load)
    assert server.calls() == 0


@pytest.mark.parametrize("value", ["yes", 1, None])
def test_dry_run_must_be_a_bool(value: Any) -> None:
    from airflow_provider_wolkvox.loads import SyncOptions

    with pytest.raises(WolkvoxInputError, match="dry_run must be True or False"):
        SyncOptions(key_field="Email", dry_run=value)
