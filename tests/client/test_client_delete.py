"""WolkvoxClient.delete against requests_mock: the documented body, the envelope, retries of a lost answer."""

from __future__ import annotations

import pytest
import requests
import requests_mock as rm

from airflow_provider_wolkvox import api
from airflow_provider_wolkvox.client import RetryPolicy, WolkvoxClient
from airflow_provider_wolkvox.exceptions import WolkvoxBadRequestError, WolkvoxNoAnswerError
from tests.conftest import BASE_URL, OPERATION, TOKEN

URL = f"{BASE_URL}{api.DELETE_PATH}"
IDS = ["64cb1f0e2a9d4c0012ab34cd", "64cb1f0e2a9d4c0012ab34ce"]
DELETED = {"json": {"code": 200, "error": "null", "msg": "Succesfully delete record", "data": {"deleted": 2}}}


@pytest.fixture
def client() -> WolkvoxClient:
    return WolkvoxClient(BASE_URL, TOKEN, retry_policy=RetryPolicy(max_attempts=3, base_delay=0.001))


@pytest.mark.parametrize(("ids", "multiple"), [(IDS, True), (IDS[:1], False)])
def test_delete_sends_the_documented_request(
    client: WolkvoxClient, requests_mock: rm.Mocker, ids: list[str], multiple: bool
) -> None:
    requests_mock.post(URL, **DELETED)

    client.delete(OPERATION, "contacts", ids)

    [request] = requests_mock.request_history
    assert (request.method, request.url, request.headers["Wolkvox-Token"]) == ("POST", URL, TOKEN)
    assert request.json() == {
        "operation": OPERATION,
        "module": "contacts",
        "multiple": multiple,
        "wolkvox-id": ids,
    }


def test_a_refused_delete_raises_the_crm_s_reason(client: WolkvoxClient, requests_mock: rm.Mocker) -> None:
    body = {"code": 400, "error": "BAD REQUEST", "msg": api.MSG_RECORD_DOES_NOT_EXIST}
    requests_mock.post(URL, status_code=400, json=body)

    with pytest.raises(WolkvoxBadRequestError) as raised:
        client.delete(OPERATION, "contacts", IDS)

    assert (raised.value.status_code, raised.value.msg) == (400, api.MSG_RECORD_DOES_NOT_EXIST)
    assert len(requests_mock.request_history) == 1


def test_a_lost_answer_is_retried_a_delete_being_idempotent(
    client: WolkvoxClient, requests_mock: rm.Mocker
) -> None:
    requests_mock.post(URL, [{"exc": requests.ConnectionError("reset by peer")}, DELETED])

    client.delete(OPERATION, "contacts", IDS)

    assert len(requests_mock.request_history) == 2


def test_answers_lost_every_time_surface_as_no_answer(
    client: WolkvoxClient, requests_mock: rm.Mocker
) -> None:
    requests_mock.post(URL, exc=requests.ConnectionError("reset by peer"))

    with pytest.raises(WolkvoxNoAnswerError):
        client.delete(OPERATION, "contacts", IDS)
