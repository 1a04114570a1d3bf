"""Fault injection: what the client sees, and whether the server really stored and charged."""

from __future__ import annotations

import time
from typing import Any

import pytest
import requests

from airflow_provider_wolkvox.api import (
    ERROR_BAD_REQUEST,
    ERROR_FORBIDDEN,
    INSERT_MANY_PATH,
    INSERT_PATH,
    MSG_QUOTA_EXCEEDED,
    MSG_TOO_MANY_SIMULTANEOUS,
    QUERY_PATH,
)
from airflow_provider_wolkvox.testing import FakeWolkvoxServer, Fault
from tests.testing.helpers import MODULE, OPERATION, TOKEN, Api, envelope, wait_until

DROPPED = "connection closed without an answer"
TIMED_OUT = "read timeout"
# A read timeout well below the SLOW delay the tests inject.
SHORT_TIMEOUT = (2.0, 0.2)


class Containing:
    """Equal to any text that contains ``part``."""

    def __init__(self, part: str) -> None:
        self.part = part

    def __eq__(self, other: object) -> bool:
        return isinstance(other, str) and self.part in other

    def __repr__(self) -> str:
        return f"Containing({self.part!r})"


def observe(api: Api) -> str | tuple[int, Any]:
    """Insert one record and return what the client saw: the status and body, or what went wrong."""
    try:
        response = api.insert({"Name": "Ana"}, timeout=SHORT_TIMEOUT)
    except requests.ReadTimeout:
        return TIMED_OUT
    except requests.ConnectionError:
        return DROPPED
    try:
        return response.status_code, response.json()
    except ValueError:
        return response.status_code, response.text


@pytest.mark.parametrize(
    ("fault", "options", "seen"),
    [
        (Fault.RESPOND, {"status": 418, "body": {"teapot": True}}, (418, {"teapot": True})),
        (Fault.RESPOND, {"status": 502, "body": "<h1>Bad Gateway</h1>"}, (502, "<h1>Bad Gateway</h1>")),
        (Fault.DROP_BEFORE, {}, DROPPED),
        (Fault.STORE_THEN_DROP, {}, DROPPED),
        (Fault.STORE_THEN_500, {}, (500, envelope(500, "INTERNAL SERVER ERROR", Containing("")))),
        (Fault.SLOW, {"delay": 0.6}, TIMED_OUT),
        (Fault.NON_JSON_200, {}, (200, Containing("<html>"))),
        (
            Fault.ERROR_BODY_200,
            {},
            (200, {"code": 400, "error": ERROR_BAD_REQUEST, "msg": Containing(""), "data": []}),
        ),
        (Fault.MAINTENANCE, {}, (403, envelope(403, ERROR_FORBIDDEN, Containing("MAINTENANCE")))),
        (Fault.SIMULTANEOUS, {}, (403, envelope(403, ERROR_FORBIDDEN, MSG_TOO_MANY_SIMULTANEOUS))),
        (Fault.QUOTA, {}, (403, envelope(403, ERROR_FORBIDDEN, MSG_QUOTA_EXCEEDED))),
    ],
)
def test_fault(
    api: Api, server: FakeWolkvoxServer, fault: Fault, options: dict[str, Any], seen: str | tuple[int, Any]
) -> None:
    server.inject(fault, **options)

    assert observe(api) == seen
    assert observe(api)[0] == 200  # one request only
    server.stop()  # cuts a SLOW answer short, so that its request is logged

    # Logged in the order of their answers: a SLOW request comes last.
    [normal] = [entry for entry in server.request_log if entry.fault is None]
    [faulted] = [entry for entry in server.request_log if entry.fault is fault]
    assert len(faulted.ids) == server.record_count(MODULE) - 1 == int(fault.stores)
    assert server.records(MODULE)[0]["wolkvox_id"] == (faulted.ids + normal.ids)[0]
    assert server.quota_used(TOKEN) == 1 + int(fault.charges)


def test_faults_that_store_are_the_ones_that_process() -> None:
    assert {fault for fault in Fault if fault.stores} == {
        Fault.STORE_THEN_DROP,
        Fault.DROP_THEN_STORE,
        Fault.STORE_THEN_500,
        Fault.SLOW,
        Fault.NON_JSON_200,
    }
    assert {fault for fault in Fault if not fault.charges} == {
        Fault.DROP_BEFORE,
        Fault.MAINTENANCE,
        Fault.SIMULTANEOUS,
        Fault.QUOTA,
    }


def test_a_late_store_comes_after_the_dropped_answer(api: Api, server: FakeWolkvoxServer) -> None:
    server.inject(Fault.DROP_THEN_STORE, delay=0.3)

    assert observe(api) == DROPPED
    assert server.record_count(MODULE) == 0
    wait_until(lambda: bool(server.request_log))  # logged once the late store landed
    [stored] = server.records(MODULE)
    assert stored["Name"] == "Ana"
    assert server.quota_used(TOKEN) == 1
    [entry] = server.request_log
    assert (entry.fault, entry.ids) == (Fault.DROP_THEN_STORE, (stored["wolkvox_id"],))


def test_a_late_store_is_dropped_when_the_server_stops(api: Api, server: FakeWolkvoxServer) -> None:
    server.inject(Fault.DROP_THEN_STORE, delay=0.3)

    assert observe(api) == DROPPED
    server.stop()
    time.sleep(0.5)  # past the delay: a store still pending would have come by now
    assert server.record_count(MODULE) == 0
    [entry] = server.request_log
    assert (entry.fault, entry.ids) == (Fault.DROP_THEN_STORE, ())


def test_a_processing_fault_keeps_a_refusal_of_the_body(api: Api, server: FakeWolkvoxServer) -> None:
    server.inject(Fault.SLOW, delay=0.1)

    response = api.insert_many([{"Name": "a"}, {}])

    assert response.status_code == 400
    assert response.json()["msg"].startswith("RECORD 1: ")
    assert server.record_count(MODULE) == 0


def test_status_and_body_replace_the_canned_answer(api: Api, server: FakeWolkvoxServer) -> None:
    server.inject(Fault.MAINTENANCE, status=503)
    server.inject(Fault.ERROR_BODY_200, body={"code": 412, "error": "PRECONDITION FAILED"})

    maintenance = api.insert({"Name": "a"})
    error_body = api.insert({"Name": "a"})

    assert (maintenance.status_code, maintenance.json()["msg"]) == (503, Containing("MAINTENANCE"))
    assert (error_body.status_code, error_body.json()) == (200, {"code": 412, "error": "PRECONDITION FAILED"})


def test_scripted_faults_by_path_and_count(api: Api, server: FakeWolkvoxServer) -> None:
    server.inject(Fault.ERROR_BODY_200, path=INSERT_MANY_PATH, times=2)

    statuses = [
        api.insert({"Name": "a"}).json()["code"],
        api.insert_many([{"Name": "b"}]).json()["code"],
        api.query("Name", "a").json()["code"],
        api.insert_many([{"Name": "c"}]).json()["code"],
        api.insert_many([{"Name": "d"}]).json()["code"],
    ]

    assert statuses == [200, 400, "200", 400, 200]


def test_a_fault_after_some_requests_hits_the_middle_of_a_load(api: Api, server: FakeWolkvoxServer) -> None:
    server.inject(Fault.ERROR_BODY_200, path=INSERT_MANY_PATH, after=2)

    statuses = [
        api.insert({"Name": "a"}).json()["code"],
        api.insert_many([{"Name": "b"}]).json()["code"],
        api.insert_many([{"Name": "c"}]).json()["code"],
        api.insert_many([{"Name": "d"}]).json()["code"],
        api.insert_many([{"Name": "e"}]).json()["code"],
    ]

    assert statuses == [200, 200, 200, 400, 200]
    with pytest.raises(ValueError, match="after must not be negative"):
        server.inject(Fault.MAINTENANCE, after=-1)


def test_a_fault_without_count_lasts_until_cleared(api: Api, server: FakeWolkvoxServer) -> None:
    server.inject(Fault.MAINTENANCE, times=None)

    assert [api.insert({"Name": "a"}).status_code for _ in range(3)] == [403, 403, 403]
    server.clear_faults()
    assert api.insert({"Name": "a"}).status_code == 200


def test_refused_requests_draw_no_fault(api: Api, server: FakeWolkvoxServer) -> None:
    server.inject(Fault.ERROR_BODY_200)

    assert api.insert({"Name": "a"}, token="forged").status_code == 403
    assert api.insert({"Name": "a"}).json()["code"] == 400


def fault_sequence(seed: int, rate: float, faults: list[Fault] | None = None) -> list[Fault | None]:
    with FakeWolkvoxServer({TOKEN: OPERATION}) as fake, Api(fake) as api:
        fake.inject_random(rate, faults, seed=seed, path=INSERT_PATH)
        for _ in range(40):
            api.insert({"Name": "a"})
        api.query("Name", "a")
        return [entry.fault for entry in fake.request_log]


def test_random_faults_are_reproducible_with_a_seed() -> None:
    faults = [Fault.ERROR_BODY_200, Fault.MAINTENANCE, Fault.NON_JSON_200]

    first = fault_sequence(7, 0.5, faults)

    assert first == fault_sequence(7, 0.5, faults)
    assert set(first) == {None, *faults}
    assert first[-1] is None  # the query is on another path


def test_random_faults_at_the_extremes() -> None:
    assert set(fault_sequence(1, 0.0)) == {None}
    assert set(fault_sequence(1, 1.0, [Fault.QUOTA])[:-1]) == {Fault.QUOTA}


def test_random_faults_by_default_include_all_but_respond_and_the_late_store(
    server: FakeWolkvoxServer,
) -> None:
    server.inject_random(1.0, seed=3, delay=0.01)

    with Api(server) as api:
        for _ in range(60):
            observe(api)

    assert {entry.fault for entry in server.request_log} == set(Fault) - {
        Fault.RESPOND,
        Fault.DROP_THEN_STORE,
    }


@pytest.mark.parametrize(
    ("fault", "options"),
    [
        (Fault.RESPOND, {}),
        (Fault.RESPOND, {"status": 500}),
        (Fault.DROP_BEFORE, {"status": 500}),
        (Fault.SLOW, {"body": "late"}),
        (Fault.MAINTENANCE, {"delay": 1.0}),
        (Fault.QUOTA, {"times": 0}),
    ],
)
def test_inject_rejects_options_that_do_not_apply(
    server: FakeWolkvoxServer, fault: Fault, options: dict[str, Any]
) -> None:
    with pytest.raises(ValueError, match=r"status|body|delay|times"):
        server.inject(fault, **options)


@pytest.mark.parametrize(("rate", "faults"), [(1.5, None), (-0.1, None), (0.5, [])])
def test_inject_random_rejects_bad_arguments(
    server: FakeWolkvoxServer, rate: float, faults: list[Fault] | None
) -> None:
    with pytest.raises(ValueError, match=r"rate|faults"):
        server.inject_random(rate, faults)


def test_query_path_can_be_faulted(api: Api, server: FakeWolkvoxServer) -> None:
    server.inject(Fault.STORE_THEN_500, path=QUERY_PATH)

    assert api.query("Name", "a").status_code == 500
    assert server.request_log[-1].ids == ()
