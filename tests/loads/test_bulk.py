"""Bulk loads against the fake CRM over real HTTP: order, laziness, the gate, isolation, stops."""

from __future__ import annotations

import datetime
import logging
import threading
from collections.abc import Iterator

import pytest

from airflow_provider_wolkvox import api
from airflow_provider_wolkvox.client import RetryPolicy, WolkvoxClient
from airflow_provider_wolkvox.exceptions import (
    WolkvoxInputError,
    WolkvoxQuotaExceededError,
    WolkvoxUnreadableIdError,
)
from airflow_provider_wolkvox.loads import BulkLoad, LoadOptions, RecordResult, RecordStatus
from airflow_provider_wolkvox.testing import FakeWolkvoxServer, Fault
from tests.conftest import LOST_ANSWER_TIMEOUT, OPERATION, TOKEN, simultaneous_refusals
from tests.testing.helpers import wait_until

FAST_RETRIES = RetryPolicy(max_attempts=6, base_delay=0.001, max_delay=0.01)


def contacts(count: int, start: int = 0) -> list[dict[str, object]]:
    return [{"Nombre": f"Contacto {n}", "Email": f"c{n}@example.com"} for n in range(start, start + count)]


@pytest.fixture
def server() -> Iterator[FakeWolkvoxServer]:
    with FakeWolkvoxServer({TOKEN: OPERATION}, unique_fields={"contacts": ["Email"]}) as fake:
        yield fake


@pytest.fixture
def client(server: FakeWolkvoxServer) -> Iterator[WolkvoxClient]:
    with fast_client(server) as wolkvox:
        yield wolkvox


def fast_client(server: FakeWolkvoxServer) -> WolkvoxClient:
    """A client with quick retries and a short timeout, for loads that meet faults on purpose."""
    return WolkvoxClient(server.url, TOKEN, timeout=LOST_ANSWER_TIMEOUT, retry_policy=FAST_RETRIES)


def load(client: WolkvoxClient, records: object, total: int | None = None, **options: object) -> BulkLoad:
    return BulkLoad(client, OPERATION, "contacts", records, LoadOptions(**options), total=total)  # type: ignore[arg-type]


def stored_ids(server: FakeWolkvoxServer) -> list[str]:
    return [record["wolkvox_id"] for record in server.records("contacts")]


def test_batches_return_every_record_in_input_order(server: FakeWolkvoxServer, client: WolkvoxClient) -> None:
    bulk = load(client, contacts(1050), batch_size=100)
    results = list(bulk)

    assert [r.index for r in results] == list(range(1050))
    assert all(r.status is RecordStatus.CREATED for r in results)
    by_email = {record["Email"]: record["wolkvox_id"] for record in server.records("contacts")}
    assert [r.wolkvox_id for r in results] == [by_email[f"c{n}@example.com"] for n in range(1050)]
    assert len(set(stored_ids(server))) == 1050
    assert server.calls(api.INSERT_MANY_PATH) == 11
    assert bulk.summary.calls == 11
    assert bulk.summary.counts[RecordStatus.CREATED] == 1050
    assert bulk.summary.failed == 0


def test_twenty_thousand_records_are_stored_once_with_ids_in_input_order(
    server: FakeWolkvoxServer, client: WolkvoxClient
) -> None:
    server.latency = 0.001  # enough for both request slots to be busy at once
    results = list(load(client, contacts(20_000), batch_size=100))

    stored = server.records("contacts")
    assert len(stored) == 20_000
    assert len({record["Email"] for record in stored}) == 20_000  # no duplicates
    by_email = {record["Email"]: record["wolkvox_id"] for record in stored}
    assert [(r.index, r.status) for r in results] == [(n, RecordStatus.CREATED) for n in range(20_000)]
    assert [r.wolkvox_id for r in results] == [by_email[f"c{n}@example.com"] for n in range(20_000)]
    assert server.calls(api.INSERT_MANY_PATH) == 200
    assert server.max_in_flight(TOKEN) == api.MAX_IN_FLIGHT_PER_TOKEN
    assert simultaneous_refusals(server) == 0


def test_single_mode_sends_one_insert_per_record(server: FakeWolkvoxServer, client: WolkvoxClient) -> None:
    results = list(load(client, contacts(25), single=True, batch_size=10))

    assert [r.index for r in results] == list(range(25))
    assert server.calls(api.INSERT_PATH) == 25
    assert server.calls(api.INSERT_MANY_PATH) == 0
    by_email = {record["Email"]: record["wolkvox_id"] for record in server.records("contacts")}
    assert [r.wolkvox_id for r in results] == [by_email[f"c{n}@example.com"] for n in range(25)]
    assert simultaneous_refusals(server) == 0


def test_single_mode_fills_both_slots_within_one_chunk(
    server: FakeWolkvoxServer, client: WolkvoxClient
) -> None:
    # Fewer records than one chunk: its records, not just its chunks, share the 2 request slots.
    server.latency = 0.05
    results = list(load(client, contacts(6), single=True, batch_size=100))

    assert [(r.index, r.status) for r in results] == [(n, RecordStatus.CREATED) for n in range(6)]
    assert server.calls(api.INSERT_PATH) == 6
    assert server.max_in_flight(TOKEN) == api.MAX_IN_FLIGHT_PER_TOKEN


def test_input_is_read_lazily(server: FakeWolkvoxServer, client: WolkvoxClient) -> None:
    batch_size, max_in_flight = 10, 2
    window = (max_in_flight + 1) * batch_size
    settled = 0

    def records() -> Iterator[dict[str, object]]:
        for n in range(200):
            if n - settled >= window + batch_size:
                raise AssertionError(f"record {n} read while only {settled} had settled")
            yield {"Nombre": f"n{n}", "Email": f"lazy{n}@example.com"}

    for result in load(client, records(), batch_size=batch_size, max_in_flight=max_in_flight):
        settled = result.index + 1
    assert settled == 200
    assert len(server.records("contacts")) == 200


def test_the_token_gate_holds_across_hooks_and_threads(server: FakeWolkvoxServer) -> None:
    server.latency = 0.01
    errors: list[BaseException] = []

    def run(part: int) -> None:
        try:
            with fast_client(server) as own_client:
                results = list(load(own_client, contacts(300, start=part * 300), batch_size=20))
                assert all(r.status is RecordStatus.CREATED for r in results)
        except BaseException as exc:  # reported below, in the test's thread
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(part,)) for part in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not errors
    assert len(server.records("contacts")) == 900
    assert server.max_in_flight(TOKEN) == api.MAX_IN_FLIGHT_PER_TOKEN
    refused = [e for e in server.request_log if e.status == 403]
    assert refused == []


def test_rejected_records_are_isolated_and_the_rest_created(
    server: FakeWolkvoxServer, client: WolkvoxClient, caplog: pytest.LogCaptureFixture
) -> None:
    list(
        load(
            client,
            [{"Nombre": "old", "Email": "c3@example.com"}, {"Nombre": "old", "Email": "c7@example.com"}],
        )
    )
    with caplog.at_level(logging.INFO):
        results = list(load(client, contacts(10), batch_size=10))

    rejected = [r for r in results if r.status is RecordStatus.REJECTED]
    assert [r.index for r in rejected] == [3, 7]
    assert all(r.error == api.ERROR_BAD_REQUEST and "Email" in (r.msg or "") for r in rejected)
    assert [r.status for r in results].count(RecordStatus.CREATED) == 8
    assert sorted(record["Email"] for record in server.records("contacts")) == sorted(
        f"c{n}@example.com" for n in range(10)
    )
    assert "splitting it to isolate the rejected records" in caplog.text


def test_quota_spent_stops_the_load_and_marks_the_rest_not_sent(client: WolkvoxClient) -> None:
    with FakeWolkvoxServer({TOKEN: OPERATION}, quota=5) as small, WolkvoxClient(small.url, TOKEN) as limited:
        # One batch at a time, so that the quota runs out at a known batch.
        bulk = load(limited, contacts(1000), batch_size=100, max_in_flight=1)
        results = list(bulk)
        stored = len(small.records("contacts"))

    assert stored == 500
    assert [r.status for r in results[:500]] == [RecordStatus.CREATED] * 500
    assert [r.status for r in results[500:]] == [RecordStatus.NOT_SENT] * 500
    assert isinstance(bulk.stop_error, WolkvoxQuotaExceededError)
    assert api.MSG_QUOTA_EXCEEDED in (bulk.summary.stopped_reason or "")
    assert bulk.summary.calls == 6  # stopped at once: the refused call is the last one


def test_quota_spent_in_single_mode_stops_within_a_chunk() -> None:
    with FakeWolkvoxServer({TOKEN: OPERATION}, quota=5) as small, WolkvoxClient(small.url, TOKEN) as limited:
        results = list(load(limited, contacts(30), single=True, batch_size=10, max_in_flight=1))
        stored = len(small.records("contacts"))
        calls = small.calls(api.INSERT_PATH)

    assert stored == 5
    assert [r.status for r in results] == [RecordStatus.CREATED] * 5 + [RecordStatus.NOT_SENT] * 25
    assert calls == 6  # five created, one refused, then nothing more


def test_quota_spent_in_single_mode_with_both_slots_busy_stops_the_load() -> None:
    with FakeWolkvoxServer({TOKEN: OPERATION}, quota=5) as small, WolkvoxClient(small.url, TOKEN) as limited:
        bulk = load(limited, contacts(30), single=True, batch_size=10)
        results = list(bulk)
        stored = small.records("contacts")
        calls = small.calls(api.INSERT_PATH)

    assert [r.index for r in results] == list(range(30))
    created = [r for r in results if r.status is RecordStatus.CREATED]
    assert len(created) == len(stored) == 5
    assert {r.wolkvox_id for r in created} == {record["wolkvox_id"] for record in stored}
    assert [r.status for r in results].count(RecordStatus.NOT_SENT) == 25
    assert calls <= 5 + api.MAX_IN_FLIGHT_PER_TOKEN  # at most one refused call per request slot
    assert isinstance(bulk.stop_error, WolkvoxQuotaExceededError)


def test_unmatched_batch_answer_reports_created_with_unknown_ids(
    server: FakeWolkvoxServer, client: WolkvoxClient
) -> None:
    server.insert_many_ids = False
    results = list(load(client, contacts(30), batch_size=10))

    assert [r.status for r in results] == [RecordStatus.CREATED_ID_UNKNOWN] * 30
    assert all(r.wolkvox_id is None for r in results)
    assert len(server.records("contacts")) == 30


def test_lost_answer_is_unknown_without_dedupe_field(
    server: FakeWolkvoxServer, client: WolkvoxClient
) -> None:
    server.inject(Fault.STORE_THEN_DROP, path=api.INSERT_MANY_PATH)
    # One batch at a time, so that the fault hits the first batch.
    results = list(load(client, contacts(30), batch_size=10, max_in_flight=1))

    assert [r.status for r in results[:10]] == [RecordStatus.OUTCOME_UNKNOWN] * 10
    assert all("outcome is unknown" in (r.msg or "") for r in results[:10])
    assert [r.status for r in results[10:]] == [RecordStatus.CREATED] * 20
    assert len(server.records("contacts")) == 30  # the truth: the lost batch was stored


def test_lost_answer_is_settled_by_the_dedupe_field(server: FakeWolkvoxServer, client: WolkvoxClient) -> None:
    server.inject(Fault.STORE_THEN_DROP, path=api.INSERT_MANY_PATH)
    server.inject(Fault.DROP_BEFORE, path=api.INSERT_MANY_PATH)
    results = list(load(client, contacts(30), batch_size=10, dedupe_field="Email"))

    assert all(r.status is RecordStatus.CREATED for r in results)
    by_email = {record["Email"]: record["wolkvox_id"] for record in server.records("contacts")}
    assert len(server.records("contacts")) == 30
    assert [r.wolkvox_id for r in results] == [by_email[f"c{n}@example.com"] for n in range(30)]


def calls_by_endpoint(server: FakeWolkvoxServer) -> dict[str, int]:
    paths = (api.INSERT_MANY_PATH, api.QUERY_PATH, api.QUERY_DATES_PATH)
    return {path.rsplit("/", 1)[-1]: server.calls(path) for path in paths}


@pytest.mark.parametrize(
    ("fault", "calls"),
    [
        # Stored, answer lost: one look-up reads the CRM's clock off batch 1, one window finds batch 3.
        (Fault.STORE_THEN_DROP, {"insertMany.php": 5, "query.php": 1, "queryDates.php": 1}),
        # Never stored: the window holds none of them, one look-up confirms it, batch 3 is sent again.
        (Fault.DROP_BEFORE, {"insertMany.php": 6, "query.php": 2, "queryDates.php": 1}),
    ],
)
def test_a_lost_batch_is_settled_by_one_window_on_the_crm_clock(fault: Fault, calls: dict[str, int]) -> None:
    # The CRM's clock is 5 h behind UTC (the fake's default): the window must be placed on it.
    with FakeWolkvoxServer({TOKEN: OPERATION}, utc_offset_hours=-5) as server:
        server.inject(fault, path=api.INSERT_MANY_PATH, after=2)
        with fast_client(server) as wolkvox:
            results = list(load(wolkvox, contacts(50), batch_size=10, max_in_flight=1, dedupe_field="Email"))
        stored = server.records("contacts")
        assert calls_by_endpoint(server) == calls
    by_email = {record["Email"]: record["wolkvox_id"] for record in stored}
    assert len(by_email) == len(stored) == 50
    assert [r.wolkvox_id for r in results] == [by_email[f"c{n}@example.com"] for n in range(50)]


def test_records_of_a_lost_answer_are_looked_up_only_once_the_request_timeout_has_passed(
    server: FakeWolkvoxServer, client: WolkvoxClient
) -> None:
    # The answer is lost at once, but the CRM stores the batch half the timeout later: a look-up
    # before the request's timeout would find nothing and send the batch again.
    server.inject(Fault.DROP_THEN_STORE, path=api.INSERT_MANY_PATH, after=1, delay=LOST_ANSWER_TIMEOUT / 2)
    results = list(load(client, contacts(30), batch_size=10, max_in_flight=1, dedupe_field="Email"))

    stored = server.records("contacts")
    by_email = {record["Email"]: record["wolkvox_id"] for record in stored}
    assert len(by_email) == len(stored) == 30
    assert [r.wolkvox_id for r in results] == [by_email[f"c{n}@example.com"] for n in range(30)]
    assert {r.status for r in results} == {RecordStatus.CREATED}
    assert calls_by_endpoint(server) == {"insertMany.php": 3, "query.php": 1, "queryDates.php": 1}


def test_later_lost_batches_cost_one_window_each_once_the_clock_is_known(server: FakeWolkvoxServer) -> None:
    server.inject(Fault.STORE_THEN_500, path=api.INSERT_MANY_PATH, after=1)
    server.inject(Fault.STORE_THEN_DROP, path=api.INSERT_MANY_PATH, after=2)
    with fast_client(server) as wolkvox:
        results = list(load(wolkvox, contacts(60), batch_size=10, max_in_flight=1, dedupe_field="Email"))

    assert {r.status for r in results} == {RecordStatus.CREATED}
    assert calls_by_endpoint(server) == {"insertMany.php": 6, "query.php": 1, "queryDates.php": 2}
    assert len(server.records("contacts")) == 60


def test_a_window_too_dense_to_read_whole_falls_back_to_one_look_up_per_record(
    server: FakeWolkvoxServer, client: WolkvoxClient
) -> None:
    # 1,500 records created in the same second as the load: no answer of 1,000 can show them all.
    server.add_records("contacts", [{"Nombre": f"otro {n}"} for n in range(1500)])
    server.inject(Fault.STORE_THEN_DROP, path=api.INSERT_MANY_PATH, after=1)
    results = list(load(client, contacts(20), batch_size=10, max_in_flight=1, dedupe_field="Email"))

    assert {r.status for r in results} == {RecordStatus.CREATED}
    calls = calls_by_endpoint(server)
    assert calls["insertMany.php"] == 2
    assert calls["query.php"] == 1 + 10  # the clock's reference, then each record of the lost batch
    assert 1 <= calls["queryDates.php"] <= 5  # pages of the window until it proves unreadable
    by_email = {
        record["Email"]: record["wolkvox_id"] for record in server.records("contacts") if "Email" in record
    }
    assert [r.wolkvox_id for r in results] == [by_email[f"c{n}@example.com"] for n in range(20)]


def test_progress_is_logged(client: WolkvoxClient, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO):
        list(load(client, contacts(50), batch_size=5, progress_interval=0))
    assert "wolkvox load of 'contacts': " in caplog.text
    assert "/50 records (" in caplog.text
    assert "50/50 records (100.0 %)" in caplog.text
    assert "/50 records (10.0 %), " in caplog.text
    assert "records/s, ETA " in caplog.text


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"batch_size": 0}, "batch_size must be an integer from 1 to 10000, got 0"),
        ({"batch_size": 10_001}, "batch_size must be an integer from 1 to 10000, got 10001"),
        ({"batch_size": "100"}, "batch_size must be an integer from 1 to 10000, got '100'"),
        ({"max_in_flight": 3}, "max_in_flight must be 1 or 2 (the CRM's limit per token), got 3"),
        ({"max_in_flight": 0}, "max_in_flight must be 1 or 2 (the CRM's limit per token), got 0"),
    ],
)
def test_out_of_range_options_are_refused_before_any_request(
    server: FakeWolkvoxServer, client: WolkvoxClient, options: dict, message: str
) -> None:
    with pytest.raises(WolkvoxInputError) as raised:
        load(client, contacts(3), **options)
    assert str(raised.value) == message
    assert server.calls() == 0


def test_a_bad_record_in_a_list_stops_everything_before_sending(
    server: FakeWolkvoxServer, client: WolkvoxClient
) -> None:
    records = [*contacts(5), {"Nombre": b"bytes"}, *contacts(5, start=5)]
    with pytest.raises(WolkvoxInputError, match="record 5: field 'Nombre': a bytes value cannot be sent"):
        load(client, records)
    assert server.calls() == 0


@pytest.mark.parametrize("records", [42, "Nombre,Email", {"Nombre": "Ana"}, None])
def test_records_that_are_not_an_iterable_of_mappings_are_refused(
    client: WolkvoxClient, records: object
) -> None:
    with pytest.raises(WolkvoxInputError, match="records must be an iterable of mappings, got"):
        load(client, records)


def test_a_bad_record_in_a_stream_reports_the_records_before_it(
    server: FakeWolkvoxServer, client: WolkvoxClient
) -> None:
    def records() -> Iterator[dict[str, object]]:
        yield from contacts(230)
        yield {"Nombre": b"bytes"}

    seen: list[RecordResult] = []
    with pytest.raises(WolkvoxInputError, match="record 230: field 'Nombre'"):
        seen.extend(load(client, records(), batch_size=100))
    # The two batches in flight when the bad record was read still report; the third never went out.
    assert [r.index for r in seen] == list(range(200))
    assert all(r.status is RecordStatus.CREATED for r in seen)
    assert len(server.records("contacts")) == 200


def test_a_failed_look_up_is_tried_again(server: FakeWolkvoxServer, client: WolkvoxClient) -> None:
    # The batch is stored but its answer lost; the first look-up is refused inside an HTTP 200.
    server.inject(Fault.STORE_THEN_DROP, path=api.INSERT_MANY_PATH)
    server.inject(Fault.ERROR_BODY_200, path=api.QUERY_PATH)
    results = list(load(client, contacts(10), batch_size=10, dedupe_field="Email"))

    by_email = {record["Email"]: record["wolkvox_id"] for record in server.records("contacts")}
    assert [r.status for r in results] == [RecordStatus.CREATED] * 10
    assert [r.wolkvox_id for r in results] == [by_email[f"c{n}@example.com"] for n in range(10)]
    assert server.calls(api.QUERY_PATH) == 11


@pytest.mark.parametrize(
    ("already_stored", "max_calls"),
    [
        ([37], 15),  # one bad record in 100: halving finds it in about 2·log2(100) calls
        (list(range(100)), 110),  # a load run again: every record is refused, about one call each
    ],
    ids=["sparse", "dense"],
)
def test_isolating_rejected_records_is_frugal_with_the_quota(
    server: FakeWolkvoxServer, client: WolkvoxClient, already_stored: list[int], max_calls: int
) -> None:
    list(load(client, [contacts(100)[n] for n in already_stored], batch_size=100))
    calls_before = server.calls(api.INSERT_MANY_PATH)

    results = list(load(client, contacts(100), batch_size=100, max_in_flight=1))

    assert [r.index for r in results if r.status is RecordStatus.REJECTED] == already_stored
    assert len(server.records("contacts")) == 100
    assert server.calls(api.INSERT_MANY_PATH) - calls_before <= max_calls


@pytest.mark.parametrize(
    "refusal",
    [
        {"code": 400, "error": "BAD REQUEST", "msg": "Some parameters are required"},
        {"code": 404, "error": "NOT FOUND", "msg": "NO SUCH MODULE"},
    ],
    ids=["missing-parameters-lower-case", "404"],
)
def test_a_refusal_of_the_request_itself_stops_without_splitting(
    server: FakeWolkvoxServer, client: WolkvoxClient, refusal: dict
) -> None:
    server.inject(Fault.RESPOND, status=refusal["code"], body=refusal, times=None)
    bulk = load(client, contacts(100), batch_size=100)
    results = list(bulk)

    assert {r.status for r in results} == {RecordStatus.NOT_SENT}
    assert server.calls(api.INSERT_MANY_PATH) == 1
    assert bulk.stop_error is not None


def test_a_refusal_of_the_request_itself_stops_a_load_of_single_inserts(
    server: FakeWolkvoxServer, client: WolkvoxClient
) -> None:
    # A 404 refuses the endpoint, not the record: every later insert would meet it too.
    body = {"code": 404, "error": "NOT FOUND", "msg": "THE PAGE DOES NOT EXIST", "data": []}
    server.inject(Fault.RESPOND, path=api.INSERT_PATH, status=404, body=body)
    bulk = load(client, contacts(5), single=True, max_in_flight=1)
    results = list(bulk)

    assert [r.status for r in results] == [RecordStatus.NOT_SENT] * 5
    assert server.calls(api.INSERT_PATH) == 1
    assert server.records("contacts") == []
    assert "THE PAGE DOES NOT EXIST" in (bulk.summary.stopped_reason or "")


def test_an_answered_error_is_looked_up_at_once(
    server: FakeWolkvoxServer, caplog: pytest.LogCaptureFixture
) -> None:
    # The CRM answered 500 after storing: it is done with the request, so nothing is worth waiting for.
    server.inject(Fault.STORE_THEN_500, path=api.INSERT_MANY_PATH, after=1)
    patient = WolkvoxClient(server.url, TOKEN, timeout=30, retry_policy=FAST_RETRIES)
    with patient, caplog.at_level(logging.INFO):
        results = list(load(patient, contacts(30), batch_size=10, max_in_flight=1, dedupe_field="Email"))

    assert {r.status for r in results} == {RecordStatus.CREATED}
    assert len(server.records("contacts")) == 30
    assert "waiting" not in caplog.text


def test_a_failed_confirmation_leaves_the_records_unknown_not_sent_again(server: FakeWolkvoxServer) -> None:
    # Batch 3 never reached the CRM, but every look-up after the clock's reference fails: nothing
    # proves the batch absent, so it is not sent again.
    server.inject(Fault.DROP_BEFORE, path=api.INSERT_MANY_PATH, after=2)
    failure = {"code": 500, "error": "INTERNAL SERVER ERROR", "msg": "", "data": []}
    server.inject(Fault.RESPOND, path=api.QUERY_PATH, after=1, times=None, status=500, body=failure)
    with fast_client(server) as wolkvox:
        results = list(load(wolkvox, contacts(50), batch_size=10, max_in_flight=1, dedupe_field="Email"))

    assert [r.status for r in results[20:30]] == [RecordStatus.OUTCOME_UNKNOWN] * 10
    assert {r.status for r in results[:20] + results[30:]} == {RecordStatus.CREATED}
    assert server.calls(api.INSERT_MANY_PATH) == 5
    assert len(server.records("contacts")) == 40


def test_a_window_misplaced_by_a_clock_change_is_caught_by_the_confirmation(
    server: FakeWolkvoxServer,
) -> None:
    def records() -> Iterator[dict[str, object]]:
        for n, record in enumerate(contacts(50)):
            if n == 20:  # batch 3's first: batches 1 and 2 (the clock's reference, the last) are stored
                wait_until(lambda: server.calls(api.INSERT_MANY_PATH) >= 2)
                # The CRM's clock moves 2 h (through the fake's private clock: there is no public knob).
                server._clock._zone = datetime.timezone(datetime.timedelta(hours=-3))
            yield record

    server.inject(Fault.STORE_THEN_DROP, path=api.INSERT_MANY_PATH, after=2)
    with fast_client(server) as wolkvox:
        results = list(load(wolkvox, records(), batch_size=10, max_in_flight=1, dedupe_field="Email"))

    stored = server.records("contacts")
    by_email = {record["Email"]: record["wolkvox_id"] for record in stored}
    assert len(by_email) == len(stored) == 50
    assert [r.wolkvox_id for r in results] == [by_email[f"c{n}@example.com"] for n in range(50)]
    # The reference, the confirmation that finds the first record, then one look-up for each other.
    assert calls_by_endpoint(server) == {"insertMany.php": 5, "query.php": 1 + 1 + 9, "queryDates.php": 1}


def test_one_id_given_for_every_record_of_a_batch_is_no_id(
    server: FakeWolkvoxServer, client: WolkvoxClient
) -> None:
    same = {"wolkvox_id": "64cb1f0e2a9d4c0012ab34cd"}
    server.inject(
        Fault.RESPOND, status=200, body={"code": 200, "error": "null", "msg": "ok", "data": [same] * 3}
    )
    results = list(load(client, contacts(3), batch_size=3))

    assert [(r.status, r.wolkvox_id) for r in results] == [(RecordStatus.CREATED_ID_UNKNOWN, None)] * 3


HOSTILE_ID = "../../etc\nFAKE LOG LINE"


def hostile_id_answer(server: FakeWolkvoxServer) -> None:
    server.inject(
        Fault.RESPOND,
        status=200,
        body={"code": 200, "error": "null", "msg": "ok", "data": {"wolkvox_id": HOSTILE_ID}},
        path=api.INSERT_PATH,
    )


def test_a_single_insert_with_an_unreadable_id_is_created_and_never_sent_again(
    server: FakeWolkvoxServer, client: WolkvoxClient, caplog: pytest.LogCaptureFixture
) -> None:
    hostile_id_answer(server)
    [result] = load(client, contacts(1), single=True)

    assert result.status is RecordStatus.CREATED_ID_UNKNOWN
    assert result.wolkvox_id is None
    assert isinstance(result.cause, WolkvoxUnreadableIdError)
    assert server.calls(api.INSERT_PATH) == 1
    assert "\nFAKE LOG LINE" not in caplog.text  # quoted escaped, never as a line of its own


def test_a_single_insert_with_an_unreadable_id_is_looked_up_by_the_dedupe_field(
    server: FakeWolkvoxServer, client: WolkvoxClient
) -> None:
    [first] = load(client, contacts(1), single=True)
    hostile_id_answer(server)  # the CRM stored the record (as the first call did), then answered badly
    [result] = load(client, contacts(1), single=True, dedupe_field="Email")

    assert (result.status, result.wolkvox_id) == (RecordStatus.CREATED, first.wolkvox_id)
    assert stored_ids(server) == [first.wolkvox_id]
    assert (server.calls(api.INSERT_PATH), server.calls(api.QUERY_PATH)) == (2, 1)
