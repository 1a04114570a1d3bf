"""queryDates.php listed newest first or in random order (``query_dates_order``): the vendor does not
document the order, so clients are tested against each."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from airflow_provider_wolkvox.api import CREATED_AT_FIELD, QUERY_DATES_LIMIT
from airflow_provider_wolkvox.testing import FakeWolkvoxServer
from tests.testing.helpers import MODULE, OPERATION, TOKEN, Api

DAY = datetime(2024, 3, 1)
WHOLE_DAY = ("2024-03-01 00:00", "2024-03-02 00:00")


def seed(server: FakeWolkvoxServer, count: int, *, per_second: int = 1) -> list[str]:
    """``count`` records created ``per_second`` a second from the day's start; their ids, oldest first."""
    return server.add_records(
        MODULE,
        [{"Name": f"n{index}"} for index in range(count)],
        created_at=[DAY + timedelta(seconds=index // per_second) for index in range(count)],
    )


def listed(api: Api, *window: str, limit: int | None = None) -> list[str]:
    response = api.query_dates(*window, limit=limit)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["msg"] == f"{len(body['data'])} records were are found"
    return [record["wolkvox_id"] for record in body["data"]]


def test_the_default_is_oldest_first(api: Api, server: FakeWolkvoxServer) -> None:
    ids = seed(server, QUERY_DATES_LIMIT + 5)

    assert server.query_dates_order == "ascending"
    assert listed(api, *WHOLE_DAY) == ids[:QUERY_DATES_LIMIT]


def test_descending_lists_the_newest_first() -> None:
    with FakeWolkvoxServer({TOKEN: OPERATION}, query_dates_order="descending") as server, Api(server) as api:
        ids = seed(server, QUERY_DATES_LIMIT + 5, per_second=2)

        assert listed(api, *WHOLE_DAY) == ids[::-1][:QUERY_DATES_LIMIT]
        assert listed(api, *WHOLE_DAY, limit=3) == ids[::-1][:3]
        # Within one second, the later stored is listed first.
        assert listed(api, "2024-03-01 00:00:01", "2024-03-01 00:00:01") == [ids[3], ids[2]]
        assert listed(api, "2024-03-02 00:00", "2024-03-03 00:00") == []


def test_random_lists_any_records_of_the_window_in_any_order(api: Api, server: FakeWolkvoxServer) -> None:
    ids = seed(server, 2500)
    server.query_dates_order = "random"
    window = ("2024-03-01 00:05:00", "2024-03-01 00:29:59")  # records 300 to 1,799
    inside = set(ids[300:1800])

    answers = [listed(api, *window) for _ in range(3)]

    for answer in answers:
        assert len(answer) == len(set(answer)) == QUERY_DATES_LIMIT
        assert set(answer) <= inside
        assert answer != sorted(answer, key=ids.index)  # not oldest first
    assert len({frozenset(answer) for answer in answers}) > 1  # not the same records each time
    small = ("2024-03-01 00:00:00", "2024-03-01 00:00:09")
    assert sorted(listed(api, *small), key=ids.index) == ids[:10]  # fewer than the limit: all of them


def test_the_order_is_settable_and_checked(api: Api, server: FakeWolkvoxServer) -> None:
    ids = seed(server, 10)

    server.query_dates_order = "descending"
    assert listed(api, *WHOLE_DAY, limit=2) == [ids[9], ids[8]]
    server.query_dates_order = "ascending"
    assert listed(api, *WHOLE_DAY, limit=2) == [ids[0], ids[1]]
    with pytest.raises(ValueError, match="query_dates_order must be one of ascending, descending, random"):
        server.query_dates_order = "newest"
    with pytest.raises(ValueError, match="got 'oldest'"):
        FakeWolkvoxServer({TOKEN: OPERATION}, query_dates_order="oldest")


def test_records_carry_their_creation_time_whatever_the_order() -> None:
    with FakeWolkvoxServer({TOKEN: OPERATION}, query_dates_order="random") as server, Api(server) as api:
        seed(server, 50)
        response = api.query_dates(*WHOLE_DAY)
        times = sorted(record[CREATED_AT_FIELD] for record in response.json()["data"])

    assert times[0] == "2024-03-01 00:00:00"
    assert times[-1] == "2024-03-01 00:00:49"
