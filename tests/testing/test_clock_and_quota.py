"""The CRM's clock (record dates, crm_now) and the restarts of the quota, over real HTTP."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from airflow_provider_wolkvox.api import (
    CREATED_AT_FIELD,
    CRM_DATETIME_FORMAT,
    ERROR_FORBIDDEN,
    MODIFIED_AT_FIELD,
    MSG_QUOTA_EXCEEDED,
)
from airflow_provider_wolkvox.testing import FakeWolkvoxServer
from tests.testing.helpers import MODULE, OPERATION, TOKEN, Api, created_id, envelope, wait_until

# Generous: the clock is read on both sides of one request on a busy machine.
CLOCK_SLACK = timedelta(seconds=5)
QUOTA_SPENT = (403, envelope(403, ERROR_FORBIDDEN, MSG_QUOTA_EXCEEDED))


def utc_now() -> datetime:
    return datetime.now(timezone.utc).replace(tzinfo=None)


def created_at(server: FakeWolkvoxServer, record_id: str) -> datetime:
    [record] = [record for record in server.records(MODULE) if record["wolkvox_id"] == record_id]
    assert record[MODIFIED_AT_FIELD] == record[CREATED_AT_FIELD]
    return datetime.strptime(record[CREATED_AT_FIELD], CRM_DATETIME_FORMAT)


class TestCrmClock:
    @pytest.mark.parametrize("offset", [-5.0, 0.0, 3.5])
    def test_crm_now_and_record_dates_are_utc_plus_the_offset(self, offset: float) -> None:
        with FakeWolkvoxServer({TOKEN: OPERATION}, utc_offset_hours=offset) as server, Api(server) as api:
            expected = utc_now() + timedelta(hours=offset)

            crm_now = server.crm_now()
            created = created_at(server, created_id(api.insert({"Name": "Ana"})))

            assert crm_now.tzinfo is None
            assert abs(crm_now - expected) < CLOCK_SLACK
            assert abs(created - expected) < CLOCK_SLACK

    def test_the_default_clock_is_colombian(self, server: FakeWolkvoxServer) -> None:
        assert abs(server.crm_now() - (utc_now() - timedelta(hours=5))) < CLOCK_SLACK

    @pytest.mark.parametrize("offset", [24.0, -24.0, 30.0])
    def test_an_offset_of_a_day_or_more_is_refused(self, offset: float) -> None:
        with pytest.raises(
            ValueError, match=f"utc_offset_hours must be strictly between -24 and 24, not {offset}"
        ):
            FakeWolkvoxServer(utc_offset_hours=offset)


def token_data(api: Api) -> dict[str, object]:
    response = api.token_info()
    assert response.status_code == 200, response.text
    data: dict[str, object] = response.json()["data"]
    return data


class TestQuotaPeriod:
    def test_the_count_restarts_every_period(self) -> None:
        with FakeWolkvoxServer({TOKEN: OPERATION}, quota=2, quota_period=1.0) as server, Api(server) as api:
            created_id(api.insert({"Name": "a"}))
            created_id(api.insert({"Name": "b"}))
            spent = api.insert({"Name": "c"})

            wait_until(lambda: server.quota_used(TOKEN) == 0)
            after = [api.insert({"Name": "d"}), api.insert({"Name": "e"}), api.insert({"Name": "f"})]

            assert (spent.status_code, spent.json()) == QUOTA_SPENT
            assert [response.status_code for response in after] == [200, 200, 403]
            assert [record["Name"] for record in server.records(MODULE)] == ["a", "b", "d", "e"]

    def test_hours_to_restart_are_the_time_left_in_the_period(self) -> None:
        with FakeWolkvoxServer({TOKEN: OPERATION}, quota_period=2.0) as server, Api(server) as api:
            hours = token_data(api)["hours_to_restart_count"]

            assert isinstance(hours, float)
            assert round(hours, 6) == hours  # rounded up to 6 decimals
            # 2 s is 0.000556 h; the period started at start(), moments before the call.
            assert 0.0005 < hours <= 0.000556
            assert server.quota_used(TOKEN) == 1

    def test_token_information_after_a_restart(self) -> None:
        with FakeWolkvoxServer({TOKEN: OPERATION}, quota=5, quota_period=0.5) as server, Api(server) as api:
            created_id(api.insert({"Name": "a"}))
            created_id(api.insert({"Name": "b"}))
            wait_until(lambda: server.quota_used(TOKEN) == 0)

            data = token_data(api)

            assert (data["token_use_today"], data["available_consumition_options"]) == (1, 4)

    @pytest.mark.parametrize("period", [0.0, -1.0])
    def test_a_period_that_is_not_positive_is_refused(self, period: float) -> None:
        with pytest.raises(
            ValueError, match=f"quota_period must be a positive number of seconds, not {period}"
        ):
            FakeWolkvoxServer(quota_period=period)


class TestDailyRestart:
    def test_hours_to_midnight_are_whole_and_rounded_up(self, api: Api, server: FakeWolkvoxServer) -> None:
        now = server.crm_now()
        midnight = datetime.combine(now.date() + timedelta(days=1), datetime.min.time())
        expected = -(-(midnight - now).total_seconds() // 3600)  # rounded up

        hours = token_data(api)["hours_to_restart_count"]

        assert isinstance(hours, int)
        assert hours in (expected, expected - 1)  # the hour may turn during the call

    def test_the_count_restarts_at_the_crm_clocks_midnight(self) -> None:
        # An offset that puts the CRM's clock a second and a half before its midnight.
        utc = utc_now()
        offset = (utc.replace(hour=23, minute=59, second=58, microsecond=500_000) - utc) / timedelta(hours=1)
        with (
            FakeWolkvoxServer({TOKEN: OPERATION}, quota=2, utc_offset_hours=offset) as server,
            Api(server) as api,
        ):
            assert token_data(api)["hours_to_restart_count"] == 1
            created_id(api.insert({"Name": "a"}))
            assert (api.insert({"Name": "b"}).status_code, server.quota_used(TOKEN)) == (403, 2)

            wait_until(lambda: server.crm_now().hour == 0)

            assert server.quota_used(TOKEN) == 0
            data = token_data(api)
            assert (data["token_use_today"], data["hours_to_restart_count"]) == (1, 24)
            created_id(api.insert({"Name": "c"}))


def test_restart_quota_restarts_every_token_now() -> None:
    with FakeWolkvoxServer({TOKEN: OPERATION}, quota=1) as small, Api(small) as limited:
        created_id(limited.insert({"Name": "a"}))
        assert limited.insert({"Name": "b"}).status_code == 403

        small.restart_quota()

        assert small.quota_used(TOKEN) == 0
        created_id(limited.insert({"Name": "c"}))
        assert [record["Name"] for record in small.records(MODULE)] == ["a", "c"]
