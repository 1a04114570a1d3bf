"""Every fault of the fake CRM against insert and insert_many, over real HTTP.

After each scenario the invariant is checked against the fake's store: every input record is in
exactly one state (created: stored once, with the returned id; rejected or not sent: not stored;
outcome unknown: named, and stored at most once), and with ``dedupe_field`` no scenario leaves a
duplicate or an unknown.
"""

from __future__ import annotations

import functools
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest

from airflow_provider_wolkvox import api
from airflow_provider_wolkvox.exceptions import (
    WolkvoxBadRequestError,
    WolkvoxError,
    WolkvoxOutcomeUnknownError,
    WolkvoxQuotaExceededError,
)
from airflow_provider_wolkvox.hooks.wolkvox import WolkvoxHook
from airflow_provider_wolkvox.loads import RecordResult, RecordStatus
from airflow_provider_wolkvox.testing import CONN_ENV_VAR, FakeWolkvoxServer, Fault
from tests.conftest import LOST_ANSWER_TIMEOUT, OPERATION, TOKEN
from tests.testing.helpers import wait_until

MODULE = "contacts"
RECORDS = [{"Nombre": f"Contacto {n}", "Email": f"c{n}@example.com"} for n in range(30)]
# The client's read timeout; the SLOW fault holds its answer longer.
TIMEOUT = LOST_ANSWER_TIMEOUT


def fault_kwargs(fault: Fault) -> dict[str, Any]:
    if fault is Fault.RESPOND:
        return {"status": 400, "body": {"code": 400, "error": "BAD REQUEST", "msg": "INVALID RECORD"}}
    if fault is Fault.SLOW:
        return {"delay": TIMEOUT * 3}
    if fault is Fault.DROP_THEN_STORE:  # stored before the request's timeout is over
        return {"delay": TIMEOUT / 2}
    return {}


def wait_for_late_store(server: FakeWolkvoxServer, fault: Fault, count: int) -> None:
    """Give a DROP_THEN_STORE fault's store, which comes after the client saw the answer lost, time to
    land (a few seconds at most) before the store is compared."""
    if fault is Fault.DROP_THEN_STORE:
        wait_until(lambda: server.record_count(MODULE) >= count)


FAULTS = list(Fault)


@pytest.fixture
def server(monkeypatch: pytest.MonkeyPatch, fast_retries: object) -> Iterator[FakeWolkvoxServer]:
    with FakeWolkvoxServer({TOKEN: OPERATION}) as fake:
        monkeypatch.setenv(CONN_ENV_VAR, fake.airflow_connection(timeout=TIMEOUT))
        yield fake


def stored_by_email(server: FakeWolkvoxServer) -> dict[str, list[str]]:
    ids: dict[str, list[str]] = {}
    for record in server.records(MODULE):
        ids.setdefault(record["Email"], []).append(record["wolkvox_id"])
    return ids


def check_invariant(results: list[RecordResult], server: FakeWolkvoxServer, *, dedupe: bool) -> Counter[str]:
    """Assert the one-state-per-record invariant against the fake's store; return the state counts."""
    assert [r.index for r in results] == list(range(len(RECORDS)))
    stored = stored_by_email(server)
    assert set(stored) <= {record["Email"] for record in RECORDS}, "the CRM holds records nobody sent"
    for result in results:
        copies = stored.get(RECORDS[result.index]["Email"], [])
        if result.status is RecordStatus.CREATED:
            assert copies == [result.wolkvox_id], f"record {result.index}"
        elif result.status is RecordStatus.CREATED_ID_UNKNOWN:
            assert len(copies) == 1
        elif result.status in (RecordStatus.REJECTED, RecordStatus.NOT_SENT):
            assert copies == [], f"record {result.index} is {result.status.value} but stored"
            assert result.msg
        else:
            assert result.status is RecordStatus.OUTCOME_UNKNOWN
            assert len(copies) <= 1
            assert "outcome is unknown" in (result.msg or "")
    if dedupe:
        assert all(len(copies) == 1 for copies in stored.values())
        assert not any(r.status is RecordStatus.OUTCOME_UNKNOWN for r in results)
    return Counter(r.status.value for r in results)


@pytest.mark.parametrize("dedupe", [False, True], ids=["plain", "dedupe"])
@pytest.mark.parametrize("fault", FAULTS, ids=[f.value for f in FAULTS])
def test_insert_many_keeps_the_invariant(server: FakeWolkvoxServer, fault: Fault, dedupe: bool) -> None:
    # The fault hits the second of three batches (sent one at a time, so the second is batch 2).
    server.inject(fault, path=api.INSERT_MANY_PATH, after=1, **fault_kwargs(fault))
    result = WolkvoxHook().insert_many(
        MODULE, RECORDS, batch_size=10, max_in_flight=1, dedupe_field="Email" if dedupe else None
    )

    wait_for_late_store(server, fault, len(RECORDS))
    counts = check_invariant(result.results, server, dedupe=dedupe)
    hit = result.results[10:20]
    if fault in (Fault.SIMULTANEOUS, Fault.MAINTENANCE, Fault.RESPOND, Fault.ERROR_BODY_200) or (
        dedupe and fault is not Fault.QUOTA
    ):
        # Retried (refusals), isolated by splitting (4xx once), or settled by looking the records up.
        assert counts == {"created": 30}
    elif fault is Fault.QUOTA:
        assert {r.status for r in hit} == {RecordStatus.NOT_SENT}
        assert api.MSG_QUOTA_EXCEEDED in (result.summary.stopped_reason or "")
    else:
        assert {r.status for r in hit} == {RecordStatus.OUTCOME_UNKNOWN}
        assert len(stored_by_email(server)) == 30 if fault.stores else 20


def test_quota_running_out_mid_load(monkeypatch: pytest.MonkeyPatch) -> None:
    with FakeWolkvoxServer({TOKEN: OPERATION}, quota=2) as fake:
        monkeypatch.setenv(CONN_ENV_VAR, fake.airflow_connection())
        result = WolkvoxHook().insert_many(MODULE, RECORDS, batch_size=10, max_in_flight=1)
        counts = check_invariant(result.results, fake, dedupe=False)
    assert counts == {"created": 20, "not_sent": 10}


def test_connection_refused_leaves_everything_not_sent(
    monkeypatch: pytest.MonkeyPatch, fast_retries: object
) -> None:
    with FakeWolkvoxServer({TOKEN: OPERATION}) as fake:
        connection, url = fake.airflow_connection(), fake.url
    # The server is gone: its port refuses connections.
    monkeypatch.setenv(CONN_ENV_VAR, connection)
    result = WolkvoxHook().insert_many(MODULE, RECORDS, batch_size=10)
    assert Counter(r.status for r in result.results) == {RecordStatus.NOT_SENT: 30}
    assert f"insertMany.php at {url} (module 'contacts'): could not connect" in (
        result.summary.stopped_reason or ""
    )


LOST_ANSWERS = {
    Fault.DROP_BEFORE,
    Fault.STORE_THEN_DROP,
    Fault.DROP_THEN_STORE,
    Fault.STORE_THEN_500,
    Fault.SLOW,
    Fault.NON_JSON_200,
}


def insert_outcome(fault: Fault, dedupe: bool) -> type[WolkvoxError] | None:
    """What a single insert hit by ``fault`` raises; None when it creates the record."""
    if fault in (Fault.RESPOND, Fault.ERROR_BODY_200):
        return WolkvoxBadRequestError
    if fault is Fault.QUOTA:
        return WolkvoxQuotaExceededError
    if fault in LOST_ANSWERS and not dedupe:
        return WolkvoxOutcomeUnknownError
    return None  # refusals are retried; lost answers are settled by the dedupe field


@pytest.mark.parametrize("dedupe", [False, True], ids=["plain", "dedupe"])
@pytest.mark.parametrize("fault", FAULTS, ids=[f.value for f in FAULTS])
def test_insert_keeps_the_invariant(server: FakeWolkvoxServer, fault: Fault, dedupe: bool) -> None:
    server.inject(fault, path=api.INSERT_PATH, **fault_kwargs(fault))
    record = RECORDS[0]
    insert = functools.partial(WolkvoxHook().insert, MODULE, record, dedupe_field="Email" if dedupe else None)
    expected = insert_outcome(fault, dedupe)
    if expected is None:
        assert stored_by_email(server) == {}
        wolkvox_id = insert()
        assert stored_by_email(server) == {record["Email"]: [wolkvox_id]}
        return
    with pytest.raises(expected) as raised:
        insert()
    wait_for_late_store(server, fault, 1)
    stored = stored_by_email(server).get(record["Email"], [])
    if expected is WolkvoxOutcomeUnknownError:
        assert "outcome is unknown" in str(raised.value)
        assert len(stored) == (1 if fault.stores else 0)
    else:
        assert raised.value.fail_fast
        assert stored == []
