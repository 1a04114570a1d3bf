"""WolkvoxHook: Connection → configured client (requests_mock for the one request it sends)."""

from __future__ import annotations

import json

import pytest
import requests_mock as rm

from airflow_provider_wolkvox import api
from airflow_provider_wolkvox.exceptions import WolkvoxConfigError, WolkvoxInputError
from airflow_provider_wolkvox.hooks.wolkvox import WolkvoxHook
from tests.conftest import BASE_URL, OPERATION, TOKEN, connection_json

NEW_ID = "64cb1f0e2a9d4c0012ab34cd"
TOKEN_INFO = {
    "code": "200",
    "error": "null",
    "msg": "1 records were are found",
    "data": {
        "description": "token",
        "token_limit": 4800,
        "token_use_today": 1,
        "available_consumition_options": 4799,
        "hours_to_restart_count": 15,
    },
}


def use_connection(
    monkeypatch: pytest.MonkeyPatch, host: str = "crm0001.wolkvox.com", **extra: object
) -> None:
    monkeypatch.setenv("AIRFLOW_CONN_WOLKVOX_DEFAULT", connection_json(host, **extra))


def test_class_attributes_are_the_public_names() -> None:
    assert WolkvoxHook.conn_name_attr == "wolkvox_conn_id"
    assert WolkvoxHook.default_conn_name == "wolkvox_default"
    assert WolkvoxHook.conn_type == "wolkvox"
    assert WolkvoxHook.hook_name == "Wolkvox CRM"


def test_insert_posts_to_the_connection_host(wolkvox_conn: str, requests_mock: rm.Mocker) -> None:
    requests_mock.post(
        f"{BASE_URL}/server/API/v2/custom/insert.php",
        json={
            "code": 200,
            "error": "null",
            "msg": "Succesfully create record",
            "data": {"wolkvox_id": NEW_ID},
        },
    )
    hook = WolkvoxHook()
    assert hook.insert("contacts", {"Nombre": "Ana"}) == NEW_ID
    request = requests_mock.last_request
    assert request.headers["Wolkvox-Token"] == TOKEN
    assert request.json() == {"operation": OPERATION, "module": "contacts", "fields": {"Nombre": "Ana"}}
    assert request.timeout == (10.0, 61.0)  # the 60 s default, plus the backstop beyond the watchdog


def test_operation_argument_wins_over_the_extra(wolkvox_conn: str, requests_mock: rm.Mocker) -> None:
    requests_mock.post(
        f"{BASE_URL}{api.INSERT_PATH}", json={"code": 200, "error": "null", "data": {"wolkvox_id": NEW_ID}}
    )
    WolkvoxHook().insert("contacts", {"a": 1}, operation="other_op")
    assert requests_mock.last_request.json()["operation"] == "other_op"


def test_missing_operation_is_a_clear_error(
    monkeypatch: pytest.MonkeyPatch, requests_mock: rm.Mocker
) -> None:
    monkeypatch.setenv(
        "AIRFLOW_CONN_WOLKVOX_DEFAULT",
        json.dumps({"conn_type": "wolkvox", "host": "crm0001.wolkvox.com", "password": TOKEN}),
    )
    with pytest.raises(
        WolkvoxConfigError, match=r"no wolkvox operation: pass operation= .* extra 'operation'"
    ):
        WolkvoxHook().insert("contacts", {"a": 1})
    assert requests_mock.call_count == 0


def test_missing_token_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    use_connection(monkeypatch)
    monkeypatch.setenv(
        "AIRFLOW_CONN_WOLKVOX_DEFAULT", '{"conn_type": "wolkvox", "host": "crm0001.wolkvox.com", "extra": {}}'
    )
    with pytest.raises(WolkvoxConfigError, match="has no token: put the Wolkvox-Token in its Password"):
        WolkvoxHook().client  # noqa: B018


@pytest.mark.parametrize(("module", "fields"), [("", {"a": 1}), (None, {"a": 1}), ("contacts", {})])
def test_bad_input_is_refused_before_any_request(
    wolkvox_conn: str, requests_mock: rm.Mocker, module: object, fields: dict
) -> None:
    with pytest.raises(WolkvoxInputError):
        WolkvoxHook().insert(module, fields)  # type: ignore[arg-type]
    assert requests_mock.call_count == 0


def test_extras_configure_the_client(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture) -> None:
    use_connection(
        monkeypatch, "http://crm0001.wolkvox.com", timeout="12.5", verify="false", allow_insecure_http=True
    )
    client = WolkvoxHook().client
    assert client.base_url == "http://crm0001.wolkvox.com"
    assert client.timeout == 12.5
    assert client._socket_timeouts == (10.0, 13.5)
    assert client._session.verify is False
    # Airflow's hook logger writes through structlog to the task log (stdout here).
    assert "TLS verification is off for the wolkvox Connection 'wolkvox_default'" in capsys.readouterr().out


@pytest.mark.parametrize(("timeout", "seconds"), [(None, 60.0), ("", 60.0), ("0.5", 0.5), (3600, 3600.0)])
def test_a_timeout_up_to_the_maximum_is_taken(
    monkeypatch: pytest.MonkeyPatch, timeout: object, seconds: float
) -> None:
    use_connection(monkeypatch, timeout=timeout)
    assert WolkvoxHook().client.timeout == seconds


@pytest.mark.parametrize("timeout", ["0", "-3", "soon", "nan", "inf", "1e12", 1e12, 3600.5, True, [30]])
def test_bad_timeout_is_a_config_error(monkeypatch: pytest.MonkeyPatch, timeout: object) -> None:
    use_connection(monkeypatch, timeout=timeout)
    with pytest.raises(WolkvoxConfigError) as raised:
        WolkvoxHook().client  # noqa: B018
    assert str(raised.value) == (
        "the wolkvox Connection 'wolkvox_default': extra timeout must be a positive number of seconds, "
        f"at most 3,600, got {timeout!r}"
    )


def test_insecure_http_is_refused_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    use_connection(monkeypatch, "http://crm0001.wolkvox.com")
    with pytest.raises(WolkvoxConfigError, match="refusing plain http://"):
        WolkvoxHook().client  # noqa: B018


def test_one_client_per_hook(wolkvox_conn: str) -> None:
    hook = WolkvoxHook()
    assert hook.get_conn() is hook.client is hook.get_conn()


def test_token_info_and_test_connection(wolkvox_conn: str, requests_mock: rm.Mocker) -> None:
    requests_mock.get(f"{BASE_URL}{api.TOKEN_INFO_PATH}", json=TOKEN_INFO)
    hook = WolkvoxHook()
    assert hook.token_info().calls_left == 4799
    assert hook.test_connection() == (
        True,
        "Connected to https://crm0001.wolkvox.com: 4799 of 4800 calls left today, the count restarts in 15 h",
    )
    assert all(r.method == "GET" for r in requests_mock.request_history)


def test_test_connection_reports_a_refused_token(wolkvox_conn: str, requests_mock: rm.Mocker) -> None:
    requests_mock.get(
        f"{BASE_URL}{api.TOKEN_INFO_PATH}",
        status_code=403,
        json={"code": 403, "error": "FORBIDDEN", "msg": "PLEASE VALIDATE TOKEN"},
    )
    ok, message = WolkvoxHook().test_connection()
    assert not ok
    assert message == "wolkvox tokenInformation.php: HTTP 403: FORBIDDEN PLEASE VALIDATE TOKEN"
    assert requests_mock.call_count == 1


GOOD_HOST = "crm0001.wolkvox.com"
# (Host, extras, the message after the Connection's name)
BAD_SETTINGS = [
    pytest.param("http://crm0001.wolkvox.com", {}, "refusing plain http://", id="plain-http"),
    pytest.param(
        "crm0001.wolkvox.com:99999", {}, "Host 'crm0001.wolkvox.com:99999' has a port out of range", id="port"
    ),
    pytest.param(
        "crm0001.wolkvox.com:80a",
        {},
        "Host 'crm0001.wolkvox.com:80a' has a port that is not a number",
        id="port-text",
    ),
    pytest.param("https://[::1", {}, "Host 'https://[::1' is not a server address", id="ipv6"),
    pytest.param("file:///etc/passwd", {}, "Host 'file:///etc/passwd' has the scheme 'file'", id="scheme"),
    pytest.param(
        "crm0001.wolkvox.com/login", {}, "Host 'crm0001.wolkvox.com/login' has a path ('/login')", id="path"
    ),
    pytest.param(
        "crm0001.wolkvox.com?a=1", {}, "Host 'crm0001.wolkvox.com?a=1' has a query string", id="query"
    ),
    pytest.param(
        "ana:s3cret@crm0001.wolkvox.com",
        {},
        "Host '***@crm0001.wolkvox.com' has a user name or password",
        id="userinfo",
    ),
    pytest.param(
        GOOD_HOST,
        {"timeout": "1e12"},
        "extra timeout must be a positive number of seconds, at most 3,600, got '1e12'",
        id="timeout",
    ),
]


@pytest.mark.parametrize(("host", "extra", "message"), BAD_SETTINGS)
def test_a_bad_setting_fails_fast_naming_the_connection_before_any_request(
    monkeypatch: pytest.MonkeyPatch,
    requests_mock: rm.Mocker,
    host: str,
    extra: dict[str, object],
    message: str,
) -> None:
    requests_mock.register_uri(rm.ANY, rm.ANY, json=TOKEN_INFO)
    use_connection(monkeypatch, host, **extra)
    with pytest.raises(WolkvoxConfigError) as raised:
        WolkvoxHook().token_info()
    assert raised.value.fail_fast
    assert str(raised.value).startswith(f"the wolkvox Connection 'wolkvox_default': {message}")
    assert "s3cret" not in str(raised.value)
    # The Test button answers the same message.
    assert WolkvoxHook().test_connection() == (False, str(raised.value))
    assert requests_mock.call_count == 0


def test_repr_hides_the_token(wolkvox_conn: str) -> None:
    hook = WolkvoxHook()
    hook.client  # noqa: B018
    assert TOKEN not in repr(hook)
    assert repr(hook) == "WolkvoxHook(wolkvox_conn_id='wolkvox_default')"


def test_legacy_ui_field_behaviour_matches_the_provider_info() -> None:
    assert WolkvoxHook.get_ui_field_behaviour() == {
        "hidden_fields": ["login", "schema", "port", "extra"],
        "relabeling": {"host": "CRM server", "password": "Wolkvox-Token"},
        "placeholders": {
            "host": "crm0001.wolkvox.com",
            "password": "token from CRM > Configuration > wolkvox integration > Tokens",
            "operation": "my_operation",
            "timeout": "60",
        },
    }


def test_legacy_form_widgets_offer_the_extras() -> None:
    pytest.importorskip("wtforms", reason="the legacy form needs Airflow 2's web server (wtforms)")
    pytest.importorskip("flask_appbuilder", reason="the legacy form needs Airflow 2's web server (FAB)")
    from wtforms import BooleanField, StringField

    widgets = WolkvoxHook.get_connection_form_widgets()
    assert set(widgets) == {"operation", "timeout", "verify", "allow_insecure_http"}
    assert widgets["operation"].field_class is StringField
    assert widgets["timeout"].field_class is StringField
    assert widgets["verify"].field_class is BooleanField
    assert widgets["verify"].kwargs["default"] is True
    assert widgets["allow_insecure_http"].kwargs["default"] is False
