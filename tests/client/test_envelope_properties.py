"""Property-based: whatever the server answers, the parser raises a WolkvoxError or yields an id."""

from __future__ import annotations

import json
from typing import Any

import requests_mock as rm
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from airflow_provider_wolkvox import api
from airflow_provider_wolkvox.client import RetryPolicy, WolkvoxClient
from airflow_provider_wolkvox.client.envelope import read_envelope, record_id
from airflow_provider_wolkvox.exceptions import WolkvoxError
from tests.conftest import BASE_URL, OPERATION, TOKEN

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=30),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=12,
)
codes = st.one_of(
    st.none(),
    st.integers(-1, 700),
    st.integers(100, 599).map(str),
    st.text(max_size=5),
    st.booleans(),
    st.floats(),
)
envelopes = st.fixed_dictionaries(
    {},
    optional={
        "code": codes,
        "error": st.one_of(
            st.none(), st.sampled_from(["null", "NULL", "", "BAD REQUEST", "FORBIDDEN"]), st.text()
        ),
        "msg": st.one_of(
            st.none(), st.sampled_from([api.MSG_QUOTA_EXCEEDED, api.MSG_TOO_MANY_SIMULTANEOUS]), st.text()
        ),
        "data": st.one_of(
            json_values,
            st.fixed_dictionaries({"wolkvox_id": st.one_of(st.text(max_size=30), json_values)}),
        ),
    },
)
bodies = st.one_of(
    envelopes.map(json.dumps),
    json_values.map(json.dumps),
    st.text(max_size=300),
    st.binary(max_size=100).map(repr),
)
statuses = st.integers(100, 599)


@given(status=statuses, body=bodies)
def test_parser_raises_only_wolkvox_errors_and_never_succeeds_without_an_id(status: int, body: str) -> None:
    try:
        wolkvox_id = record_id(
            read_envelope(status, body, endpoint="insert.php", module="contacts"),
            endpoint="insert.php",
            module="contacts",
        )
    except WolkvoxError as error:  # any other exception fails the test
        failure: WolkvoxError | None = error
    else:
        failure = None
    if failure is not None:
        assert failure.endpoint == "insert.php"
        return
    assert isinstance(wolkvox_id, str)
    assert wolkvox_id
    assert status < 400


@settings(max_examples=60, suppress_health_check=[HealthCheck.too_slow])
@given(status=statuses, body=bodies)
def test_client_insert_raises_only_wolkvox_errors(status: int, body: str) -> None:
    policy = RetryPolicy(max_attempts=2, base_delay=0, max_delay=0)
    with rm.Mocker() as mock, WolkvoxClient(BASE_URL, TOKEN, retry_policy=policy) as client:
        mock.post(f"{BASE_URL}{api.INSERT_PATH}", status_code=status, text=body)
        try:
            wolkvox_id: Any = client.insert(OPERATION, "contacts", {"a": 1})
        except WolkvoxError:
            return
    assert isinstance(wolkvox_id, str)
    assert wolkvox_id
