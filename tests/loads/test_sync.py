"""Syncs against the fake CRM over real HTTP: create, update only what changed, skip, ambiguous, state."""

from __future__ import annotations

import datetime
import json
import logging
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_wolkvox import api
from airflow_provider_wolkvox.exceptions import WolkvoxInputError
from airflow_provider_wolkvox.fields import address
from airflow_provider_wolkvox.hooks.wolkvox import WolkvoxHook
from airflow_provider_wolkvox.loads import Journal, RecordResult, RecordStatus
from airflow_provider_wolkvox.testing import FakeWolkvoxServer, Fault
from tests.conftest import OPERATION, DictStateStore
from tests.loads.records import MODULE, contact, delete_in_the_crm

WRITES = (api.INSERT_PATH, api.INSERT_MANY_PATH, api.UPDATE_PATH)


def seed(server: FakeWolkvoxServer, records: list[dict[str, Any]]) -> dict[str, str]:
    """Records already in the CRM, created over the past days; their ids by Email."""
    now = server.crm_now()
    created = [now - datetime.timedelta(hours=n + 1) for n in range(len(records))]
    ids = server.add_records(MODULE, [dict(record) for record in records], created_at=created)
    return {record["Email"]: wolkvox_id for record, wolkvox_id in zip(records, ids, strict=True)}


def stored(server: FakeWolkvoxServer) -> dict[str, dict[str, Any]]:
    records = server.records(MODULE)
    by_email = {record["Email"]: record for record in records}
    assert len(by_email) == len(records), "a key is stored twice"
    return by_email


def calls(server: FakeWolkvoxServer, *paths: str) -> int:
    return sum(server.calls(path) for path in paths)


def test_a_first_upsert_creates_absent_keys_and_updates_only_the_changed_fields(
    server: FakeWolkvoxServer,
) -> None:
    ids = seed(server, [contact(0), contact(1), contact(2)])
    before = stored(server)
    records = [contact(0), contact(1, Ciudad="Cali"), contact(3)]

    result = WolkvoxHook().upsert_many(MODULE, records, key_field="Email")

    assert [(r.status, r.key) for r in result.results] == [
        (RecordStatus.UNCHANGED, "c0@example.com"),
        (RecordStatus.UPDATED, "c1@example.com"),
        (RecordStatus.CREATED, "c3@example.com"),
    ]
    assert result.results[1].fields == ("Ciudad",)
    now = stored(server)
    assert result.ids_by_key == {
        email: now[email]["wolkvox_id"] for email in ("c0@example.com", "c1@example.com", "c3@example.com")
    }
    assert result.ids_by_key["c1@example.com"] == ids["c1@example.com"]
    assert now["c1@example.com"]["Ciudad"] == "Cali"
    assert now["c1@example.com"][api.MODIFIED_AT_FIELD] >= before["c1@example.com"][api.MODIFIED_AT_FIELD]
    assert now["c0@example.com"] == before["c0@example.com"]  # unchanged: not written
    assert now["c2@example.com"] == before["c2@example.com"]  # not in the input: left alone
    updates = [e for e in server.request_log if e.path == api.UPDATE_PATH]
    assert [(e.status, e.ids) for e in updates] == [(200, (ids["c1@example.com"],))]
    assert server.calls(api.INSERT_MANY_PATH) == 1
    assert result.summary.as_dict()["updated"] == 1
    assert result.summary.calls == server.calls()


def test_an_update_sends_only_the_changed_fields(requests_mock: Any, wolkvox_conn: str) -> None:
    base = "https://crm0001.wolkvox.com"
    holder = {"wolkvox_id": "64cb1f0e2a9d4c0012ab34cd", **contact(1)}
    requests_mock.post(
        f"{base}{api.QUERY_PATH}", json={"code": "200", "error": "null", "msg": "1", "data": [holder]}
    )
    requests_mock.post(
        f"{base}{api.UPDATE_PATH}",
        json={
            "code": 200,
            "error": "null",
            "msg": "Succesfully edit record",
            "data": {"wolkvox_id": holder["wolkvox_id"]},
        },
    )

    result = WolkvoxHook().upsert_many(MODULE, [contact(1, Ciudad="Cali")], key_field="Email", lookup="query")

    assert [r.status for r in result.results] == [RecordStatus.UPDATED]
    update = requests_mock.request_history[-1]
    assert update.url == f"{base}{api.UPDATE_PATH}"
    assert update.json() == {
        "operation": OPERATION,
        "module": MODULE,
        "wolkvox-id": "64cb1f0e2a9d4c0012ab34cd",
        "fields": {"Ciudad": "Cali"},
    }


def test_a_second_run_with_a_sync_state_writes_nothing_and_looks_nothing_up(
    server: FakeWolkvoxServer, tmp_path: Path
) -> None:
    seed(server, [contact(n) for n in range(5)])
    state = str(tmp_path / "contacts.sync-state.jsonl")
    records = [contact(n) for n in range(8)]
    first = WolkvoxHook().upsert_many(MODULE, records, key_field="Email", state_path=state)
    assert [r.status for r in first.results] == [RecordStatus.UNCHANGED] * 5 + [RecordStatus.CREATED] * 3
    before = server.calls()

    second = WolkvoxHook().upsert_many(MODULE, records, key_field="Email", state_path=state)

    assert server.calls() == before  # not one call
    assert [r.status for r in second.results] == [RecordStatus.UNCHANGED] * 8
    assert second.ids_by_key == first.ids_by_key
    assert (second.plan.known, second.plan.changed, second.plan.to_look_up) == (8, 0, 0)


def test_with_a_state_a_changed_record_costs_one_update_and_no_look_up(
    server: FakeWolkvoxServer, tmp_path: Path
) -> None:
    state = str(tmp_path / "state.jsonl")
    records = [contact(n) for n in range(4)]
    WolkvoxHook().upsert_many(MODULE, records, key_field="Email", state_path=state)
    before = {path: server.calls(path) for path in (api.QUERY_PATH, api.QUERY_DATES_PATH, api.UPDATE_PATH)}

    records[2]["Nombre"] = "Contacto dos"
    result = WolkvoxHook().upsert_many(MODULE, records, key_field="Email", state_path=state)

    assert [r.status for r in result.results] == [RecordStatus.UNCHANGED] * 2 + [
        RecordStatus.UPDATED,
        RecordStatus.UNCHANGED,
    ]
    assert result.results[2].fields == ("Nombre",)
    assert server.calls(api.UPDATE_PATH) - before[api.UPDATE_PATH] == 1
    assert server.calls(api.QUERY_PATH) == before[api.QUERY_PATH]
    assert server.calls(api.QUERY_DATES_PATH) == before[api.QUERY_DATES_PATH]
    assert stored(server)["c2@example.com"]["Nombre"] == "Contacto dos"


def test_the_state_file_is_inspectable_and_written_whole(server: FakeWolkvoxServer, tmp_path: Path) -> None:
    state = tmp_path / "state.jsonl"
    result = WolkvoxHook().upsert_many(
        MODULE, [contact(0), contact(1)], key_field="Email", state_path=str(state)
    )

    header, *rows = [json.loads(line) for line in state.read_text().splitlines()]
    assert {k: header[k] for k in ("format", "version", "operation", "module", "key_field")} == {
        "format": "wolkvox-sync-state",
        "version": 1,
        "operation": OPERATION,
        "module": MODULE,
        "key_field": "Email",
    }
    assert [(row["key"], row["wolkvox_id"]) for row in rows] == sorted(result.ids_by_key.items())
    assert set(rows[0]["fields"]) == {"Email", "Nombre", "Ciudad"}
    assert all(len(digest) == 12 for digest in rows[0]["fields"].values())
    assert list(tmp_path.iterdir()) == [state]  # no temporary file left behind


def test_a_state_of_another_module_is_refused_before_any_request(
    server: FakeWolkvoxServer, tmp_path: Path
) -> None:
    state = str(tmp_path / "state.jsonl")
    WolkvoxHook().upsert_many(MODULE, [contact(0)], key_field="Email", state_path=state)
    before = server.calls()
    with pytest.raises(
        WolkvoxInputError, match=r"holds the state of operation .*, key 'Email', not of .*'Nombre'"
    ):
        WolkvoxHook().upsert_many(MODULE, [contact(0)], key_field="Nombre", state_path=state)
    assert server.calls() == before


def test_update_only_never_creates(server: FakeWolkvoxServer) -> None:
    seed(server, [contact(0)])
    result = WolkvoxHook().upsert_many(
        MODULE, [contact(0, Ciudad="Cali"), contact(1), contact(2)], key_field="Email", mode="update_only"
    )
    assert [r.status for r in result.results] == [
        RecordStatus.UPDATED,
        RecordStatus.SKIPPED,
        RecordStatus.SKIPPED,
    ]
    assert sorted(stored(server)) == ["c0@example.com"]
    assert calls(server, api.INSERT_PATH, api.INSERT_MANY_PATH) == 0


def test_insert_only_skips_present_keys(server: FakeWolkvoxServer) -> None:
    ids = seed(server, [contact(0)])
    result = WolkvoxHook().upsert_many(
        MODULE, [contact(0, Ciudad="Cali"), contact(1)], key_field="Email", mode="insert_only"
    )
    assert [(r.status, r.wolkvox_id is not None) for r in result.results] == [
        (RecordStatus.SKIPPED, True),
        (RecordStatus.CREATED, True),
    ]
    assert result.results[0].wolkvox_id == ids["c0@example.com"]
    assert stored(server)["c0@example.com"]["Ciudad"] == "Medellín"
    assert server.calls(api.UPDATE_PATH) == 0


def test_a_key_matching_two_records_is_ambiguous_and_nothing_is_written(server: FakeWolkvoxServer) -> None:
    twins = server.add_records(MODULE, [contact(7), contact(7, Nombre="Otro")])
    result = WolkvoxHook().upsert_many(MODULE, [contact(7, Ciudad="Cali")], key_field="Email")

    [only] = result.results
    assert only.status is RecordStatus.AMBIGUOUS
    assert only.matches == tuple(twins)
    assert calls(server, *WRITES) == 0
    assert result.summary.failed == 1


@pytest.mark.parametrize(
    ("records", "message"),
    [
        (
            [contact(0), contact(1), contact(0, Nombre="again")],
            "record 0 and record 2 have the same key Email='c0@example.com'",
        ),
        ([contact(0), {"Nombre": "sin correo"}], "record 1: no value for the key field 'Email'"),
        ([contact(0), contact(1, Email="  ")], "record 1: no value for the key field 'Email'"),
    ],
)
def test_a_duplicated_or_missing_key_is_refused_before_any_request(
    server: FakeWolkvoxServer, records: list[dict[str, Any]], message: str
) -> None:
    with pytest.raises(WolkvoxInputError, match=message) as raised:
        WolkvoxHook().upsert_many(MODULE, records, key_field="Email")
    assert raised.value.field == "Email"
    assert server.calls() == 0


def test_a_record_deleted_in_the_crm_since_the_state_was_written_is_created_again(
    server: FakeWolkvoxServer, tmp_path: Path
) -> None:
    state = str(tmp_path / "state.jsonl")
    first = WolkvoxHook().upsert_many(MODULE, [contact(0), contact(1)], key_field="Email", state_path=state)
    delete_in_the_crm(server, first.ids_by_key["c1@example.com"])

    second = WolkvoxHook().upsert_many(
        MODULE, [contact(0), contact(1, Ciudad="Cali")], key_field="Email", state_path=state
    )

    assert [r.status for r in second.results] == [RecordStatus.UNCHANGED, RecordStatus.CREATED]
    now = stored(server)
    assert now["c1@example.com"]["Ciudad"] == "Cali"
    assert (
        second.ids_by_key["c1@example.com"]
        == now["c1@example.com"]["wolkvox_id"]
        != first.ids_by_key["c1@example.com"]
    )
    refused = [e for e in server.request_log if e.path == api.UPDATE_PATH]
    assert [e.status for e in refused] == [400]


def test_refresh_reads_the_crm_again_and_undoes_an_edit_made_there(
    server: FakeWolkvoxServer, tmp_path: Path
) -> None:
    state = str(tmp_path / "state.jsonl")
    first = WolkvoxHook().upsert_many(MODULE, [contact(0)], key_field="Email", state_path=state)
    WolkvoxHook().update(
        MODULE, first.ids_by_key["c0@example.com"], {"Ciudad": "Bogotá"}
    )  # edited in the CRM

    assert [
        r.status
        for r in WolkvoxHook().upsert_many(MODULE, [contact(0)], key_field="Email", state_path=state).results
    ] == [
        RecordStatus.UNCHANGED  # the state cannot see an edit made in the CRM
    ]
    refreshed = WolkvoxHook().upsert_many(
        MODULE, [contact(0)], key_field="Email", state_path=state, refresh=True
    )

    assert [(r.status, r.fields) for r in refreshed.results] == [(RecordStatus.UPDATED, ("Ciudad",))]
    assert stored(server)["c0@example.com"]["Ciudad"] == "Medellín"


def test_a_scan_learns_every_key_in_about_one_call_per_thousand_records(server: FakeWolkvoxServer) -> None:
    seed(server, [contact(n) for n in range(2500)])
    records = [contact(n) for n in range(0, 2500, 10)] + [contact(n) for n in range(5000, 5300)]

    result = WolkvoxHook().upsert_many(MODULE, records, key_field="Email", lookup="scan")

    assert server.calls(api.QUERY_DATES_PATH) == 3  # ceil(2500 / 1000)
    assert server.calls(api.QUERY_PATH) == 0
    assert [r.status for r in result.results] == [RecordStatus.UNCHANGED] * 250 + [RecordStatus.CREATED] * 300
    assert server.calls(api.INSERT_MANY_PATH) == 3  # ceil(300 / 100)
    assert result.plan.lookup == "scan"


def test_auto_looks_a_few_keys_up_one_by_one(
    server: FakeWolkvoxServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    seed(server, [contact(n) for n in range(30)])
    result = WolkvoxHook().upsert_many(MODULE, [contact(1), contact(2), contact(99)], key_field="Email")

    assert result.plan.lookup == "query"
    assert server.calls(api.QUERY_PATH) == 3
    assert server.calls(api.QUERY_DATES_PATH) == 0
    assert (
        "wolkvox sync of module 'contacts' by 'Email': 3 keys: 3 to look up (3 query.php calls), then "
        "about 1 insertMany call, plus one update call per looked-up key found changed." in caplog.text
    )


def test_typed_and_numeric_values_held_in_another_form_are_unchanged(server: FakeWolkvoxServer) -> None:
    # The CRM gives typed fields back as objects, and numbers as text.
    server.add_records(
        MODULE, [{"Email": "t@example.com", "Precio": "6700", "Dir": {"type": "address", "value": "Calle 1"}}]
    )
    record = {"Email": "t@example.com", "Precio": 6700, "Dir": address("Calle 1 ")}

    result = WolkvoxHook().upsert_many(MODULE, [record], key_field="Email")

    assert [r.status for r in result.results] == [RecordStatus.UNCHANGED]
    assert calls(server, *WRITES) == 0


def test_a_rerun_of_the_same_task_instance_does_not_write_again(server: FakeWolkvoxServer) -> None:
    store = DictStateStore()
    seed(server, [contact(0)])
    records = [contact(0, Ciudad="Cali"), contact(1)]
    hook = WolkvoxHook()
    first = list(hook.iter_upsert_many(MODULE, records, key_field="Email", journal=Journal(store)))
    writes = calls(server, *WRITES)

    # A clear of the task before the sync state was written: the journal knows what was written.
    second = list(hook.iter_upsert_many(MODULE, records, key_field="Email", journal=Journal(store)))

    assert [r.status for r in first] == [RecordStatus.UPDATED, RecordStatus.CREATED]
    assert [(r.status, r.wolkvox_id) for r in second] == [(r.status, r.wolkvox_id) for r in first]
    assert calls(server, *WRITES) == writes
    assert len(server.records(MODULE)) == 2


def stopped_first_try(
    server: FakeWolkvoxServer, records: list[dict], batches: int
) -> tuple[DictStateStore, list[RecordResult]]:
    """A journalled sync of ``records`` in batches of 2 that stops after ``batches`` batches of
    creates, the day's quota spent; the task's state store (its journal) and the results."""
    store = DictStateStore()
    server.inject(Fault.QUOTA, path=api.INSERT_MANY_PATH, after=batches, times=None)
    first = list(
        WolkvoxHook().iter_upsert_many(
            MODULE, records, key_field="Email", batch_size=2, max_in_flight=1, journal=Journal(store)
        )
    )
    server.clear_faults()
    return store, first


def test_a_rerun_after_a_stopped_try_looks_up_only_the_keys_it_had_not_written(
    server: FakeWolkvoxServer, caplog: pytest.LogCaptureFixture
) -> None:
    records = [contact(n) for n in range(6)]
    store, first = stopped_first_try(server, records, batches=1)
    lookups = server.calls(api.QUERY_PATH)

    with caplog.at_level(logging.INFO):
        second = list(
            WolkvoxHook().iter_upsert_many(MODULE, records, key_field="Email", journal=Journal(store))
        )

    assert [r.status for r in first] == [RecordStatus.CREATED] * 2 + [RecordStatus.NOT_SENT] * 4
    assert server.calls(api.QUERY_PATH) - lookups == 4
    assert "6 keys: 2 written by an earlier try (no call), 4 to look up (4 query.php calls)" in caplog.text
    assert [(r.status, r.wolkvox_id) for r in second[:2]] == [(r.status, r.wolkvox_id) for r in first[:2]]
    assert [r.status for r in second] == [RecordStatus.CREATED] * 6
    assert sorted(stored(server)) == sorted(record["Email"] for record in records)
    assert len(server.records(MODULE)) == 6


def test_a_rerun_tells_its_progress_which_records_an_earlier_try_wrote(
    server: FakeWolkvoxServer, caplog: pytest.LogCaptureFixture
) -> None:
    records = [contact(n) for n in range(6)]
    store, first = stopped_first_try(server, records, batches=2)

    with caplog.at_level(logging.INFO, logger="airflow_provider_wolkvox.loads.progress"):
        second = list(
            WolkvoxHook().iter_upsert_many(
                MODULE, records, key_field="Email", batch_size=2, progress_interval=0, journal=Journal(store)
            )
        )

    assert [r.status for r in first] == [RecordStatus.CREATED] * 4 + [RecordStatus.NOT_SENT] * 2
    assert [r.status for r in second] == [RecordStatus.CREATED] * 6
    lines = [r.getMessage() for r in caplog.records if "records (" in r.getMessage()]
    # The 4 records the first try created are recalled: the line says so, and its rate leaves them out
    # (Progress.line, tests/operators/test_report.py).
    recalled = "wolkvox sync of 'contacts': 6/6 records (100.0 %), 4 of them by an earlier try, "
    assert lines[-1].startswith(recalled)
    assert len(server.records(MODULE)) == 6
