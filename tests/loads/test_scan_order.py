"""Module scans and settlement windows make no assumption about the order ``queryDates.php`` lists
records in (the vendor does not document it): a window is trusted whole only when its answer holds
fewer records than the limit, or when a full answer is sorted by creation time (read on from its
last second); otherwise it is narrowed. Tried against the fake answering oldest first, newest first
and in random order: every record once, every key found, no duplicate, the calls printed."""

from __future__ import annotations

import datetime
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest

from airflow_provider_wolkvox import api
from airflow_provider_wolkvox.client import RetryPolicy, WolkvoxClient
from airflow_provider_wolkvox.hooks.wolkvox import WolkvoxHook
from airflow_provider_wolkvox.loads import BulkLoad, LoadOptions, RecordStatus
from airflow_provider_wolkvox.loads.windows import WindowUnreadable, created_between
from airflow_provider_wolkvox.testing import FakeWolkvoxServer, Fault
from tests.conftest import LOST_ANSWER_TIMEOUT, OPERATION, TOKEN
from tests.loads.records import MODULE, default_crm

ORDERS = ("ascending", "descending", "random")
FAST_RETRIES = RetryPolicy(max_attempts=6, base_delay=0.001, max_delay=0.01)
#: The epoch seconds of the CRM's clock the records below are created from.
DAY = datetime.datetime(2026, 3, 1)
EPOCH_DAY = int(DAY.replace(tzinfo=datetime.timezone.utc).timestamp())


@pytest.fixture(params=ORDERS)
def order(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def server(order: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeWolkvoxServer]:
    with default_crm(monkeypatch, query_dates_order=order) as fake:
        yield fake


@pytest.fixture
def client(server: FakeWolkvoxServer) -> Iterator[WolkvoxClient]:
    with WolkvoxClient(server.url, TOKEN, timeout=LOST_ANSWER_TIMEOUT, retry_policy=FAST_RETRIES) as wolkvox:
        yield wolkvox


def contact(n: int) -> dict[str, Any]:
    return {"Email": f"c{n}@example.com", "Nombre": f"Contacto {n}"}


def seed(server: FakeWolkvoxServer, numbers: range, seconds: list[int]) -> list[str]:
    """The contacts of ``numbers``, created at ``seconds`` after ``DAY`` (one each); their ids."""
    created = [DAY + datetime.timedelta(seconds=second) for second in seconds]
    return server.add_records(MODULE, [contact(n) for n in numbers], created_at=created)


def calls_by_endpoint(server: FakeWolkvoxServer) -> dict[str, int]:
    paths = (api.INSERT_MANY_PATH, api.QUERY_PATH, api.QUERY_DATES_PATH, api.UPDATE_PATH)
    return {path.rsplit("/", 1)[-1]: server.calls(path) for path in paths}


def read_window(client: WolkvoxClient, start: int, end: int, **kwargs: Any) -> list[str]:
    return [
        record[api.ID_FIELD]
        for page in created_between(client, OPERATION, MODULE, EPOCH_DAY + start, EPOCH_DAY + end, **kwargs)
        for record in page
    ]


# Ways records spread over the seconds of a window: (name, creation second of each record).
SPREADS = [
    pytest.param([n // 3 for n in range(2500)], id="2500-three-a-second"),
    pytest.param([n * 7 for n in range(1500)], id="1500-spread"),
    pytest.param([0] * 999 + [1] * 999 + [2] * 999, id="999-a-second"),
    pytest.param(
        [n % 5 for n in range(3000)] + [86_000 + n for n in range(10)], id="600-a-second-then-a-few"
    ),
    pytest.param([5] * 1000, id="exactly-the-limit-in-one-second"),
    pytest.param(list(range(1000)), id="exactly-the-limit"),
    pytest.param([], id="empty"),
]


@pytest.mark.parametrize("seconds", SPREADS)
def test_every_record_of_a_window_is_read_once_whatever_the_order(
    server: FakeWolkvoxServer, client: WolkvoxClient, order: str, seconds: list[int]
) -> None:
    ids = seed(server, range(len(seconds)), seconds)
    dense = any(count >= api.QUERY_DATES_LIMIT for count in Counter(seconds).values())

    if dense:
        with pytest.raises(WindowUnreadable, match="1 second of the window holds 1,000 records or more"):
            read_window(client, -10, 90_000)
        return
    read = read_window(client, -10, 90_000)

    calls = server.calls(api.QUERY_DATES_PATH)
    print(f"{order}: {len(ids)} records read in {calls} queryDates.php calls")
    assert sorted(read) == sorted(ids)  # each record once
    ideal = -(-(len(ids) + 1) // api.QUERY_DATES_LIMIT)
    if order != "random":
        assert calls <= ideal + 1  # an answer in order is read on from its last second: no narrowing
    else:
        assert calls <= 4 * ideal + 2


def test_a_second_too_dense_is_skipped_and_the_rest_read(
    server: FakeWolkvoxServer, client: WolkvoxClient
) -> None:
    # 1,200 records in second 10: no answer shows them all; the 600 others are read all the same.
    ids = seed(server, range(1800), [10] * 1200 + [n // 2 for n in range(22, 622)])
    seen: list[str] = []
    pages = created_between(client, OPERATION, MODULE, EPOCH_DAY, EPOCH_DAY + 400)

    with pytest.raises(
        WindowUnreadable,
        match="1 second of the window holds 1,000 records or more, which no answer shows whole",
    ):
        seen.extend(record[api.ID_FIELD] for page in pages for record in page)

    assert len(seen) == len(set(seen))
    assert set(ids[1200:]) <= set(seen)
    print(f"{server.query_dates_order}: {server.calls(api.QUERY_DATES_PATH)} queryDates.php calls")


def test_the_call_budget_is_kept(server: FakeWolkvoxServer, client: WolkvoxClient) -> None:
    seed(server, range(3500), [n // 2 for n in range(3500)])

    with pytest.raises(WindowUnreadable, match="the window needs more than 2 calls"):
        read_window(client, 0, 5000, pages=2)

    assert server.calls(api.QUERY_DATES_PATH) == 2


def test_a_sync_scan_finds_every_key_whatever_the_order(server: FakeWolkvoxServer, order: str) -> None:
    # A module of 3,000 records created over three days, three a second: 1,500 of the sync's 2,500
    # keys (the oldest), then 1,500 others. An answer holds at most 1,000 of them.
    seed(server, range(1500), [n // 3 * 300 for n in range(1500)])
    server.add_records(
        MODULE,
        [{"Email": f"otro{n}@example.com"} for n in range(1500)],
        created_at=[DAY + datetime.timedelta(seconds=200_000 + n // 3 * 30) for n in range(1500)],
    )
    records = [contact(n) for n in range(2500)]

    result = WolkvoxHook().upsert_many(MODULE, records, key_field="Email", lookup="scan")

    calls = calls_by_endpoint(server)
    print(f"{order}: {calls}")
    stored = Counter(record["Email"] for record in server.records(MODULE))
    duplicates = sum(count - 1 for count in stored.values())
    assert duplicates == 0
    assert len(stored) == 4000
    statuses = Counter(r.status for r in result.results)
    assert statuses == {RecordStatus.UNCHANGED: 1500, RecordStatus.CREATED: 1000}
    assert calls["query.php"] == 0
    assert calls["insertMany.php"] == 10
    assert calls["queryDates.php"] <= (4 if order != "random" else 12)
    assert result.summary.calls == sum(calls.values())


def test_a_scan_with_a_second_too_dense_looks_the_unseen_keys_up(server: FakeWolkvoxServer) -> None:
    # 1,100 keys created in one second (a bulk load at full speed): the scan reads the rest, then
    # looks up one by one the keys it did not see.
    seed(server, range(1100), [50] * 1100)
    seed(server, range(1100, 1600), list(range(100, 600)))
    records = [contact(n) for n in range(0, 2000, 2)]

    result = WolkvoxHook().upsert_many(MODULE, records, key_field="Email", lookup="scan")

    calls = calls_by_endpoint(server)
    print(f"{server.query_dates_order}: {calls}")
    stored = Counter(record["Email"] for record in server.records(MODULE))
    assert max(stored.values()) == 1
    assert len(stored) == 1600 + 200
    assert Counter(r.status for r in result.results) == {
        RecordStatus.UNCHANGED: 800,
        RecordStatus.CREATED: 200,
    }
    # One by one: the keys of the dense second no answer showed, and the new ones; never the 250 seen.
    assert calls["query.php"] <= 550 + 200
    if server.query_dates_order != "random":
        assert calls["query.php"] == 50 + 200  # an answer in order shows 1,000 of the second's 1,100


@pytest.mark.parametrize("fault", [Fault.STORE_THEN_DROP, Fault.DROP_BEFORE])
def test_a_lost_batch_is_settled_by_window_whatever_the_order(
    server: FakeWolkvoxServer, client: WolkvoxClient, order: str, fault: Fault
) -> None:
    # Another writer creates 600 records a second around the load: each settlement window holds
    # more records than an answer shows, none of its seconds too many.
    now = server.crm_now().replace(microsecond=0)
    others = [{"Nombre": f"otro {n}"} for n in range(600 * 12)]
    server.add_records(
        MODULE,
        others,
        created_at=[now + datetime.timedelta(seconds=n // 600 - 4) for n in range(len(others))],
    )
    server.inject(fault, path=api.INSERT_MANY_PATH, after=2)
    load = BulkLoad(
        client,
        OPERATION,
        MODULE,
        [contact(n) for n in range(60)],
        LoadOptions(batch_size=20, max_in_flight=1, dedupe_field="Email"),
    )

    results = list(load)

    calls = calls_by_endpoint(server)
    print(f"{order}, {fault.name}: {calls}")
    by_email = {
        record["Email"]: record["wolkvox_id"] for record in server.records(MODULE) if "Email" in record
    }
    assert len(server.records(MODULE)) == len(others) + 60  # every record exactly once
    assert [r.wolkvox_id for r in results] == [by_email[f"c{n}@example.com"] for n in range(60)]
    assert {r.status for r in results} == {RecordStatus.CREATED}
