"""queryDates.php over real HTTP, and seeding with add_records."""

from __future__ import annotations

import random
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

from airflow_provider_wolkvox.api import (
    CREATED_AT_FIELD,
    CRM_DATETIME_FORMAT,
    ERROR_BAD_REQUEST,
    MODIFIED_AT_FIELD,
    MSG_MISSING_PARAMETERS,
    QUERY_DATES_LIMIT,
    QUERY_DATES_PATH,
)
from airflow_provider_wolkvox.testing import FakeWolkvoxServer
from tests.testing.helpers import (
    MODULE,
    OPERATION,
    OTHER_OPERATION,
    OTHER_TOKEN,
    TOKEN,
    Api,
    created_id,
    crm_stamp,
    envelope,
    found,
)

DAY = datetime(2024, 3, 1)


def at(hour: int, minute: int, second: int = 0) -> datetime:
    return DAY.replace(hour=hour, minute=minute, second=second)


def names(response: Any) -> list[str]:
    assert response.status_code == 200, response.text
    return [record["Name"] for record in response.json()["data"]]


@pytest.fixture
def seeded(server: FakeWolkvoxServer) -> list[str]:
    """Records created at known CRM times, stored out of time order in two calls; returns their ids."""
    first = server.add_records(
        MODULE,
        [{"Name": "d"}, {"Name": "b"}, {"Name": "late"}],
        created_at=[at(10, 1), at(10, 0, 30), at(10, 2)],
    )
    earlier = server.add_records(
        MODULE,
        [{"Name": "early"}, {"Name": "a"}, {"Name": "c"}],
        created_at=[at(9, 59, 59), at(10, 0), at(10, 0, 30)],
    )
    return first + earlier


class TestQueryDates:
    def test_envelope_and_records_as_query_returns_them(
        self, api: Api, server: FakeWolkvoxServer, seeded: list[str]
    ) -> None:
        response = api.query_dates("2024-03-01 10:00:30", "2024-03-01 10:00:30")

        assert response.status_code == 200
        body = response.json()
        assert body == found(api.query("Name", "b").json()["data"] + api.query("Name", "c").json()["data"])
        assert body["data"][0] == {
            "Name": "b",
            "wolkvox_id": seeded[1],
            CREATED_AT_FIELD: "2024-03-01 10:00:30",
            MODIFIED_AT_FIELD: "2024-03-01 10:00:30",
            "wolkvox_usuario_creacion": "API",
        }

    def test_bounds_are_inclusive_and_order_is_oldest_first(self, api: Api, seeded: list[str]) -> None:
        # Equal creation times keep the order of storing: b before c.
        assert names(api.query_dates("2024-03-01 10:00:00", "2024-03-01 10:01:00")) == ["a", "b", "c", "d"]
        assert names(api.query_dates("2024-03-01 10:00:01", "2024-03-01 10:00:59")) == ["b", "c"]
        assert names(api.query_dates("2024-03-01 00:00:00", "2024-03-02 00:00:00")) == [
            "early",
            "a",
            "b",
            "c",
            "d",
            "late",
        ]

    def test_minutes_only_mean_second_zero(self, api: Api, seeded: list[str]) -> None:
        assert names(api.query_dates("2024-03-01 10:00", "2024-03-01 10:01")) == ["a", "b", "c", "d"]
        assert names(api.query_dates("2024-03-01 09:59", "2024-03-01 09:59")) == []

    def test_an_empty_or_reversed_window(self, api: Api, seeded: list[str]) -> None:
        assert api.query_dates("2024-03-02 00:00", "2024-03-03 00:00").json() == found([])
        assert names(api.query_dates("2024-03-01 10:02", "2024-03-01 10:00")) == []

    def test_limit_takes_the_oldest(self, api: Api, seeded: list[str]) -> None:
        response = api.query_dates("2024-03-01 10:00", "2024-03-01 11:00", limit=3)

        assert names(response) == ["a", "b", "c"]
        assert response.json()["msg"] == "3 records were are found"

    @pytest.mark.parametrize("limit", [None, QUERY_DATES_LIMIT, QUERY_DATES_LIMIT + 1, 10**9])
    def test_default_and_larger_limits_are_capped(
        self, api: Api, server: FakeWolkvoxServer, limit: int | None
    ) -> None:
        count = QUERY_DATES_LIMIT + 5
        ids = server.add_records(
            MODULE,
            [{"Name": f"n{index}"} for index in range(count)],
            created_at=[DAY + timedelta(seconds=index) for index in range(count)],
        )

        response = api.query_dates("2024-03-01 00:00", "2024-03-02 00:00", limit=limit)

        body = response.json()
        assert body["msg"] == f"{QUERY_DATES_LIMIT} records were are found"
        assert [record["wolkvox_id"] for record in body["data"]] == ids[:QUERY_DATES_LIMIT]

    def test_the_window_is_on_the_crm_clock(self) -> None:
        with FakeWolkvoxServer({TOKEN: OPERATION}, utc_offset_hours=-5.0) as server, Api(server) as api:
            created_id(api.insert({"Name": "now"}))
            crm_now = server.crm_now()
            utc = datetime.now(timezone.utc).replace(tzinfo=None)
            minute = timedelta(minutes=1)

            on_crm_clock = api.query_dates(
                (crm_now - minute).strftime(CRM_DATETIME_FORMAT),
                (crm_now + minute).strftime(CRM_DATETIME_FORMAT),
            )
            on_utc = api.query_dates(
                (utc - minute).strftime(CRM_DATETIME_FORMAT), (utc + minute).strftime(CRM_DATETIME_FORMAT)
            )

            assert names(on_crm_clock) == ["now"]
            assert names(on_utc) == []

    def test_stays_within_its_module_and_operation(self, api: Api, server: FakeWolkvoxServer) -> None:
        server.add_records("leads", [{"Name": "lead"}], created_at=DAY)
        server.add_records(MODULE, [{"Name": "other"}], created_at=DAY, operation=OTHER_OPERATION)
        window = ("2024-03-01 00:00", "2024-03-01 00:00")

        assert names(api.query_dates(*window)) == []
        assert names(api.query_dates(*window, module="leads")) == ["lead"]
        other = {
            "operation": OTHER_OPERATION,
            "module": MODULE,
            "date": True,
            "from": window[0],
            "to": window[1],
        }
        assert names(api.call(QUERY_DATES_PATH, other, token=OTHER_TOKEN)) == ["other"]


QUERY_DATES_BODY = {
    "operation": OPERATION,
    "module": MODULE,
    "date": True,
    "from": "2024-03-01 10:00",
    "to": "2024-03-01 11:00",
}
MISSING = (400, ERROR_BAD_REQUEST, MSG_MISSING_PARAMETERS)
DATE_FORM = "A DATE AND TIME 'YYYY-MM-DD HH:MM[:SS]'"


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        pytest.param({"date": None}, MISSING, id="no-date"),
        pytest.param({"date": False}, MISSING, id="date-false"),
        pytest.param({"date": "true"}, MISSING, id="date-text"),
        pytest.param({"from": None}, MISSING, id="no-from"),
        pytest.param({"to": ""}, MISSING, id="empty-to"),
        pytest.param(
            {"from": "2024-03-01"},
            (400, ERROR_BAD_REQUEST, f"THE PARAMETER 'from' MUST BE {DATE_FORM}"),
            id="day",
        ),
        pytest.param(
            {"to": "yesterday"},
            (400, ERROR_BAD_REQUEST, f"THE PARAMETER 'to' MUST BE {DATE_FORM}"),
            id="words",
        ),
        pytest.param(
            {"to": "2024-02-30 10:00"},
            (400, ERROR_BAD_REQUEST, f"THE PARAMETER 'to' MUST BE {DATE_FORM}"),
            id="no-day",
        ),
        pytest.param(
            {"from": 20240301},
            (400, ERROR_BAD_REQUEST, f"THE PARAMETER 'from' MUST BE {DATE_FORM}"),
            id="number",
        ),
        *(
            pytest.param(
                {"limit": limit},
                (400, ERROR_BAD_REQUEST, "THE PARAMETER 'limit' MUST BE A WHOLE NUMBER OF AT LEAST 1"),
                id=f"limit-{limit!r}",
            )
            for limit in [0, -1, 2.5, "5", True]
        ),
    ],
)
def test_refused_bodies(
    api: Api, server: FakeWolkvoxServer, changes: dict[str, Any], expected: tuple[int, str, str]
) -> None:
    body = {name: value for name, value in {**QUERY_DATES_BODY, **changes}.items() if value is not None}

    response = api.call(QUERY_DATES_PATH, body)

    status, error, msg = expected
    assert (response.status_code, response.json()) == (status, envelope(status, error, msg))
    assert server.quota_used(TOKEN) == 1  # admitted, then refused for its body


class TestAddRecords:
    def test_stores_copies_with_metadata_and_no_quota_or_log(self, server: FakeWolkvoxServer) -> None:
        given = [{"Name": "a", "Email": "a@x.co"}, {"Name": "b"}]

        ids = server.add_records(MODULE, given, created_at=[at(8, 0), at(9, 30, 15)])

        given[0]["Name"] = "changed"
        assert given[1] == {"Name": "b"}  # the caller's records are not touched
        assert server.records(MODULE) == [
            {
                "Name": "a",
                "Email": "a@x.co",
                "wolkvox_id": ids[0],
                CREATED_AT_FIELD: "2024-03-01 08:00:00",
                MODIFIED_AT_FIELD: "2024-03-01 08:00:00",
                "wolkvox_usuario_creacion": "API",
            },
            {
                "Name": "b",
                "wolkvox_id": ids[1],
                CREATED_AT_FIELD: "2024-03-01 09:30:15",
                MODIFIED_AT_FIELD: "2024-03-01 09:30:15",
                "wolkvox_usuario_creacion": "API",
            },
        ]
        assert (server.quota_used(TOKEN), server.calls(), server.request_log) == (0, 0, [])

    def test_one_time_for_all_none_for_now_and_aware_times_converted(self, server: FakeWolkvoxServer) -> None:
        before = crm_stamp(server)
        server.add_records(MODULE, [{"Name": "now"}])
        after = crm_stamp(server)
        server.add_records(MODULE, [{"Name": "x"}, {"Name": "y"}], created_at=at(7, 0))
        # 15:00 UTC is 10:00 on the CRM's default clock (UTC-5).
        server.add_records(
            MODULE, [{"Name": "utc"}], created_at=datetime(2024, 3, 1, 15, 0, tzinfo=timezone.utc)
        )

        now, x, y, utc = (record[CREATED_AT_FIELD] for record in server.records(MODULE))
        assert before <= now <= after
        assert x == y == "2024-03-01 07:00:00"
        assert utc == "2024-03-01 10:00:00"

    def test_unique_values_are_checked_and_taken(self, api: Api, server: FakeWolkvoxServer) -> None:
        server.add_records(MODULE, [{"Email": "a@x.co"}])

        with pytest.raises(ValueError, match=r"^RECORD 1: VALUE OF FIELD 'Email' ALREADY EXISTS$"):
            server.add_records(MODULE, [{"Email": "b@x.co"}, {"Email": "a@x.co"}])
        assert api.insert({"Email": "a@x.co"}).json()["msg"] == "VALUE OF FIELD 'Email' ALREADY EXISTS"
        assert server.record_count(MODULE) == 1

    @pytest.mark.parametrize(
        ("arguments", "message"),
        [
            pytest.param(
                {"records": [{"Name": "a"}, {}]},
                r"^RECORD 1: A RECORD MUST BE A NON-EMPTY OBJECT$",
                id="record",
            ),
            pytest.param(
                {"records": [{"Name": "a"}], "created_at": [DAY, DAY]},
                r"^created_at holds 2 times for 1 records$",
                id="times",
            ),
            pytest.param(
                {"records": [{"Name": "a"}], "operation": "nobody"},
                r"^no token of operation 'nobody'$",
                id="operation",
            ),
        ],
    )
    def test_bad_arguments_store_nothing(
        self, server: FakeWolkvoxServer, arguments: dict[str, Any], message: str
    ) -> None:
        with pytest.raises(ValueError, match=message):
            server.add_records(MODULE, **arguments)

        assert server.record_count(MODULE) == 0


def test_fifty_thousand_records_over_past_days(api: Api, server: FakeWolkvoxServer) -> None:
    """A seeded module of the size a load test uses: lookups stay right (and do not scan the store)."""
    rng = random.Random(5)
    start = datetime(2024, 1, 1)
    times = [start + timedelta(seconds=rng.randrange(30 * 86400)) for _ in range(50_000)]
    ids = server.add_records(MODULE, [{"Name": f"n{index}"} for index in range(50_000)], created_at=times)
    created_id(api.insert({"Name": "today"}))
    by_time = sorted(range(50_000), key=lambda index: (times[index], index))

    for day in (0, 13, 29):
        window = (start + timedelta(days=day), start + timedelta(days=day, hours=5, minutes=30))
        response = api.query_dates(*(moment.strftime(CRM_DATETIME_FORMAT) for moment in window))
        expected = [ids[index] for index in by_time if window[0] <= times[index] <= window[1]]
        assert 0 < len(expected) < QUERY_DATES_LIMIT
        assert [record["wolkvox_id"] for record in response.json()["data"]] == expected

    assert [record["wolkvox_id"] for record in api.query("Name", "n49999").json()["data"]] == [ids[49_999]]
    assert names(api.query_dates("2024-01-01 00:00", "2024-01-31 00:00", limit=2)) == [
        f"n{index}" for index in by_time[:2]
    ]
