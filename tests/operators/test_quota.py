"""The loading operators and the daily quota: quota_check, quota_reserve, the wait and max_wait."""

from __future__ import annotations

import datetime
from collections.abc import Iterator
from typing import Any

import pytest
from airflow.providers.common.compat.sdk import AirflowFailException, TaskDeferred

from airflow_provider_wolkvox import api
from airflow_provider_wolkvox.hooks.wolkvox import WolkvoxHook
from airflow_provider_wolkvox.operators.insert import WolkvoxInsertManyOperator
from airflow_provider_wolkvox.operators.quota import QUOTA_WAITS_KEY, UNKNOWN_RESTART_WAIT
from airflow_provider_wolkvox.testing import CONN_ENV_VAR, FakeWolkvoxServer
from tests.conftest import OPERATION, TOKEN, DictStateStore, RecordingTaskInstance

QUOTA = 10


@pytest.fixture
def server(monkeypatch: pytest.MonkeyPatch, fast_retries: object) -> Iterator[FakeWolkvoxServer]:
    with FakeWolkvoxServer({TOKEN: OPERATION}, quota=QUOTA) as fake:
        monkeypatch.setenv(CONN_ENV_VAR, fake.airflow_connection())
        yield fake


def rows(count: int) -> list[dict[str, Any]]:
    return [{"Nombre": f"C{n}", "Email": f"c{n}@example.com"} for n in range(count)]


def operator(**kwargs: Any) -> WolkvoxInsertManyOperator:
    return WolkvoxInsertManyOperator(task_id="load", module="contacts", batch_size=10, **kwargs)


def context(store: DictStateStore, try_number: int = 1) -> Any:
    ti = RecordingTaskInstance()
    ti.try_number = try_number
    return {"ti": ti, "task_state_store": store}


def test_quota_check_refuses_a_load_the_quota_cannot_cover_before_sending(server: FakeWolkvoxServer) -> None:
    load = operator(records=rows(200), quota_check=True, quota_reserve=2)

    with pytest.raises(AirflowFailException) as raised:
        load.execute(context(DictStateStore()))

    assert str(raised.value) == (
        "wolkvox quota check: loading 200 records needs 20 calls, plus 0 kept for settling lost answers "
        f"and 2 for the token's other users, but only {QUOTA - 1} of {QUOTA} are left today; the count "
        f"restarts in {WolkvoxHook().token_info().hours_to_reset:g} h; nothing was sent"
    )
    assert server.calls(api.INSERT_MANY_PATH) == 0


def test_quota_reserve_leaves_calls_to_the_token_s_other_users(server: FakeWolkvoxServer) -> None:
    load = operator(records=rows(200), quota_reserve=4, max_failed_records=200)

    ids = load.execute(context(DictStateStore()))

    # One call reads the quota; 5 batches use the calls down to the reserve; the rest is not sent.
    assert server.calls(api.INSERT_MANY_PATH) == QUOTA - 1 - 4
    assert server.quota_used(TOKEN) == QUOTA - 4
    by_email = {record["Email"]: record["wolkvox_id"] for record in server.records("contacts")}
    assert ids[:50] == [by_email[f"c{n}@example.com"] for n in range(50)]
    assert ids[50:] == [None] * 150


def test_a_quota_spent_before_the_load_began_defers_for_an_hour(server: FakeWolkvoxServer) -> None:
    for _ in range(QUOTA):
        WolkvoxHook().token_info()  # other users spend the day's calls
    store = DictStateStore()
    before = datetime.datetime.now(datetime.timezone.utc)

    with pytest.raises(TaskDeferred) as deferred:
        operator(records=rows(20), on_quota_exhausted="wait").execute(context(store))

    moment = deferred.value.trigger.moment
    assert before + UNKNOWN_RESTART_WAIT < moment < before + UNKNOWN_RESTART_WAIT * 1.2
    assert deferred.value.method_name == "resume_after_quota"
    [wait] = store.get(QUOTA_WAITS_KEY)
    assert (wait["try_number"], wait["records_done"], wait["calls_left_to_make"]) == (1, None, None)
    assert server.calls(api.INSERT_MANY_PATH) == 0


def earlier_wait(try_number: int) -> DictStateStore:
    """A task state store holding a quota wait that began three days ago in try ``try_number``."""
    store = DictStateStore()
    at = datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(days=3)
    until = at + datetime.timedelta(hours=20)
    wait = {"try_number": try_number, "at": at.isoformat(), "until": until.isoformat()}
    store.set(QUOTA_WAITS_KEY, [{**wait, "records_done": 0, "calls_left_to_make": 20}])
    return store


def test_max_wait_bounds_the_waits_of_one_try(server: FakeWolkvoxServer) -> None:
    load = operator(records=rows(200), on_quota_exhausted="wait", max_wait=datetime.timedelta(days=2))

    with pytest.raises(AirflowFailException, match=r"past max_wait \(2 days, 0:00:00\) from the first wait"):
        load.execute(context(earlier_wait(try_number=1)))
    assert server.calls(api.INSERT_MANY_PATH) == QUOTA - 1


def test_a_retry_waits_again_although_an_earlier_try_waited_long(server: FakeWolkvoxServer) -> None:
    store = earlier_wait(try_number=1)
    load = operator(records=rows(200), on_quota_exhausted="wait", max_wait=datetime.timedelta(days=2))

    with pytest.raises(TaskDeferred):
        load.execute(context(store, try_number=2))

    assert [wait["try_number"] for wait in store.get(QUOTA_WAITS_KEY)] == [1, 2]
    assert store.get(QUOTA_WAITS_KEY)[1]["records_done"] == 10 * (QUOTA - 1)
