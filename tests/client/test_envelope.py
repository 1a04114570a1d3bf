"""The envelope rules and the documented error table, one request at a time (requests_mock)."""

from __future__ import annotations

import json

import pytest

from airflow_provider_wolkvox import api
from airflow_provider_wolkvox.client.envelope import (
    BODY_QUOTE_LIMIT,
    is_record_id,
    query_records,
    read_envelope,
    record_id,
    record_ids,
)
from airflow_provider_wolkvox.exceptions import (
    WolkvoxAuthError,
    WolkvoxBadRequestError,
    WolkvoxConcurrencyLimitError,
    WolkvoxError,
    WolkvoxMaintenanceError,
    WolkvoxMalformedResponseError,
    WolkvoxQuotaExceededError,
    WolkvoxRateLimitError,
    WolkvoxServerError,
    WolkvoxUnreadableIdError,
)


def body(code: object, error: object, msg: str, data: object = None) -> str:
    return json.dumps({"code": code, "error": error, "msg": msg, "data": data})


@pytest.mark.parametrize("code", [200, "200"])
@pytest.mark.parametrize("error", ["null", None, "NULL", ""])
def test_success_envelope_variants(code: object, error: object) -> None:
    text = body(code, error, "Succesfully create record", {"wolkvox_id": "64cb1f0e2a9d4c0012ab34cd"})
    data = read_envelope(200, text, endpoint="insert.php")
    assert record_id(data, endpoint="insert.php", module="contacts") == "64cb1f0e2a9d4c0012ab34cd"


# The documented error table (shared/wolkvox-api.md), row by row.
ERROR_TABLE = [
    (400, api.ERROR_BAD_REQUEST, api.MSG_UNKNOWN_API, WolkvoxBadRequestError, True),
    (400, api.ERROR_BAD_REQUEST, api.MSG_MISSING_PARAMETERS, WolkvoxBadRequestError, True),
    (401, api.ERROR_UNAUTHORIZED, api.MSG_MISSING_TOKEN, WolkvoxAuthError, True),
    (403, api.ERROR_FORBIDDEN, api.MSG_INVALID_TOKEN, WolkvoxAuthError, True),
    (403, api.ERROR_FORBIDDEN, api.MSG_QUOTA_EXCEEDED, WolkvoxQuotaExceededError, True),
    (403, api.ERROR_FORBIDDEN, api.MSG_TOO_MANY_SIMULTANEOUS, WolkvoxConcurrencyLimitError, False),
    (403, api.ERROR_FORBIDDEN, "API UNDER MAINTENANCE", WolkvoxMaintenanceError, False),
    (403, api.ERROR_FORBIDDEN, "Api en mantenimiento", WolkvoxMaintenanceError, False),
    (404, "NOT FOUND", "whatever", WolkvoxBadRequestError, True),
    (405, "METHOD NOT ALLOWED", "", WolkvoxBadRequestError, True),
    (412, "PRECONDITION FAILED", "", WolkvoxBadRequestError, True),
    (429, "TOO MANY REQUESTS", "", WolkvoxRateLimitError, False),
    (500, "INTERNAL SERVER ERROR", "boom", WolkvoxServerError, False),
    (502, "BAD GATEWAY", "", WolkvoxServerError, False),
    (503, "SERVICE UNAVAILABLE", "", WolkvoxMaintenanceError, False),
]


@pytest.mark.parametrize(("status", "error", "msg", "kind", "fail_fast"), ERROR_TABLE)
@pytest.mark.parametrize("code_as_text", [False, True])
def test_error_table(
    status: int, error: str, msg: str, kind: type[WolkvoxError], fail_fast: bool, code_as_text: bool
) -> None:
    code = str(status) if code_as_text else status
    with pytest.raises(kind) as raised:
        read_envelope(status, body(code, error, msg), endpoint="insert.php", module="contacts")
    assert type(raised.value) is kind
    assert raised.value.status_code == status
    assert raised.value.error == error
    assert raised.value.msg == msg
    assert raised.value.endpoint == "insert.php"
    assert raised.value.module == "contacts"
    assert raised.value.fail_fast is fail_fast
    assert str(raised.value).startswith(f"wolkvox insert.php (module 'contacts'): HTTP {status}: {error}")


@pytest.mark.parametrize(
    ("code", "error", "kind"),
    [
        (403, api.ERROR_FORBIDDEN, WolkvoxAuthError),  # error body under HTTP 200
        ("400", api.ERROR_BAD_REQUEST, WolkvoxBadRequestError),
        (200, "SOMETHING WENT WRONG", WolkvoxBadRequestError),  # code says 200, error says otherwise
    ],
)
def test_http_200_with_error_body_is_an_error(code: object, error: str, kind: type[WolkvoxError]) -> None:
    with pytest.raises(kind):
        read_envelope(200, body(code, error, api.MSG_INVALID_TOKEN), endpoint="insert.php")


@pytest.mark.parametrize(
    ("error", "msg", "kind"),
    [
        (api.ERROR_FORBIDDEN, api.MSG_QUOTA_EXCEEDED, WolkvoxQuotaExceededError),
        (api.ERROR_FORBIDDEN, api.MSG_TOO_MANY_SIMULTANEOUS, WolkvoxConcurrencyLimitError),
        (api.ERROR_FORBIDDEN, api.MSG_INVALID_TOKEN, WolkvoxAuthError),
        (api.ERROR_UNAUTHORIZED, api.MSG_MISSING_TOKEN, WolkvoxAuthError),
    ],
)
def test_error_body_with_200_codes_is_classified_by_its_error(
    error: str, msg: str, kind: type[WolkvoxError]
) -> None:
    with pytest.raises(kind):
        read_envelope(200, body(200, error, msg), endpoint="insert.php")


def test_quota_403_is_told_apart_case_insensitively() -> None:
    with pytest.raises(WolkvoxQuotaExceededError):
        read_envelope(403, body(403, "forbidden", "Token limit exceeded"), endpoint="insert.php")


@pytest.mark.parametrize(
    "text", ["<html><body>502 Bad Gateway</body></html>", "", "[1, 2]", "null", "x" * 5000]
)
def test_non_envelope_success_is_malformed_and_quoted_briefly(text: str) -> None:
    with pytest.raises(WolkvoxMalformedResponseError) as raised:
        read_envelope(200, text, endpoint="insert.php", module="contacts")
    message = str(raised.value)
    assert text[:BODY_QUOTE_LIMIT] in message
    assert len(message) < BODY_QUOTE_LIMIT + 150


def test_non_json_error_status_keeps_its_kind() -> None:
    with pytest.raises(WolkvoxServerError) as raised:
        read_envelope(502, "<html>Bad Gateway</html>", endpoint="insert.php")
    assert raised.value.msg == "<html>Bad Gateway</html>"


@pytest.mark.parametrize("data", [None, {}, {"wolkvox_id": ""}, {"wolkvox_id": None}, ["64cb"], "64cb"])
def test_success_without_an_id_is_malformed(data: object) -> None:
    text = body(200, "null", "Succesfully create record", data)
    with pytest.raises(WolkvoxMalformedResponseError, match="without a wolkvox_id"):
        record_id(read_envelope(200, text, endpoint="insert.php"), endpoint="insert.php", module=None)


def test_batch_ids_matched_one_to_one_or_not_at_all() -> None:
    ids = [{"wolkvox_id": f"{i:024x}"} for i in range(3)]
    assert record_ids(ids, 3) == [f"{i:024x}" for i in range(3)]
    assert record_ids(ids, 4) is None
    assert record_ids([*ids[:2], {"id": "x"}], 3) is None
    assert record_ids({"inserted": 3}, 3) is None
    assert record_ids(None, 3) is None


@pytest.mark.parametrize(
    ("wolkvox_id", "accepted"),
    [
        ("64cb1f0e2a9d4c0012ab34cd", True),
        ("abc_DEF-123", True),
        ("a" * 64, True),
        ("a" * 65, False),
        ("../../etc\nFAKE LOG LINE", False),
        ("64cb 1f0e", False),
        ("64cb1f0e\t", False),
        ("***", False),
        ("caf\u00e9", False),
        ("64cb.1f0e", False),
        (5, False),
        (True, False),
        (["64cb"], False),
    ],
)
def test_ids_are_taken_only_in_a_conservative_form(wolkvox_id: object, accepted: bool) -> None:
    assert is_record_id(wolkvox_id) is accepted
    data = {"wolkvox_id": wolkvox_id}
    if accepted:
        assert record_id(data, endpoint="insert.php", module="contacts") == wolkvox_id
        assert record_ids([data], 1) == [wolkvox_id]
    else:
        with pytest.raises(
            WolkvoxUnreadableIdError, match="the record was created, but the id in the answer"
        ):
            record_id(data, endpoint="insert.php", module="contacts")
        assert record_ids([data], 1) is None
    records = [{**data, "Email": "a@x"}]
    if accepted:
        assert query_records(records, "query.php") == records
    else:
        with pytest.raises(WolkvoxMalformedResponseError, match="not a list of records with readable ids"):
            query_records(records, "query.php")


def test_one_id_claimed_by_several_records_matches_none_of_them() -> None:
    same = {"wolkvox_id": "64cb1f0e2a9d4c0012ab34cd"}
    assert record_ids([same, same, same], 3) is None
    assert record_ids([same, {"wolkvox_id": "64cb1f0e2a9d4c0012ab34ce"}], 2) is not None
