"""The load journal: a later try of a task recognises records by content, whatever their order or batching."""

from __future__ import annotations

import random
from collections.abc import Iterator
from typing import Any

import pytest

from airflow_provider_wolkvox import api
from airflow_provider_wolkvox.client import RetryPolicy, WolkvoxClient
from airflow_provider_wolkvox.loads import BulkLoad, Journal, LoadOptions, RecordResult, RecordStatus
from airflow_provider_wolkvox.loads.journal import KEY_PREFIX, SENDING
from airflow_provider_wolkvox.testing import FakeWolkvoxServer, Fault
from tests.conftest import LOST_ANSWER_TIMEOUT, OPERATION, TOKEN, DictStateStore


@pytest.fixture
def server() -> Iterator[FakeWolkvoxServer]:
    with FakeWolkvoxServer({TOKEN: OPERATION}, unique_fields={"contacts": ["Email"]}) as fake:
        yield fake


def records(count: int = 30) -> list[dict[str, Any]]:
    return [{"Nombre": f"C{n}", "Email": f"c{n}@example.com"} for n in range(count)]


def run(server: FakeWolkvoxServer, store: DictStateStore, data: list[dict[str, Any]], **options: Any) -> list:
    policy = RetryPolicy(max_attempts=2, base_delay=0, max_delay=0)
    with WolkvoxClient(server.url, TOKEN, timeout=LOST_ANSWER_TIMEOUT, retry_policy=policy) as client:
        load = BulkLoad(
            client,
            OPERATION,
            "contacts",
            data,
            LoadOptions(**{"batch_size": 10, "max_in_flight": 1, **options}),
            journal=Journal(store),
        )
        return list(load)


def ids_by_email(server: FakeWolkvoxServer) -> dict[str, str]:
    stored = server.records("contacts")
    by_email = {record["Email"]: record["wolkvox_id"] for record in stored}
    assert len(by_email) == len(stored), "a record is stored twice"
    return by_email


def test_a_later_try_reuses_what_was_created_and_sends_what_was_not(server: FakeWolkvoxServer) -> None:
    store = DictStateStore()
    server.inject(Fault.QUOTA, path=api.INSERT_MANY_PATH, after=1, times=None)
    first = run(server, store, records())
    assert [r.status for r in first] == [RecordStatus.CREATED] * 10 + [RecordStatus.NOT_SENT] * 20

    server.clear_faults()
    second = run(server, store, records())

    assert [r.status for r in second] == [RecordStatus.CREATED] * 30
    assert [r.wolkvox_id for r in second[:10]] == [r.wolkvox_id for r in first[:10]]
    assert server.calls(api.INSERT_MANY_PATH) == 2 + 2  # the second try sends the 20 records not sent
    by_email = ids_by_email(server)
    assert [r.wolkvox_id for r in second] == [by_email[f"c{n}@example.com"] for n in range(30)]


def test_a_rejected_row_fixed_by_deleting_it_sends_nothing_twice(server: FakeWolkvoxServer) -> None:
    store = DictStateStore()
    data = records()
    data.insert(12, {"Nombre": "repeated", "Email": "c3@example.com"})  # refused: Email is unique
    first = run(server, store, data)
    assert [r.index for r in first if r.status is RecordStatus.REJECTED] == [12]
    calls_before = server.calls()

    # The user deletes the bad row from the file and clears the task: every later row moves up.
    del data[12]
    second = run(server, store, data)

    assert server.calls() == calls_before  # everything is known: not one call
    assert [r.status for r in second] == [RecordStatus.CREATED] * 30
    by_email = ids_by_email(server)
    assert [r.wolkvox_id for r in second] == [by_email[f"c{n}@example.com"] for n in range(30)]


def test_a_later_try_with_the_input_reordered_and_rebatched_sends_only_the_new_records(
    server: FakeWolkvoxServer,
) -> None:
    store = DictStateStore()
    server.inject(Fault.QUOTA, path=api.INSERT_MANY_PATH, after=2, times=None)
    run(server, store, records())
    server.clear_faults()
    shuffled = records()
    random.Random(5).shuffle(shuffled)
    calls_before = server.calls(api.INSERT_MANY_PATH)

    second = run(server, store, shuffled, batch_size=7)

    assert {r.status for r in second} == {RecordStatus.CREATED}
    assert server.calls(api.INSERT_MANY_PATH) - calls_before == 2  # ceil(10 not created / 7)
    by_email = ids_by_email(server)
    assert [r.wolkvox_id for r in second] == [by_email[record["Email"]] for record in shuffled]


def test_a_rerun_after_success_sends_nothing_and_returns_the_same_ids(server: FakeWolkvoxServer) -> None:
    store = DictStateStore()
    first = run(server, store, records())
    calls_before = server.calls()

    second = run(server, store, records(), batch_size=4)

    assert server.calls() == calls_before
    assert [r.wolkvox_id for r in second] == [r.wolkvox_id for r in first]
    assert len(server.records("contacts")) == 30


def test_identical_records_are_counted_copy_by_copy() -> None:
    store = DictStateStore()
    same = {"Nombre": "Twin"}
    with FakeWolkvoxServer({TOKEN: OPERATION}) as server:
        run(server, store, [same, same])
        second = run(server, store, [same, same, same])
        assert [r.status for r in second] == [RecordStatus.CREATED] * 3
        assert len(server.records("contacts")) == 3  # the third copy is a record of its own


def test_each_request_is_noted_sending_before_it_goes_out(server: FakeWolkvoxServer) -> None:
    seen: list[tuple[int, list[str]]] = []

    class Recording(DictStateStore):
        def set(self, key: str, value: Any) -> None:
            seen.append((server.calls(api.INSERT_MANY_PATH), [row[1] for row in value["records"]]))
            super().set(key, value)

    recording = Recording()
    run(server, recording, records(20))

    # Note 0 says "sending" before the first call, then its outcome; note 1 likewise for the second.
    assert seen == [(0, [SENDING] * 10), (1, ["created"] * 10), (1, [SENDING] * 10), (2, ["created"] * 10)]
    assert sorted(recording.values) == [f"{KEY_PREFIX}0", f"{KEY_PREFIX}1"]


def sent_but_unanswered(store: DictStateStore, note: int) -> None:
    """As if the try had died while note ``note``'s request was in flight."""
    value = store.values[f"{KEY_PREFIX}{note}"]
    value["records"] = [[row[0], SENDING] for row in value["records"]]
    value.pop("answered_at")


def test_records_in_flight_when_a_try_died_are_found_in_one_window_not_resent(
    server: FakeWolkvoxServer,
) -> None:
    store = DictStateStore()
    first = run(server, store, records(20))
    sent_but_unanswered(store, 1)
    calls_before = {
        path: server.calls(path) for path in (api.INSERT_MANY_PATH, api.QUERY_PATH, api.QUERY_DATES_PATH)
    }

    second = run(server, store, records(20), dedupe_field="Email")

    assert [r.wolkvox_id for r in second] == [r.wolkvox_id for r in first]
    assert server.calls(api.INSERT_MANY_PATH) == calls_before[api.INSERT_MANY_PATH]
    # One look-up reads the CRM's clock off a record of the batch, one window shows the other nine.
    assert server.calls(api.QUERY_PATH) - calls_before[api.QUERY_PATH] == 1
    assert server.calls(api.QUERY_DATES_PATH) - calls_before[api.QUERY_DATES_PATH] == 1
    assert len(server.records("contacts")) == 20


def test_records_in_flight_when_a_try_died_are_named_not_resent_without_a_dedupe_field(
    server: FakeWolkvoxServer,
) -> None:
    store = DictStateStore()
    run(server, store, records(20))
    sent_but_unanswered(store, 1)

    second = run(server, store, records(20))

    assert [r.status for r in second] == [RecordStatus.CREATED] * 10 + [RecordStatus.OUTCOME_UNKNOWN] * 10
    assert all("earlier try" in (r.msg or "") for r in second[10:])
    assert server.calls(api.INSERT_MANY_PATH) == 2
    # And a third try still knows them as in doubt.
    third = run(server, store, records(20))
    assert [r.status for r in third[10:]] == [RecordStatus.OUTCOME_UNKNOWN] * 10
    assert len(server.records("contacts")) == 20


def test_a_batch_in_flight_that_never_reached_the_crm_is_sent_by_the_later_try(
    server: FakeWolkvoxServer,
) -> None:
    store = DictStateStore()
    server.inject(Fault.DROP_BEFORE, path=api.INSERT_MANY_PATH, after=1)
    first = run(server, store, records(20))
    assert [r.status for r in first[10:]] == [RecordStatus.OUTCOME_UNKNOWN] * 10
    assert len(server.records("contacts")) == 10

    second = run(server, store, records(20), dedupe_field="Email")

    assert [r.status for r in second] == [RecordStatus.CREATED] * 20
    by_email = ids_by_email(server)
    assert [r.wolkvox_id for r in second] == [by_email[f"c{n}@example.com"] for n in range(20)]


def test_a_file_whose_columns_moved_holds_the_same_records(server: FakeWolkvoxServer) -> None:
    store = DictStateStore()
    first = run(server, store, records(20))
    calls_before = server.calls()
    moved = [
        {"Email": record["Email"], "Nombre": record["Nombre"]} for record in records(20)
    ]  # columns swapped

    second = run(server, store, moved)

    assert server.calls() == calls_before
    assert [r.wolkvox_id for r in second] == [r.wolkvox_id for r in first]


def test_a_note_that_could_not_be_written_leaves_no_gap_in_the_notes() -> None:
    class FailingOnce(DictStateStore):
        failed = False

        def set(self, key: str, value: Any) -> None:
            if key == f"{KEY_PREFIX}1" and not self.failed:
                self.failed = True
                raise OSError("the API server is away")
            super().set(key, value)

    store = FailingOnce()
    journal = Journal(store)
    journal.settled(None, [("a:1", RecordResult(0, RecordStatus.CREATED, "id-a"))], sent_at=1.0)
    with pytest.raises(OSError, match="away"):
        journal.settled(None, [("b:1", RecordResult(1, RecordStatus.CREATED, "id-b"))], sent_at=2.0)
    journal.settled(None, [("c:1", RecordResult(2, RecordStatus.CREATED, "id-c"))], sent_at=3.0)

    later = Journal(store)  # reads notes 0, 1, ... up to the first missing one
    assert [later.recall(key) is not None for key in ("a:1", "b:1", "c:1")] == [True, False, True]
