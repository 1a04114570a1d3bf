"""The wolkvox connection through a real Airflow 3 api-server's HTTP API, as the UI uses it."""

from __future__ import annotations

import json
import re
from collections.abc import Callable

import requests

from airflow_provider_wolkvox import CONN_FIELDS, HOOK_CLASS_NAME
from airflow_provider_wolkvox import api as wolkvox_api
from airflow_provider_wolkvox.hooks.wolkvox import WolkvoxHook
from airflow_provider_wolkvox.testing import FakeWolkvoxServer
from tests.conftest import OPERATION, TOKEN
from tests.ui.api_server import AirflowApiServer
from tests.ui.conftest import REQUEST_TIMEOUT, UI_TESTS

pytestmark = UI_TESTS

QUOTA_MESSAGE = re.compile(r"(\d+) of (\d+) calls left today")


def test_hook_meta_describes_the_wolkvox_form(
    airflow_api_server: AirflowApiServer, api: requests.Session
) -> None:
    answer = api.get(f"{airflow_api_server.url}/ui/connections/hook_meta", timeout=REQUEST_TIMEOUT)

    assert answer.status_code == 200, answer.text
    [meta] = [item for item in answer.json() if item["connection_type"] == "wolkvox"]
    assert meta["hook_name"] == "Wolkvox CRM"
    assert meta["hook_class_name"] == HOOK_CLASS_NAME
    # Airflow 3 (3.0 to 3.3) sends null here for every connection type, whatever the provider
    # declares (its HookMetaService.hook_meta_data sets it so); once Airflow fills it, it must be
    # the hook's default, the id every operator uses.
    if meta["default_conn_name"] is None:
        assert {item["default_conn_name"] for item in answer.json()} == {None}
    else:
        assert meta["default_conn_name"] == WolkvoxHook.default_conn_name == "wolkvox_default"
    standard = meta["standard_fields"]
    assert standard["host"] == {"hidden": False, "title": "CRM server", "placeholder": "crm0001.wolkvox.com"}
    assert standard["password"]["hidden"] is False
    assert standard["password"]["title"] == "Wolkvox-Token"
    assert "Tokens" in standard["password"]["placeholder"]
    assert all(standard[name]["hidden"] for name in ("login", "port", "url_schema"))
    extra = meta["extra_fields"]
    assert set(extra) == {"operation", "timeout", "verify", "allow_insecure_http"}
    for name, spec in CONN_FIELDS.items():
        assert extra[name]["schema"]["title"] == spec["label"]
        assert extra[name]["description"] == spec["description"]
    assert extra["operation"]["schema"]["type"] == ["string", "null"]
    assert extra["timeout"]["schema"]["type"] == ["number", "null"]
    # The switches start in their safe position.
    assert extra["verify"]["value"] is True
    assert extra["allow_insecure_http"]["value"] is False


def test_created_connection_round_trips_with_the_token_masked(
    airflow_api_server: AirflowApiServer,
    api: requests.Session,
    create_connection: Callable[..., dict],
    fake_crm: FakeWolkvoxServer,
) -> None:
    create_connection("wolkvox_round_trip", fake_crm.url, timeout=15)

    answer = api.get(
        f"{airflow_api_server.url}/api/v2/connections/wolkvox_round_trip", timeout=REQUEST_TIMEOUT
    )

    assert answer.status_code == 200, answer.text
    stored = answer.json()
    assert stored["conn_type"] == "wolkvox"
    assert stored["host"] == fake_crm.url
    assert json.loads(stored["extra"]) == {"operation": OPERATION, "timeout": 15}
    assert stored["password"] == "***"
    listing = api.get(f"{airflow_api_server.url}/api/v2/connections", timeout=REQUEST_TIMEOUT)
    assert "wolkvox_round_trip" in listing.text
    assert TOKEN not in answer.text + listing.text


def test_connection_test_reports_the_quota(
    airflow_api_server: AirflowApiServer, api: requests.Session, fake_crm: FakeWolkvoxServer
) -> None:
    body = {
        "connection_id": "wolkvox_unsaved",
        "conn_type": "wolkvox",
        "host": fake_crm.url,
        "password": TOKEN,
        "extra": json.dumps({"operation": OPERATION}),
    }

    answer = api.post(f"{airflow_api_server.url}/api/v2/connections/test", json=body, timeout=REQUEST_TIMEOUT)

    assert answer.status_code == 200, answer.text
    result = answer.json()
    assert result["status"] is True, result
    assert result["message"].startswith(f"Connected to {fake_crm.url}: ")
    assert_quota_figures(result["message"], fake_crm)
    assert TOKEN not in result["message"]
    # Read-only: one token-information call, nothing inserted.
    assert fake_crm.calls() == fake_crm.calls(wolkvox_api.TOKEN_INFO_PATH) == 1


def test_saved_connection_is_tested_with_its_stored_token(
    airflow_api_server: AirflowApiServer,
    api: requests.Session,
    create_connection: Callable[..., dict],
    fake_crm: FakeWolkvoxServer,
) -> None:
    """The UI's flow for a saved connection: it sends the masked password, the server restores it."""
    saved = create_connection("wolkvox_saved", fake_crm.url)

    answer = api.post(
        f"{airflow_api_server.url}/api/v2/connections/test",
        json={**saved, "password": "***"},
        timeout=REQUEST_TIMEOUT,
    )

    assert answer.status_code == 200, answer.text
    assert answer.json()["status"] is True, answer.json()
    assert_quota_figures(answer.json()["message"], fake_crm)


def test_connection_test_with_a_wrong_token_says_why(
    airflow_api_server: AirflowApiServer, api: requests.Session, fake_crm: FakeWolkvoxServer
) -> None:
    wrong_token = "wrong-token-5d1c08e9a7"
    body = {
        "connection_id": "wolkvox_wrong_token",
        "conn_type": "wolkvox",
        "host": fake_crm.url,
        "password": wrong_token,
        "extra": json.dumps({"operation": OPERATION}),
    }

    answer = api.post(f"{airflow_api_server.url}/api/v2/connections/test", json=body, timeout=REQUEST_TIMEOUT)

    assert answer.status_code == 200, answer.text
    result = answer.json()
    assert result["status"] is False
    assert "403" in result["message"]
    assert wolkvox_api.MSG_INVALID_TOKEN in result["message"]
    assert wrong_token not in result["message"]
    assert fake_crm.calls() == 1


def assert_quota_figures(message: str, fake_crm: FakeWolkvoxServer) -> None:
    """The message gives the token's calls left and daily quota, as the fake CRM counts them."""
    match = QUOTA_MESSAGE.search(message)
    assert match, message
    assert (int(match[1]), int(match[2])) == (500 - fake_crm.quota_used(TOKEN), 500)
