"""WolkvoxClient one request at a time (requests_mock): exact requests, retry policy, outcome unknown."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
import requests
import requests_mock as rm

from airflow_provider_wolkvox import api
from airflow_provider_wolkvox.client import RetryPolicy, TokenInfo, WolkvoxClient
from airflow_provider_wolkvox.exceptions import (
    WolkvoxAuthError,
    WolkvoxConcurrencyLimitError,
    WolkvoxConfigError,
    WolkvoxMalformedResponseError,
    WolkvoxNoAnswerError,
    WolkvoxOutcomeUnknownError,
    WolkvoxServerError,
)
from airflow_provider_wolkvox.fields import encode_json
from tests.conftest import BASE_URL, OPERATION, TOKEN

FAST_RETRIES = RetryPolicy(max_attempts=4, base_delay=0.001, max_delay=0.002)
NEW_ID = "64cb1f0e2a9d4c0012ab34cd"


def ok(data: object, code: object = 200) -> dict:
    return {"json": {"code": code, "error": "null", "msg": "Succesfully create record", "data": data}}


def refused(status: int, error: str, msg: str) -> dict:
    return {"status_code": status, "json": {"code": status, "error": error, "msg": msg}}


@pytest.fixture
def client() -> WolkvoxClient:
    return WolkvoxClient(BASE_URL, TOKEN, timeout=7.5, retry_policy=FAST_RETRIES)


def test_insert_sends_the_documented_request(client: WolkvoxClient, requests_mock: rm.Mocker) -> None:
    requests_mock.post(f"{BASE_URL}/server/API/v2/custom/insert.php", **ok({"wolkvox_id": NEW_ID}))
    fields = {
        "Categoria": "Arepas",
        "Precio": 6700,
        "Dirección": {"type": "address", "value": "Calle 145a #12-60"},
    }

    assert client.insert(OPERATION, "contacts", fields) == NEW_ID

    [request] = requests_mock.request_history
    assert request.method == "POST"
    assert request.url == "https://crm0001.wolkvox.com/server/API/v2/custom/insert.php"
    assert request.headers["Wolkvox-Token"] == TOKEN
    assert request.headers["Content-Type"] == "application/json"
    assert request.json() == {"operation": OPERATION, "module": "contacts", "fields": fields}
    # The watchdog bounds the whole request to 7.5 s; the socket timeouts are a backstop beyond it.
    assert request.timeout == (7.5, 8.5)
    assert request.verify is not False  # True, or the CA bundle the environment names


def test_insert_batch_sends_fields_as_an_array(client: WolkvoxClient, requests_mock: rm.Mocker) -> None:
    ids = [f"{n:024x}" for n in range(3)]
    requests_mock.post(
        f"{BASE_URL}/server/API/v2/custom/insertMany.php", **ok([{"wolkvox_id": i} for i in ids])
    )
    records = [{"Nombre": f"n{n}"} for n in range(3)]
    body = encode_json({"operation": OPERATION, "module": "leads", "fields": records})

    assert client.insert_batch("leads", body, 3) == ids
    [request] = requests_mock.request_history
    assert request.url == "https://crm0001.wolkvox.com/server/API/v2/custom/insertMany.php"
    assert request.json() == {"operation": OPERATION, "module": "leads", "fields": records}
    assert request.headers["Wolkvox-Token"] == TOKEN


def test_insert_batch_without_matching_ids_returns_none(
    client: WolkvoxClient, requests_mock: rm.Mocker
) -> None:
    requests_mock.post(f"{BASE_URL}{api.INSERT_MANY_PATH}", **ok({"inserted": 3}))
    assert client.insert_batch("leads", b"{}", 3) is None


def test_token_info_reads_the_quota_figures(client: WolkvoxClient, requests_mock: rm.Mocker) -> None:
    requests_mock.get(
        f"{BASE_URL}/server/API/v2/token/tokenInformation.php",
        json={
            "code": "200",
            "error": "null",
            "msg": "1 records were are found",
            "data": {
                "description": "token",
                "token_limit": 4800,
                "token_use_today": 12,
                "available_consumition_options": 4788,
                "hours_to_restart_count": 15,
            },
        },
    )
    assert client.token_info(OPERATION) == TokenInfo(
        token_limit=4800, token_use_today=12, calls_left=4788, hours_to_reset=15.0, description="token"
    )
    [request] = requests_mock.request_history
    assert request.method == "GET"
    assert (
        request.url
        == f"https://crm0001.wolkvox.com/server/API/v2/token/tokenInformation.php?operation={OPERATION}"
    )
    assert request.headers["Wolkvox-Token"] == TOKEN
    assert request.body is None


def test_query_sends_field_and_value(client: WolkvoxClient, requests_mock: rm.Mocker) -> None:
    requests_mock.post(
        f"{BASE_URL}{api.QUERY_PATH}",
        json={
            "code": "200",
            "error": "null",
            "msg": "1 records were are found",
            "data": [{"wolkvox_id": NEW_ID}],
        },
    )
    assert client.query(OPERATION, "contacts", "Email", "a@b.co") == [{"wolkvox_id": NEW_ID}]
    assert requests_mock.last_request.json() == {
        "operation": OPERATION,
        "module": "contacts",
        "field": "Email",
        "value": "a@b.co",
    }


def test_one_session_is_reused(client: WolkvoxClient, requests_mock: rm.Mocker) -> None:
    requests_mock.post(f"{BASE_URL}{api.INSERT_PATH}", **ok({"wolkvox_id": NEW_ID}))
    session = client._session
    client.insert(OPERATION, "contacts", {"a": 1})
    client.insert(OPERATION, "contacts", {"a": 2})
    assert client._session is session
    assert client.calls == 2


@pytest.mark.parametrize(
    "first",
    [
        refused(403, api.ERROR_FORBIDDEN, api.MSG_TOO_MANY_SIMULTANEOUS),
        refused(403, api.ERROR_FORBIDDEN, "API IN MAINTENANCE"),
        refused(429, "TOO MANY REQUESTS", ""),
        refused(503, "SERVICE UNAVAILABLE", ""),
        {"exc": requests.ConnectTimeout},
    ],
    ids=["simultaneous", "maintenance", "429", "503", "connect-timeout"],
)
def test_insert_retries_what_the_server_cannot_have_processed(
    client: WolkvoxClient, requests_mock: rm.Mocker, first: dict
) -> None:
    requests_mock.post(f"{BASE_URL}{api.INSERT_PATH}", [first, ok({"wolkvox_id": NEW_ID})])
    assert client.insert(OPERATION, "contacts", {"a": 1}) == NEW_ID
    assert requests_mock.call_count == 2


def test_retries_are_bounded(client: WolkvoxClient, requests_mock: rm.Mocker) -> None:
    requests_mock.post(
        f"{BASE_URL}{api.INSERT_PATH}", **refused(403, "FORBIDDEN", api.MSG_TOO_MANY_SIMULTANEOUS)
    )
    with pytest.raises(WolkvoxConcurrencyLimitError):
        client.insert(OPERATION, "contacts", {"a": 1})
    assert requests_mock.call_count == FAST_RETRIES.max_attempts


@pytest.mark.parametrize(
    ("answer", "cause"),
    [
        ({"exc": requests.ReadTimeout}, WolkvoxNoAnswerError),
        ({"exc": requests.ConnectionError("Connection aborted.")}, WolkvoxNoAnswerError),
        (refused(500, "INTERNAL SERVER ERROR", "boom"), WolkvoxServerError),
        (refused(502, "BAD GATEWAY", ""), WolkvoxServerError),
        (refused(504, "GATEWAY TIMEOUT", ""), WolkvoxServerError),
        ({"text": "<html>proxy error</html>"}, WolkvoxMalformedResponseError),
        (ok({"nothing": "here"}), WolkvoxMalformedResponseError),
    ],
    ids=["read-timeout", "dropped", "500", "502", "504", "non-json-200", "id-less-200"],
)
def test_insert_never_retries_blindly_after_the_server_got_it(
    client: WolkvoxClient, requests_mock: rm.Mocker, answer: dict, cause: type
) -> None:
    requests_mock.post(f"{BASE_URL}{api.INSERT_PATH}", [answer, ok({"wolkvox_id": NEW_ID})])
    with pytest.raises(WolkvoxOutcomeUnknownError, match="outcome is unknown") as raised:
        client.insert(OPERATION, "contacts", {"a": 1})
    assert isinstance(raised.value.__cause__, cause)
    assert raised.value.fail_fast
    assert requests_mock.call_count == 1


@pytest.mark.parametrize(
    "first",
    [{"exc": requests.ReadTimeout}, refused(500, "INTERNAL SERVER ERROR", ""), {"text": "<html/>"}],
    ids=["read-timeout", "500", "non-json"],
)
def test_reads_are_retried_after_uncertain_failures(
    client: WolkvoxClient, requests_mock: rm.Mocker, first: dict
) -> None:
    info = {
        "token_limit": 10,
        "token_use_today": 1,
        "available_consumition_options": 9,
        "hours_to_restart_count": 2,
    }
    requests_mock.get(f"{BASE_URL}{api.TOKEN_INFO_PATH}", [first, ok(info, code="200")])
    assert client.token_info(OPERATION).calls_left == 9
    assert requests_mock.call_count == 2


def test_fail_fast_errors_are_not_retried(client: WolkvoxClient, requests_mock: rm.Mocker) -> None:
    requests_mock.post(f"{BASE_URL}{api.INSERT_PATH}", **refused(403, "FORBIDDEN", api.MSG_INVALID_TOKEN))
    with pytest.raises(WolkvoxAuthError):
        client.insert(OPERATION, "contacts", {"a": 1})
    assert requests_mock.call_count == 1


def test_token_echoed_by_the_server_is_redacted(client: WolkvoxClient, requests_mock: rm.Mocker) -> None:
    requests_mock.post(
        f"{BASE_URL}{api.INSERT_PATH}", **refused(403, "FORBIDDEN", f"PLEASE VALIDATE TOKEN {TOKEN}")
    )
    with pytest.raises(WolkvoxAuthError) as raised:
        client.insert(OPERATION, "contacts", {"a": 1})
    assert TOKEN not in str(raised.value)
    assert TOKEN not in (raised.value.msg or "")
    assert "PLEASE VALIDATE TOKEN ***" in str(raised.value)


def test_repr_hides_the_token(client: WolkvoxClient) -> None:
    assert TOKEN not in repr(client)
    assert repr(client) == "WolkvoxClient(base_url='https://crm0001.wolkvox.com', token='***')"


def test_body_is_utf8_json_without_ascii_escapes() -> None:
    body = encode_json({"fields": {"Dirección": "Bogotá"}})
    assert body == '{"fields":{"Dirección":"Bogotá"}}'.encode()
    assert json.loads(body) == {"fields": {"Dirección": "Bogotá"}}


def test_proxy_and_ca_bundle_from_the_environment_are_kept(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    ca_bundle = tmp_path / "private-ca.pem"
    ca_bundle.write_text("")
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.internal:3128")
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(ca_bundle))
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    with WolkvoxClient(BASE_URL, TOKEN) as client:
        assert client._session.proxies.get("https") == "http://proxy.internal:3128"
        assert client._session.verify == str(ca_bundle)
    with WolkvoxClient(BASE_URL, TOKEN, verify=False) as client:
        assert client._session.verify is False


def test_a_missing_ca_bundle_is_a_config_error(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    missing = tmp_path / "gone.pem"
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(missing))
    with pytest.raises(WolkvoxConfigError, match=f"the TLS CA bundle '{missing}' .* does not exist"):
        WolkvoxClient(BASE_URL, TOKEN)
    # Irrelevant where nothing is verified: plain http (the fake on loopback) or verify=False.
    WolkvoxClient("http://127.0.0.1:8765", TOKEN).close()
    WolkvoxClient(BASE_URL, TOKEN, verify=False).close()


@pytest.mark.parametrize("status", [301, 302, 307, 308])
def test_redirects_are_not_followed_so_the_token_stays_home(
    client: WolkvoxClient, requests_mock: rm.Mocker, status: int
) -> None:
    requests_mock.post(
        f"{BASE_URL}{api.INSERT_PATH}",
        status_code=status,
        headers={"Location": "https://elsewhere.example/x"},
    )
    requests_mock.post("https://elsewhere.example/x", json={"code": 200, "data": {"wolkvox_id": NEW_ID}})
    with pytest.raises(WolkvoxConfigError, match=r"redirects to 'https://elsewhere\.example/x'") as raised:
        client.insert(OPERATION, "contacts", {"a": 1})
    assert raised.value.fail_fast
    assert [r.url for r in requests_mock.request_history] == [f"{BASE_URL}{api.INSERT_PATH}"]


def test_an_echoed_token_is_redacted_before_the_body_is_quoted(
    client: WolkvoxClient, requests_mock: rm.Mocker
) -> None:
    # The token sits across the 200-character cut of the quoted body.
    requests_mock.post(f"{BASE_URL}{api.INSERT_PATH}", text="x" * 190 + TOKEN + "y" * 50)
    with pytest.raises(WolkvoxOutcomeUnknownError) as raised:
        client.insert(OPERATION, "contacts", {"a": 1})
    assert TOKEN[:5] not in str(raised.value)
    assert "x***y" in str(raised.value)


@pytest.mark.parametrize(
    ("answer", "busy"),
    [
        ({"exc": requests.ReadTimeout}, True),
        (refused(502, "BAD GATEWAY", ""), True),
        (refused(504, "GATEWAY TIMEOUT", ""), True),
        (refused(500, "INTERNAL SERVER ERROR", "boom"), False),
        ({"text": "<html>proxy error</html>"}, False),
    ],
    ids=["read-timeout", "502", "504", "500", "non-json-200"],
)
def test_an_unknown_outcome_says_until_when_the_crm_may_still_be_busy(
    client: WolkvoxClient, requests_mock: rm.Mocker, answer: dict, busy: bool
) -> None:
    requests_mock.post(f"{BASE_URL}{api.INSERT_PATH}", [answer])
    before = time.time()
    with pytest.raises(WolkvoxOutcomeUnknownError) as raised:
        client.insert(OPERATION, "contacts", {"a": 1})
    after = time.time()

    if busy:
        # The CRM (behind a gateway, or past a lost answer) may work on it till the timeout is over.
        assert raised.value.busy_until is not None
        assert before + client.timeout <= raised.value.busy_until <= after + client.timeout
    else:  # it answered: it is done with the request
        assert raised.value.busy_until is None
