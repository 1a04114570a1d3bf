"""WolkvoxInsertOperator: templating, argument parsing and Airflow failure semantics."""

from __future__ import annotations

import datetime

import pendulum
import pytest
import requests_mock as rm
from airflow.providers.common.compat.sdk import DAG, AirflowFailException

from airflow_provider_wolkvox import api
from airflow_provider_wolkvox.client import RetryPolicy
from airflow_provider_wolkvox.exceptions import (
    WolkvoxConcurrencyLimitError,
    WolkvoxInputError,
    WolkvoxOutcomeUnknownError,
)
from airflow_provider_wolkvox.operators.arguments import mapping_argument
from airflow_provider_wolkvox.operators.insert import WolkvoxInsertOperator
from tests.conftest import BASE_URL, OPERATION

NEW_ID = "64cb1f0e2a9d4c0012ab34cd"
CONTACT = {"Nombre": "Ana Gómez", "Edad": 31}


def test_template_fields() -> None:
    assert WolkvoxInsertOperator.template_fields == ("module", "fields", "operation", "wolkvox_conn_id")
    assert WolkvoxInsertOperator.template_fields_renderers == {"fields": "json"}


@pytest.mark.parametrize("native", [False, True])
def test_fields_render_with_and_without_native_objects(native: bool) -> None:
    with DAG(
        "render_test",
        schedule=None,
        start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
        render_template_as_native_obj=native,
        params={"contact": CONTACT},
    ):
        whole = WolkvoxInsertOperator(
            task_id="whole", module="{{ params.module }}", fields="{{ params.contact }}"
        )
        as_json = WolkvoxInsertOperator(
            task_id="as_json", module="contacts", fields="{{ params.contact | tojson }}"
        )
        nested = WolkvoxInsertOperator(
            task_id="nested",
            module="contacts",
            fields={"Nombre": "{{ params.contact.Nombre }}", "Alta": "{{ ds }}"},
        )
    context = {"params": {"contact": CONTACT, "module": "contacts"}, "ds": "2026-11-29"}
    for operator in (whole, as_json, nested):
        operator.render_template_fields(context)  # type: ignore[arg-type]
    assert whole.module == "contacts"
    assert mapping_argument(whole.fields, "fields") == CONTACT
    assert mapping_argument(as_json.fields, "fields") == CONTACT
    assert nested.fields == {"Nombre": "Ana Gómez", "Alta": "2026-11-29"}


@pytest.mark.parametrize(
    "value",
    [CONTACT, '{"Nombre": "Ana Gómez", "Edad": 31}', "{'Nombre': 'Ana Gómez', 'Edad': 31}"],
    ids=["mapping", "json", "python-repr"],
)
def test_mapping_argument_forms(value: object) -> None:
    assert mapping_argument(value, "fields") == CONTACT


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (
            "not json",
            "fields is a string that is not JSON; pass a mapping, or render the template with | tojson",
        ),
        ("[1, 2]", "fields must be a mapping or a JSON object string, got list"),
        (42, "fields must be a mapping or a JSON object string, got int"),
        (None, "fields must be a mapping or a JSON object string, got NoneType"),
    ],
)
def test_mapping_argument_errors(value: object, message: str) -> None:
    with pytest.raises(WolkvoxInputError) as raised:
        mapping_argument(value, "fields")
    assert str(raised.value) == message


def test_execute_returns_the_id(wolkvox_conn: str, requests_mock: rm.Mocker) -> None:
    requests_mock.post(
        f"{BASE_URL}{api.INSERT_PATH}", json={"code": 200, "error": "null", "data": {"wolkvox_id": NEW_ID}}
    )
    operator = WolkvoxInsertOperator(
        task_id="t", module="contacts", fields={"Alta": datetime.date(2026, 11, 29), **CONTACT}
    )
    assert operator.execute({}) == NEW_ID  # type: ignore[arg-type]
    assert requests_mock.last_request.json() == {
        "operation": OPERATION,
        "module": "contacts",
        "fields": {"Alta": "2026-11-29", **CONTACT},
    }


@pytest.mark.parametrize(
    ("status", "msg"),
    [
        (401, api.MSG_MISSING_TOKEN),
        (403, api.MSG_INVALID_TOKEN),
        (403, api.MSG_QUOTA_EXCEEDED),
        (400, api.MSG_MISSING_PARAMETERS),
    ],
)
def test_unfixable_errors_fail_without_task_retries(
    wolkvox_conn: str, requests_mock: rm.Mocker, status: int, msg: str
) -> None:
    requests_mock.post(
        f"{BASE_URL}{api.INSERT_PATH}", status_code=status, json={"code": status, "error": "X", "msg": msg}
    )
    operator = WolkvoxInsertOperator(task_id="t", module="contacts", fields=CONTACT)
    with pytest.raises(AirflowFailException, match=msg):
        operator.execute({})  # type: ignore[arg-type]


def test_bad_input_fails_without_task_retries_and_sends_nothing(
    wolkvox_conn: str, requests_mock: rm.Mocker
) -> None:
    operator = WolkvoxInsertOperator(task_id="t", module="contacts", fields={"Foto": b"\x89PNG"})
    with pytest.raises(
        AirflowFailException, match="field 'Foto': a bytes value cannot be sent as JSON"
    ) as raised:
        operator.execute({})  # type: ignore[arg-type]
    assert isinstance(raised.value.__cause__, WolkvoxInputError)
    assert requests_mock.call_count == 0


def test_outcome_unknown_fails_without_task_retries(wolkvox_conn: str, requests_mock: rm.Mocker) -> None:
    requests_mock.post(
        f"{BASE_URL}{api.INSERT_PATH}", status_code=500, json={"code": 500, "error": "ERR", "msg": ""}
    )
    with pytest.raises(AirflowFailException, match="outcome is unknown") as raised:
        WolkvoxInsertOperator(task_id="t", module="contacts", fields=CONTACT).execute({})  # type: ignore[arg-type]
    assert isinstance(raised.value.__cause__, WolkvoxOutcomeUnknownError)


def test_transient_errors_reach_airflow_retries(
    wolkvox_conn: str, requests_mock: rm.Mocker, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(
        "airflow_provider_wolkvox.client.client.RetryPolicy",
        lambda: RetryPolicy(base_delay=0, max_attempts=2),
    )
    requests_mock.post(
        f"{BASE_URL}{api.INSERT_PATH}",
        status_code=403,
        json={"code": 403, "error": "FORBIDDEN", "msg": api.MSG_TOO_MANY_SIMULTANEOUS},
    )
    with pytest.raises(WolkvoxConcurrencyLimitError) as raised:
        WolkvoxInsertOperator(task_id="t", module="contacts", fields=CONTACT).execute({})  # type: ignore[arg-type]
    assert not isinstance(raised.value, AirflowFailException)
    assert requests_mock.call_count == 2
