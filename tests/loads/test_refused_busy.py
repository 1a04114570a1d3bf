"""Summaries count the calls the CRM took, and apart the requests it refused as busy (``refused_busy``).

A 403 "EXCEEDS THE LIMIT OF SIMULTANEOUS REQUESTS" is a refusal of the whole request: the CRM does
not process it (whether its quota counts it is not documented), the fake does not charge it
(``Fault.SIMULTANEOUS`` does not, nor does a real third request in flight), and the client retries
it. So a summary's ``calls`` is what the fake's quota was charged, and ``refused_busy`` the rest.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from airflow_provider_wolkvox import api
from airflow_provider_wolkvox.client import RetryPolicy, WolkvoxClient
from airflow_provider_wolkvox.hooks.wolkvox import WolkvoxHook
from airflow_provider_wolkvox.loads import BulkLoad, LoadOptions, RecordStatus
from airflow_provider_wolkvox.testing import CONN_ENV_VAR, FakeWolkvoxServer, Fault
from tests.conftest import OPERATION, TOKEN

FAST_RETRIES = RetryPolicy(max_attempts=10, base_delay=0.001, max_delay=0.01)
REFUSALS = 4


def contacts(count: int) -> list[dict[str, object]]:
    return [{"Nombre": f"Contacto {n}", "Email": f"c{n}@example.com"} for n in range(count)]


@pytest.fixture
def server(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeWolkvoxServer]:
    with FakeWolkvoxServer({TOKEN: OPERATION}, modules={"contacts"}) as fake:
        monkeypatch.setenv(CONN_ENV_VAR, fake.airflow_connection())
        monkeypatch.setattr("airflow_provider_wolkvox.client.client.RetryPolicy", lambda: FAST_RETRIES)
        yield fake


def test_a_load_counts_the_calls_charged_and_the_refusals_as_busy_apart(server: FakeWolkvoxServer) -> None:
    server.inject(Fault.SIMULTANEOUS, path=api.INSERT_MANY_PATH, times=REFUSALS, after=1)
    with WolkvoxClient(server.url, TOKEN, retry_policy=FAST_RETRIES) as client:
        bulk = BulkLoad(client, OPERATION, "contacts", contacts(100), LoadOptions(batch_size=10))
        results = list(bulk)
        assert (client.calls, client.refused_busy) == (10, REFUSALS)

    assert {r.status for r in results} == {RecordStatus.CREATED}
    assert server.calls(api.INSERT_MANY_PATH) == 10 + REFUSALS  # every request the fake saw
    assert bulk.summary.calls == server.quota_used(TOKEN) == 10
    assert bulk.summary.refused_busy == REFUSALS
    assert bulk.summary.as_dict()["refused_busy"] == REFUSALS


def test_a_sync_counts_the_same_way(server: FakeWolkvoxServer) -> None:
    server.inject(Fault.SIMULTANEOUS, times=REFUSALS, after=1)

    result = WolkvoxHook().upsert_many("contacts", contacts(30), key_field="Email")

    assert {r.status for r in result.results} == {RecordStatus.CREATED}
    assert result.summary.calls == server.quota_used(TOKEN)
    assert result.summary.refused_busy == REFUSALS


def test_the_calls_a_load_may_make_leave_refusals_out(server: FakeWolkvoxServer) -> None:
    # A load limited to its share of the quota (quota_reserve) is not stopped short by refusals.
    server.inject(Fault.SIMULTANEOUS, path=api.INSERT_MANY_PATH, times=REFUSALS)
    with WolkvoxClient(server.url, TOKEN, retry_policy=FAST_RETRIES) as client:
        client.limit_calls(5)
        bulk = BulkLoad(client, OPERATION, "contacts", contacts(50), LoadOptions(batch_size=10))
        results = list(bulk)

    assert {r.status for r in results} == {RecordStatus.CREATED}
    assert (bulk.summary.calls, bulk.summary.refused_busy) == (5, REFUSALS)
