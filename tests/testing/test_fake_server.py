"""Contract tests of FakeWolkvoxServer with plain ``requests`` on loopback: envelopes, error rows, limits."""

from __future__ import annotations

import re
import threading
from typing import Any

import pytest
import requests

from airflow_provider_wolkvox.api import (
    API_ROOT,
    CREATED_AT_FIELD,
    ERROR_BAD_REQUEST,
    ERROR_FORBIDDEN,
    ERROR_UNAUTHORIZED,
    INSERT_MANY_PATH,
    INSERT_PATH,
    MAX_TEXT_LENGTH,
    MODIFIED_AT_FIELD,
    MSG_INVALID_TOKEN,
    MSG_MISSING_PARAMETERS,
    MSG_MISSING_TOKEN,
    MSG_QUOTA_EXCEEDED,
    MSG_TOO_MANY_SIMULTANEOUS,
    MSG_UNKNOWN_API,
    QUERY_PATH,
    TOKEN_INFO_PATH,
)
from airflow_provider_wolkvox.testing import FakeToken, FakeWolkvoxServer
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
)

WOLKVOX_ID = re.compile(r"[0-9a-f]{24}")


class TestSuccessEnvelopes:
    def test_insert(self, api: Api, server: FakeWolkvoxServer) -> None:
        before = crm_stamp(server)
        response = api.insert({"Name": "Ana", "Precio": 6700, "Dir": {"type": "address", "value": "Calle 1"}})
        after = crm_stamp(server)

        assert response.status_code == 200
        assert response.headers["Content-Type"] == "application/json"
        body = response.json()
        new_id = body["data"]["wolkvox_id"]
        assert WOLKVOX_ID.fullmatch(new_id)
        assert body == {
            "code": 200,
            "error": "null",
            "msg": "Succesfully create record",
            "data": {"wolkvox_id": new_id},
        }
        [record] = server.records(MODULE)
        created = record.pop(CREATED_AT_FIELD)
        assert before <= created <= after  # on the CRM's clock
        assert record == {
            "Name": "Ana",
            "Precio": 6700,
            "Dir": {"type": "address", "value": "Calle 1"},
            "wolkvox_id": new_id,
            MODIFIED_AT_FIELD: created,
            "wolkvox_usuario_creacion": "API",
        }

    def test_insert_many_answers_ids_in_input_order(self, api: Api, server: FakeWolkvoxServer) -> None:
        response = api.insert_many([{"Name": f"n{index}"} for index in range(5)])

        assert response.status_code == 200
        body = response.json()
        ids = [item["wolkvox_id"] for item in body["data"]]
        assert body == {
            "code": 200,
            "error": "null",
            "msg": "Succesfully create records",
            "data": [{"wolkvox_id": new_id} for new_id in ids],
        }
        assert all(WOLKVOX_ID.fullmatch(new_id) for new_id in ids)
        assert len(set(ids)) == 5
        assert [(r["Name"], r["wolkvox_id"]) for r in server.records(MODULE)] == [
            (f"n{index}", new_id) for index, new_id in enumerate(ids)
        ]

    def test_insert_many_without_ids(self, api: Api, server: FakeWolkvoxServer) -> None:
        server.insert_many_ids = False

        response = api.insert_many([{"Name": "a"}, {"Name": "b"}])

        assert response.json() == {
            "code": 200,
            "error": "null",
            "msg": "Succesfully create records",
            "data": {"inserted": 2},
        }
        assert server.record_count(MODULE) == 2

    def test_query(self, api: Api) -> None:
        first = created_id(api.insert({"Name": "Ana", "Tel": {"type": "telephone", "value": "300"}}))
        created_id(api.insert({"Name": "Luis"}))

        by_name = api.query("Name", "Ana").json()
        by_typed_value = api.query("Tel", "300").json()
        by_id = api.query("wolkvox_id", first).json()
        nothing = api.query("Name", "Nadie").json()

        assert by_name["code"] == "200"
        assert by_name["error"] == "null"
        assert by_name["msg"] == "1 records were are found"
        [record] = by_name["data"]
        assert record["wolkvox_id"] == first
        assert record["Name"] == "Ana"
        assert by_typed_value["data"] == by_id["data"] == by_name["data"]
        assert nothing == {"code": "200", "error": "null", "msg": "0 records were are found", "data": []}

    def test_query_stays_within_its_module(self, api: Api) -> None:
        created_id(api.insert({"Name": "Ana"}, module="leads"))

        assert api.query("Name", "Ana").json()["data"] == []
        assert len(api.query("Name", "Ana", module="leads").json()["data"]) == 1

    def test_token_information_counts_itself(self, api: Api) -> None:
        created_id(api.insert({"Name": "Ana"}))

        body = api.token_info().json()

        hours = body["data"].pop("hours_to_restart_count")
        assert isinstance(hours, int)
        assert 1 <= hours <= 24
        assert body == {
            "code": "200",
            "error": "null",
            "msg": "1 records were are found",
            "data": {
                "description": "token",
                "token_limit": 4800,
                "token_use_today": 2,
                "available_consumition_options": 4798,
            },
        }


class TestRecords:
    def test_records_by_operation(self, api: Api, server: FakeWolkvoxServer) -> None:
        created_id(api.insert({"Name": "Ana"}))

        assert len(server.records(MODULE)) == len(server.records(MODULE, OPERATION)) == 1
        assert server.records(MODULE, OTHER_OPERATION) == []
        assert server.records("leads") == []

    def test_records_are_copies(self, api: Api, server: FakeWolkvoxServer) -> None:
        created_id(api.insert({"Name": "Ana"}))

        server.records(MODULE)[0]["Name"] = "changed"

        assert server.records(MODULE)[0]["Name"] == "Ana"

    def test_a_text_of_the_maximum_length_is_accepted(self, api: Api) -> None:
        created_id(api.insert({"Notes": "x" * MAX_TEXT_LENGTH}))

    def test_unique_values_are_per_module_and_operation(self, api: Api, server: FakeWolkvoxServer) -> None:
        created_id(api.insert({"Email": "a@x.co"}))
        created_id(api.insert({"Email": "a@x.co"}, module="leads"))
        other = {"operation": OTHER_OPERATION, "module": MODULE, "fields": {"Email": "a@x.co"}}

        assert api.call(INSERT_PATH, other, token=OTHER_TOKEN).status_code == 200


TOO_LONG = "x" * (MAX_TEXT_LENGTH + 1)
# A documented endpoint the fake does not serve (its body is not public).
UNSERVED_PATH = f"{API_ROOT}/custom/updateMany.php"


@pytest.mark.parametrize(
    ("records", "msg"),
    [
        pytest.param([{"Name": "a"}, {}], "RECORD 1: A RECORD MUST BE A NON-EMPTY OBJECT", id="empty"),
        pytest.param(
            [{"Name": "a"}, "Ana"], "RECORD 1: A RECORD MUST BE A NON-EMPTY OBJECT", id="not-object"
        ),
        pytest.param(
            [{"Dir": {"type": "address"}}],
            "RECORD 0: FIELD 'Dir' OF TYPE 'address' NEEDS A 'value'",
            id="typed-without-value",
        ),
        pytest.param(
            [{"Name": "a"}, {"Name": "b"}, {"Notes": TOO_LONG}],
            f"RECORD 2: FIELD 'Notes' IS LONGER THAN {MAX_TEXT_LENGTH} CHARACTERS",
            id="too-long",
        ),
        pytest.param(
            [{"Dir": {"type": "address", "value": TOO_LONG}}],
            f"RECORD 0: FIELD 'Dir' IS LONGER THAN {MAX_TEXT_LENGTH} CHARACTERS",
            id="typed-too-long",
        ),
        pytest.param(
            [{"Email": "b@x.co"}, {"Email": "c@x.co"}, {"Email": "b@x.co"}],
            "RECORD 2: VALUE OF FIELD 'Email' ALREADY EXISTS",
            id="unique-in-batch",
        ),
        pytest.param(
            [{"Email": "b@x.co"}, {"Email": "stored@x.co"}],
            "RECORD 1: VALUE OF FIELD 'Email' ALREADY EXISTS",
            id="unique-stored",
        ),
    ],
)
def test_an_invalid_record_rejects_the_whole_batch(
    api: Api, server: FakeWolkvoxServer, records: list[Any], msg: str
) -> None:
    created_id(api.insert({"Email": "stored@x.co"}))

    response = api.insert_many(records)

    assert response.status_code == 400
    assert response.json() == envelope(400, ERROR_BAD_REQUEST, msg)
    assert server.record_count(MODULE) == 1
    assert server.request_log[-1].ids == ()


@pytest.mark.parametrize(
    ("fields", "msg"),
    [
        ({"Dir": {"type": "address"}}, "FIELD 'Dir' OF TYPE 'address' NEEDS A 'value'"),
        ({"Notes": TOO_LONG}, f"FIELD 'Notes' IS LONGER THAN {MAX_TEXT_LENGTH} CHARACTERS"),
        ({"Email": "stored@x.co"}, "VALUE OF FIELD 'Email' ALREADY EXISTS"),
    ],
)
def test_an_invalid_single_record_is_rejected(
    api: Api, server: FakeWolkvoxServer, fields: dict[str, Any], msg: str
) -> None:
    created_id(api.insert({"Email": "stored@x.co"}))

    response = api.insert(fields)

    assert (response.status_code, response.json()) == (400, envelope(400, ERROR_BAD_REQUEST, msg))
    assert server.record_count(MODULE) == 1


INSERT_BODY = {"operation": OPERATION, "module": MODULE, "fields": {"Name": "Ana"}}
QUERY_BODY = {"operation": OPERATION, "module": MODULE, "field": "Name", "value": "Ana"}


def without(body: dict[str, Any], name: str) -> dict[str, Any]:
    return {key: value for key, value in body.items() if key != name}


MISSING = (400, ERROR_BAD_REQUEST, MSG_MISSING_PARAMETERS)
INVALID_TOKEN = (403, ERROR_FORBIDDEN, MSG_INVALID_TOKEN)


@pytest.mark.parametrize(
    ("request_args", "expected"),
    [
        pytest.param({"token": None}, (401, ERROR_UNAUTHORIZED, MSG_MISSING_TOKEN), id="no-token"),
        pytest.param({"token": ""}, (401, ERROR_UNAUTHORIZED, MSG_MISSING_TOKEN), id="empty-token"),
        pytest.param({"token": "forged"}, INVALID_TOKEN, id="unknown-token"),
        pytest.param({"token": OTHER_TOKEN}, INVALID_TOKEN, id="token-of-another-operation"),
        pytest.param(
            {"path": TOKEN_INFO_PATH, "params": {"operation": OTHER_OPERATION}},
            INVALID_TOKEN,
            id="token-info-of-another-operation",
        ),
        pytest.param({"body": without(INSERT_BODY, "operation")}, MISSING, id="no-operation"),
        pytest.param({"body": without(INSERT_BODY, "module")}, MISSING, id="no-module"),
        pytest.param({"body": without(INSERT_BODY, "fields")}, MISSING, id="no-fields"),
        pytest.param({"body": {**INSERT_BODY, "fields": {}}}, MISSING, id="empty-fields"),
        pytest.param({"body": {**INSERT_BODY, "module": ""}}, MISSING, id="empty-module"),
        pytest.param(
            {"path": INSERT_MANY_PATH, "body": {**INSERT_BODY, "fields": []}}, MISSING, id="no-records"
        ),
        pytest.param(
            {"path": QUERY_PATH, "body": without(QUERY_BODY, "field")}, MISSING, id="query-no-field"
        ),
        pytest.param(
            {"path": QUERY_PATH, "body": without(QUERY_BODY, "value")}, MISSING, id="query-no-value"
        ),
        pytest.param({"path": TOKEN_INFO_PATH}, MISSING, id="token-info-no-operation"),
        pytest.param({"path": UNSERVED_PATH}, (400, ERROR_BAD_REQUEST, MSG_UNKNOWN_API), id="path"),
        pytest.param(
            {"path": UNSERVED_PATH, "token": None},
            (400, ERROR_BAD_REQUEST, MSG_UNKNOWN_API),
            id="path-before-token",
        ),
        pytest.param(
            {"method": "GET", "token": None},
            (405, "METHOD NOT ALLOWED", "THIS API ONLY ACCEPTS POST"),
            id="method-before-token",
        ),
        pytest.param(
            {"path": TOKEN_INFO_PATH, "method": "POST"},
            (405, "METHOD NOT ALLOWED", "THIS API ONLY ACCEPTS GET"),
            id="post-token-info",
        ),
        pytest.param(
            {"body": {**INSERT_BODY, "fields": [{"Name": "Ana"}]}},
            (400, ERROR_BAD_REQUEST, "THE PARAMETER 'fields' MUST BE AN OBJECT"),
            id="insert-fields-array",
        ),
        pytest.param(
            {"path": INSERT_MANY_PATH},
            (400, ERROR_BAD_REQUEST, "THE PARAMETER 'fields' MUST BE AN ARRAY OF OBJECTS"),
            id="insert-many-fields-object",
        ),
        pytest.param(
            {"body": {**INSERT_BODY, "module": ["contacts"]}},
            (400, ERROR_BAD_REQUEST, "THE PARAMETER 'module' MUST BE TEXT"),
            id="module-not-text",
        ),
        pytest.param(
            {"body": None, "data": "operation=op-a&module=contacts"},
            (400, ERROR_BAD_REQUEST, "THE BODY MUST BE A JSON OBJECT"),
            id="not-json",
        ),
        pytest.param(
            {"body": [INSERT_BODY]},
            (400, ERROR_BAD_REQUEST, "THE BODY MUST BE A JSON OBJECT"),
            id="json-array",
        ),
    ],
)
def test_error_rows(
    api: Api, server: FakeWolkvoxServer, request_args: dict[str, Any], expected: tuple[int, str, str]
) -> None:
    arguments = {"path": INSERT_PATH, "body": INSERT_BODY, **request_args}

    response = api.call(arguments.pop("path"), arguments.pop("body"), **arguments)

    status, error, msg = expected
    assert response.status_code == status
    assert response.json() == envelope(status, error, msg)
    assert server.record_count(MODULE) == 0


class TestQuota:
    def test_spent_quota_refuses_every_call_without_counting_it(self) -> None:
        with FakeWolkvoxServer({TOKEN: OPERATION}, quota=3) as small, Api(small) as api:
            assert api.token_info().json()["data"]["available_consumition_options"] == 2
            created_id(api.insert({"Name": "a"}))
            created_id(api.insert({"Name": "b"}))

            refusals = [api.insert({"Name": "c"}), api.token_info(), api.insert({"Name": ""})]

            assert [(r.status_code, r.json()) for r in refusals] == 3 * [
                (403, envelope(403, ERROR_FORBIDDEN, MSG_QUOTA_EXCEEDED))
            ]
            assert small.quota_used(TOKEN) == 3
            assert small.record_count(MODULE) == 2

    def test_refused_and_bad_calls(self, api: Api, server: FakeWolkvoxServer) -> None:
        api.insert({"Name": "a"}, token=None)
        api.insert({"Name": "a"}, token="forged")
        api.call("/nowhere")
        api.insert([])  # admitted, then refused for its body: the server did handle it

        assert server.quota_used(TOKEN) == 1
        assert server.calls() == 4
        assert server.calls(INSERT_PATH) == 3

    def test_quota_per_token(self) -> None:
        tokens = [FakeToken(TOKEN, OPERATION, quota=1), FakeToken(OTHER_TOKEN, OTHER_OPERATION)]
        with FakeWolkvoxServer(tokens, quota=10) as fake, Api(fake) as api:
            assert api.token_info().json()["data"]["token_limit"] == 1
            assert api.token_info().json()["msg"] == MSG_QUOTA_EXCEEDED
            other = api.token_info(token=OTHER_TOKEN, operation=OTHER_OPERATION).json()["data"]
            assert (other["token_limit"], other["token_use_today"]) == (10, 1)


def test_concurrency_is_limited_per_token_in_real_time() -> None:
    with FakeWolkvoxServer({TOKEN: OPERATION, OTHER_TOKEN: OTHER_OPERATION}, latency=0.3) as server:
        barrier = threading.Barrier(4)
        answers: dict[str, list[requests.Response]] = {TOKEN: [], OTHER_TOKEN: []}

        def send(token: str, operation: str) -> None:
            with Api(server) as api:
                barrier.wait(timeout=5)
                answers[token].append(api.token_info(token=token, operation=operation))

        threads = [threading.Thread(target=send, args=(TOKEN, OPERATION)) for _ in range(3)]
        threads.append(threading.Thread(target=send, args=(OTHER_TOKEN, OTHER_OPERATION)))
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=5)

        refused = [r for r in answers[TOKEN] if r.status_code == 403]
        assert len(refused) == 1
        assert refused[0].json() == envelope(403, ERROR_FORBIDDEN, MSG_TOO_MANY_SIMULTANEOUS)
        assert sorted(r.status_code for r in answers[TOKEN]) == [200, 200, 403]
        assert [r.status_code for r in answers[OTHER_TOKEN]] == [200]
        assert server.max_in_flight(TOKEN) == 2
        assert server.max_in_flight(OTHER_TOKEN) == 1
        assert server.quota_used(TOKEN) == 2
        # The request log names the refusal, so that tests can tell a client kept the limit.
        assert [entry.msg for entry in server.request_log if entry.status == 403] == [
            MSG_TOO_MANY_SIMULTANEOUS
        ]
        assert {entry.msg for entry in server.request_log if entry.status == 200} == {None}


def test_requests_one_after_the_other_are_never_refused(api: Api, server: FakeWolkvoxServer) -> None:
    for index in range(20):
        created_id(api.insert({"Name": f"n{index}"}))

    assert server.max_in_flight(TOKEN) == 1


class TestInspection:
    def test_request_log(self, api: Api, server: FakeWolkvoxServer) -> None:
        ids = [item["wolkvox_id"] for item in api.insert_many([{"Name": "a"}, {"Name": "b"}]).json()["data"]]
        api.token_info(token="forged")

        first, second = server.request_log
        assert (first.method, first.path, first.status, first.operation, first.module) == (
            "POST",
            INSERT_MANY_PATH,
            200,
            OPERATION,
            MODULE,
        )
        assert (first.record_count, first.fault, first.ids) == (2, None, tuple(ids))
        assert (second.method, second.status, second.operation, second.module) == ("GET", 403, None, None)
        assert TOKEN not in repr(server.request_log)

    def test_log_size_bounds_the_log_but_not_the_counters(self) -> None:
        with FakeWolkvoxServer({TOKEN: OPERATION}, log_size=2) as fake, Api(fake) as api:
            for index in range(5):
                created_id(api.insert({"Name": f"n{index}"}))

            assert [entry.ids[0] for entry in fake.request_log] == [
                r["wolkvox_id"] for r in fake.records(MODULE)[3:]
            ]
            assert (fake.calls(INSERT_PATH), fake.quota_used(TOKEN)) == (5, 5)

    def test_reset(self, api: Api, server: FakeWolkvoxServer) -> None:
        created_id(api.insert({"Email": "a@x.co"}))

        server.reset()

        assert (server.record_count(MODULE), server.calls(), server.quota_used(TOKEN)) == (0, 0, 0)
        assert (server.request_log, server.max_in_flight(TOKEN)) == ([], 0)
        created_id(api.insert({"Email": "a@x.co"}))  # the unique value was forgotten too

    def test_unknown_token_in_inspection(self, server: FakeWolkvoxServer) -> None:
        with pytest.raises(KeyError):
            server.quota_used("forged")
