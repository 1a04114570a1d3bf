"""The load journal on a task state store: what a later try of the task sends, reuses or looks up."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from airflow_provider_wolkvox import api
from airflow_provider_wolkvox.client import BulkLoad, RecordStatus, RetryPolicy, WolkvoxClient
from airflow_provider_wolkvox.operators.checkpoint import TaskStateJournal
from airflow_provider_wolkvox.testing import FakeWolkvoxServer, Fault
from tests.conftest import OPERATION, TOKEN


class DictStateStore:
    """Stands for ``context["task_state_store"]``: the get/set the journal uses."""

    def __init__(self) -> None:
        self.values: dict[str, Any] = {}

    def get(self, key: str, default: Any = None) -> Any:
        return self.values.get(key, default)

    def set(self, key: str, value: Any) -> None:
        self.values[key] = value


@pytest.fixture
def server() -> Iterator[FakeWolkvoxServer]:
    with FakeWolkvoxServer({TOKEN: OPERATION}) as fake:
        yield fake


def records(count: int = 30) -> list[dict[str, Any]]:
    return [{"Nombre": f"C{n}", "Email": f"c{n}@example.com"} for n in range(count)]


def run(server: FakeWolkvoxServer, store: DictStateStore, data: list[dict[str, Any]], **options: Any) -> list:
    policy = RetryPolicy(max_attempts=2, base_delay=0, max_delay=0)
    with WolkvoxClient(server.url, TOKEN, retry_policy=policy) as client:
        load = BulkLoad(
            client,
            OPERATION,
            "contacts",
            data,
            journal=TaskStateJournal(store),
            **{"batch_size": 10, "max_in_flight": 1, **options},
        )
        return list(load)


def stored_emails(server: FakeWolkvoxServer) -> list[str]:
    return sorted(record["Email"] for record in server.records("contacts"))


def test_a_later_try_reuses_what_was_created_and_sends_what_was_not(server: FakeWolkvoxServer) -> None:
    store = DictStateStore()
    server.inject(Fault.MAINTENANCE, path=api.INSERT_MANY_PATH, after=1, times=None)
    first = run(server, store, records())
    assert [r.status for r in first] == [RecordStatus.CREATED] * 10 + [RecordStatus.NOT_SENT] * 20

    server.clear_faults()
    calls_before = server.calls(api.INSERT_MANY_PATH)
    second = run(server, store, records())

    assert [r.status for r in second] == [RecordStatus.CREATED] * 30
    assert [r.wolkvox_id for r in second[:10]] == [r.wolkvox_id for r in first[:10]]
    assert server.calls(api.INSERT_MANY_PATH) - calls_before == 2  # chunks 2 and 3 only
    assert len(server.records("contacts")) == 30


def test_single_mode_with_both_slots_busy_resumes_where_it_stopped(server: FakeWolkvoxServer) -> None:
    store = DictStateStore()
    server.inject(Fault.MAINTENANCE, path=api.INSERT_PATH, after=12, times=None)
    first = run(server, store, records(), single=True, max_in_flight=2)
    created = {r.index: r.wolkvox_id for r in first if r.status is RecordStatus.CREATED}
    assert len(created) == 12
    assert {r.status for r in first if r.index not in created} == {RecordStatus.NOT_SENT}

    server.clear_faults()
    calls_before = server.calls(api.INSERT_PATH)
    second = run(server, store, records(), single=True, max_in_flight=2)

    assert [r.status for r in second] == [RecordStatus.CREATED] * 30
    assert {index: second[index].wolkvox_id for index in created} == created
    assert server.calls(api.INSERT_PATH) - calls_before == 18  # the records not created only
    assert stored_emails(server) == sorted(f"c{n}@example.com" for n in range(30))


def test_records_in_flight_when_a_try_died_are_looked_up_not_resent(server: FakeWolkvoxServer) -> None:
    store = DictStateStore()
    run(server, store, records(10))
    # As if the try had died while sending: the entries still say "sending".
    store.values["wolkvox_load/0/0"] = [
        [row[0], "sending", None, None, None] for row in store.values["wolkvox_load/0/0"]
    ]

    second = run(server, store, records(10), dedupe_field="Email")

    assert [r.status for r in second] == [RecordStatus.CREATED] * 10
    assert server.calls(api.INSERT_MANY_PATH) == 1
    assert server.calls(api.QUERY_PATH) == 10
    assert len(server.records("contacts")) == 10

    # Without a dedupe field they are named, not sent.
    store.values["wolkvox_load/0/0"] = [
        [row[0], "sending", None, None, None] for row in store.values["wolkvox_load/0/0"]
    ]
    third = run(server, store, records(10))
    assert {r.status for r in third} == {RecordStatus.OUTCOME_UNKNOWN}
    assert len(server.records("contacts")) == 10


def test_rejected_records_are_sent_again_by_a_later_try(server: FakeWolkvoxServer) -> None:
    store = DictStateStore()
    refusal = {"code": 400, "error": "BAD REQUEST", "msg": "FIELD 'Email' IS NOT CONFIGURED"}
    server.inject(Fault.RESPOND, status=400, body=refusal, times=None)
    first = run(server, store, records(10))
    assert {r.status for r in first} == {RecordStatus.REJECTED}
    assert server.records("contacts") == []

    server.clear_faults()  # the CRM's configuration was fixed; the task is cleared and runs again
    second = run(server, store, records(10))

    assert [r.status for r in second] == [RecordStatus.CREATED] * 10
    assert stored_emails(server) == sorted(f"c{n}@example.com" for n in range(10))


def test_a_changed_chunk_resends_only_the_changed_record(server: FakeWolkvoxServer) -> None:
    store = DictStateStore()
    first = run(server, store, records(10))
    changed = records(10)
    changed[3] = {"Nombre": "C3 corrected", "Email": "c3-new@example.com"}

    second = run(server, store, changed)

    assert [r.wolkvox_id for i, r in enumerate(second) if i != 3] == [
        r.wolkvox_id for i, r in enumerate(first) if i != 3
    ]
    assert second[3].wolkvox_id != first[3].wolkvox_id
    assert len(server.records("contacts")) == 11


def test_a_finished_load_starts_a_new_generation(server: FakeWolkvoxServer) -> None:
    store = DictStateStore()
    run(server, store, records(10))
    TaskStateJournal(store).finish()

    run(server, store, records(10))

    assert store.values["wolkvox_load/generation"] == 1
    assert len(server.records("contacts")) == 20  # sent afresh, as a new run of the task asks
