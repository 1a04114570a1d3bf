"""WolkvoxInsertOperator: templating, argument parsing and Airflow failure semantics."""

from __future__ import annotations

import datetime
from collections.abc import Iterator

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
from airflow_provider_wolkvox.testing import CONN_ENV_VAR, FakeWolkvoxServer, Fault
from tests.conftest import BASE_URL, LOST_ANSWER_TIMEOUT, OPERATION, TOKEN, DictStateStore

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


@pytest.fixture
def fake_crm(monkeypatch: pytest.MonkeyPatch, fast_retries: object) -> Iterator[FakeWolkvoxServer]:
    with FakeWolkvoxServer({TOKEN: OPERATION}) as fake:
        monkeypatch.setenv(CONN_ENV_VAR, fake.airflow_connection(timeout=LOST_ANSWER_TIMEOUT))
        yield fake


def test_a_second_try_returns_the_id_the_first_created(fake_crm: FakeWolkvoxServer) -> None:
    store = DictStateStore()
    operator = WolkvoxInsertOperator(task_id="t", module="contacts", fields=CONTACT)

    first = operator.execute({"task_state_store": store})  # type: ignore[arg-type]
    second = operator.execute({"task_state_store": store})  # type: ignore[arg-type]

    assert second == first == fake_crm.records("contacts")[0]["wolkvox_id"]
    assert len(fake_crm.records("contacts")) == 1
    assert fake_crm.calls(api.INSERT_PATH) == 1


def test_a_try_that_lost_its_answer_is_settled_by_the_next_by_the_dedupe_field(
    fake_crm: FakeWolkvoxServer,
) -> None:
    store = DictStateStore()
    fake_crm.inject(Fault.STORE_THEN_DROP, path=api.INSERT_PATH)
    fields = {**CONTACT, "Email": "ana@example.com"}
    operator = WolkvoxInsertOperator(task_id="t", module="contacts", fields=fields)
    with pytest.raises(AirflowFailException, match="outcome is unknown"):
        operator.execute({"task_state_store": store})  # type: ignore[arg-type]

    # The task is cleared and run again with a dedupe field: the record is found, not created twice.
    operator = WolkvoxInsertOperator(task_id="t", module="contacts", fields=fields, dedupe_field="Email")
    wolkvox_id = operator.execute({"task_state_store": store})  # type: ignore[arg-type]

    [stored] = fake_crm.records("contacts")
    assert wolkvox_id == stored["wolkvox_id"]
    assert fake_crm.calls(api.INSERT_PATH) == 1
    assert fake_crm.calls(api.QUERY_PATH) == 1


def test_without_a_state_store_a_second_run_creates_a_second_record(fake_crm: FakeWolkvoxServer) -> None:
    operator = WolkvoxInsertOperator(task_id="t", module="contacts", fields=CONTACT)

    first = operator.execute({})  # type: ignore[arg-type]
    second = operator.execute({})  # type: ignore[arg-type]

    assert first != second
    assert [record["wolkvox_id"] for record in fake_crm.records("contacts")] == [first, second]
