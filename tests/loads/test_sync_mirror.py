"""Mirror syncs against the fake CRM over real HTTP: only tracked keys absent from the input are
deleted, several ids per ``delete.php`` call; a record gone already is ``already_absent``; the
delete guard stops the sync before its first call; the state forgets what left the CRM."""

from __future__ import annotations

import datetime
import json
import re
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_wolkvox import api
from airflow_provider_wolkvox.exceptions import WolkvoxDeleteGuardError, WolkvoxInputError
from airflow_provider_wolkvox.hooks.wolkvox import WolkvoxHook
from airflow_provider_wolkvox.loads import RecordStatus, SyncOptions, UpsertResult
from airflow_provider_wolkvox.loads.sync.state import merge_rows
from airflow_provider_wolkvox.testing import FakeWolkvoxServer, Fault
from tests.conftest import OPERATION
from tests.loads.records import MODULE


@pytest.fixture
def state(tmp_path: Path) -> Path:
    return tmp_path / "contacts.sync-state.jsonl"


def contact(n: int, **changes: Any) -> dict[str, Any]:
    return {"Email": f"c{n}@example.com", "Nombre": f"Contacto {n}", **changes}


def mirror(records: list[dict[str, Any]], state: Path, **settings: Any) -> UpsertResult:
    return WolkvoxHook().upsert_many(
        MODULE, records, key_field="Email", mode="mirror", state_path=str(state), **settings
    )


def stored(server: FakeWolkvoxServer) -> dict[str, str]:
    return {record["Email"]: record["wolkvox_id"] for record in server.records(MODULE)}


def state_keys(state: Path) -> dict[str, str]:
    rows = [json.loads(line) for line in state.read_text().splitlines()[1:]]
    return {row["key"]: row["wolkvox_id"] for row in rows}


def test_mirror_deletes_only_the_tracked_keys_absent_from_the_input(
    server: FakeWolkvoxServer, state: Path
) -> None:
    created_at = server.crm_now() - datetime.timedelta(days=1)
    [stranger] = server.add_records(MODULE, [{"Email": "hand@example.com"}], created_at=created_at)
    mirror([contact(n) for n in range(6)], state)
    ids = stored(server)
    calls = server.calls()

    result = mirror([contact(0), contact(1), contact(2, Nombre="Dos"), contact(6)], state, batch_size=2)

    deleted = [r for r in result.results if r.status is RecordStatus.DELETED]
    assert [(r.key, r.wolkvox_id, r.in_input) for r in deleted] == [
        (key, ids[key], False)
        for key in sorted(("c3@example.com", "c4@example.com", "c5@example.com"), key=ids.get)
    ]
    assert [r.status for r in result.results[:4]] == [
        RecordStatus.UNCHANGED,
        RecordStatus.UNCHANGED,
        RecordStatus.UPDATED,
        RecordStatus.CREATED,
    ]
    now = stored(server)
    assert now.keys() == {
        "hand@example.com",
        "c0@example.com",
        "c1@example.com",
        "c2@example.com",
        "c6@example.com",
    }
    assert now["hand@example.com"] == stranger  # neither in the state nor in the input: never touched
    deletes = [entry for entry in server.request_log[calls:] if entry.path == api.DELETE_PATH]
    by_id = sorted(str(r.wolkvox_id) for r in deleted)
    assert {frozenset(entry.ids) for entry in deletes} == {frozenset(by_id[:2]), frozenset(by_id[2:])}
    assert state_keys(state) == {
        key: now[key] for key in ("c0@example.com", "c1@example.com", "c2@example.com", "c6@example.com")
    }
    assert result.summary.counts[RecordStatus.DELETED] == 3
    assert result.summary.failed == 0
    assert "c3@example.com" not in result.ids_by_key


def test_a_record_deleted_in_the_crm_already_is_already_absent_and_leaves_the_state(
    server: FakeWolkvoxServer, state: Path
) -> None:
    mirror([contact(n) for n in range(4)], state)
    ids = stored(server)
    WolkvoxHook().client.delete(OPERATION, MODULE, [ids["c2@example.com"]])  # by a CRM user, say
    deletes, queries = server.calls(api.DELETE_PATH), server.calls(api.QUERY_PATH)

    result = mirror([contact(0), contact(1)], state)

    gone = {r.key: (r.status, r.wolkvox_id) for r in result.results if not r.in_input}
    assert gone == {
        "c2@example.com": (RecordStatus.ALREADY_ABSENT, ids["c2@example.com"]),
        "c3@example.com": (RecordStatus.DELETED, ids["c3@example.com"]),
    }
    assert result.summary.failed == 0
    assert stored(server).keys() == {"c0@example.com", "c1@example.com"}
    assert state_keys(state).keys() == {"c0@example.com", "c1@example.com"}
    # The batch of two was refused whole (the fake deletes all or none), then split: one delete each,
    # and the refused one looked up by its key (one query.php call) to learn it is gone.
    assert server.calls(api.DELETE_PATH) - deletes == 1 + 2
    assert server.calls(api.QUERY_PATH) - queries == 1


def test_a_delete_whose_answer_was_lost_is_retried_and_found_gone(
    server: FakeWolkvoxServer, state: Path
) -> None:
    mirror([contact(0), contact(1)], state)
    server.inject(Fault.STORE_THEN_DROP, path=api.DELETE_PATH)

    result = mirror([contact(0)], state)

    [gone] = [r for r in result.results if not r.in_input]
    assert (gone.key, gone.status) == ("c1@example.com", RecordStatus.ALREADY_ABSENT)
    assert stored(server).keys() == {"c0@example.com"}
    assert state_keys(state).keys() == {"c0@example.com"}


def test_a_delete_the_crm_refuses_for_a_record_it_holds_is_rejected_and_stays_tracked(
    server: FakeWolkvoxServer, state: Path
) -> None:
    mirror([contact(0), contact(1)], state)
    ids = stored(server)
    refusal = {"code": 400, "error": "BAD REQUEST", "msg": "THE RECORD IS IN USE"}
    server.inject(Fault.RESPOND, path=api.DELETE_PATH, status=400, body=json.dumps(refusal).encode())

    result = mirror([contact(0)], state)

    [refused] = [r for r in result.results if not r.in_input]
    assert (refused.key, refused.status, refused.msg) == (
        "c1@example.com",
        RecordStatus.REJECTED,
        "THE RECORD IS IN USE",
    )
    assert result.summary.failed == 1
    assert stored(server) == ids
    assert state_keys(state) == ids  # still tracked: the next run tries again


def test_a_record_whose_key_was_changed_in_the_crm_is_not_deleted_for_its_old_key(
    server: FakeWolkvoxServer, state: Path
) -> None:
    mirror([contact(0)], state)
    [record_id] = stored(server).values()
    WolkvoxHook().client.update(OPERATION, MODULE, record_id, {"Email": "new@example.com"})

    result = mirror([{"Email": "new@example.com", "Nombre": "Contacto 0"}], state)

    assert [(r.status, r.wolkvox_id) for r in result.results] == [(RecordStatus.UNCHANGED, record_id)]
    assert stored(server) == {"new@example.com": record_id}
    assert server.calls(api.DELETE_PATH) == 0


@pytest.mark.parametrize(
    ("tracked", "kept", "max_deletes"),
    [
        pytest.param(20, 5, 0.1, id="fraction-floor-of-10"),
        pytest.param(200, 170, 0.1, id="fraction-10-percent"),
        pytest.param(4, 3, 0, id="count-0-allows-none"),
        pytest.param(20, 10, 9, id="count"),
    ],
)
def test_the_delete_guard_stops_the_sync_before_any_call(
    server: FakeWolkvoxServer, state: Path, tracked: int, kept: int, max_deletes: int | float
) -> None:
    mirror([contact(n) for n in range(tracked)], state)
    before, state_before, calls = stored(server), state.read_bytes(), server.calls()
    changed = [contact(0, Nombre="Cero"), *(contact(n) for n in range(1, kept)), contact(tracked + 1)]

    with pytest.raises(WolkvoxDeleteGuardError) as raised:
        mirror(changed, state, max_deletes=max_deletes)

    assert server.calls() == calls  # not a look-up, not a create nor an update
    assert stored(server) == before
    assert state.read_bytes() == state_before
    error = raised.value
    assert error.fail_fast
    assert (error.deletes, error.tracked) == (tracked - kept, tracked)
    message = str(error)
    assert f"{tracked - kept:,} of the {tracked:,} keys its state tracks" in message
    assert f"max_deletes={max_deletes!r}" in message
    assert (
        f"The input has {kept + 1:,} records: {kept:,} known from the state (1 changed), 1 to look up"
        in message
    )


def test_within_the_guard_the_deletes_go_through(server: FakeWolkvoxServer, state: Path) -> None:
    mirror([contact(n) for n in range(30)], state)

    result = mirror([contact(n) for n in range(20)], state)  # 10 deletes: the floor of the default

    assert result.summary.counts[RecordStatus.DELETED] == 10
    assert len(stored(server)) == 20


def test_a_dry_run_reports_the_guard_instead_of_stopping(server: FakeWolkvoxServer, state: Path) -> None:
    mirror([contact(n) for n in range(30)], state)
    calls = server.calls()

    plan = WolkvoxHook().upsert_many(
        MODULE, [contact(0)], key_field="Email", mode="mirror", state_path=str(state), dry_run=True
    )

    assert (plan.delete, plan.max_deletes, plan.exceeds_max_deletes) == (29, 10, True)
    assert plan.delete_calls == 1
    assert server.calls() - calls == 1  # the token-information call
    assert len(stored(server)) == 30


def test_mirror_without_a_state_path_is_refused(server: FakeWolkvoxServer) -> None:
    with pytest.raises(WolkvoxInputError, match=re.escape("mode='mirror' needs a state_path")):
        WolkvoxHook().upsert_many(MODULE, [contact(0)], key_field="Email", mode="mirror")
    assert server.calls() == 0


@pytest.mark.parametrize("value", [-1, 1.5, -0.1, "10%", True, None])
def test_max_deletes_must_be_a_count_or_a_fraction(value: Any) -> None:
    with pytest.raises(WolkvoxInputError, match="max_deletes must be a number of deletes"):
        SyncOptions(key_field="Email", mode="mirror", max_deletes=value)


@pytest.mark.parametrize(
    ("max_deletes", "tracked", "allowed"),
    [
        (0.1, 0, 10),
        (0.1, 99, 10),
        (0.1, 1000, 100),
        (0.5, 1001, 500),
        (1.0, 7, 10),
        (1.0, 70, 70),
        (0, 50, 0),
        (3, 50, 3),
    ],
)
def test_delete_limit(max_deletes: int | float, tracked: int, allowed: int) -> None:
    assert SyncOptions(key_field="Email", max_deletes=max_deletes).delete_limit(tracked) == allowed


def test_a_state_write_forgets_the_deleted_keys_and_keeps_the_others() -> None:
    current = [("a", "1", None), ("b", "2", None), ("c", "3", None), ("d", "4", None)]
    ours = [
        ("a", None, None, True),
        ("b", "2", None, False),
        ("c", None, None, True),
        ("e", None, None, True),
    ]
    assert list(merge_rows(current, ours)) == [("b", "2", None), ("d", "4", None)]
