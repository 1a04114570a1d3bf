"""The ``modules`` parameter: every endpoint refuses a module that does not exist."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
import requests

from airflow_provider_wolkvox.api import ERROR_BAD_REQUEST, MSG_MODULE_DOES_NOT_EXIST
from airflow_provider_wolkvox.testing import FakeWolkvoxServer
from tests.testing.helpers import MODULE, OPERATION, TOKEN, Api, created_id, envelope

MISSPELT = "contact"
CALLS: dict[str, Callable[[Api, str], requests.Response]] = {
    "insert": lambda api, module: api.insert({"Name": "Ana"}, module=module),
    "insertMany": lambda api, module: api.insert_many([{"Name": "Ana"}], module=module),
    "query": lambda api, module: api.query("Name", "Ana", module=module),
    "queryDates": lambda api, module: api.query_dates("2024-01-01 00:00", "2030-01-01 00:00", module=module),
    "update": lambda api, module: api.update("0" * 24, {"Name": "Eva"}, module=module),
    "delete": lambda api, module: api.delete(["0" * 24], module=module),
}


@pytest.fixture
def strict() -> Iterator[FakeWolkvoxServer]:
    with FakeWolkvoxServer(
        {TOKEN: OPERATION}, modules=[MODULE, "leads"], unique_fields={MODULE: ["Email"]}
    ) as fake:
        yield fake


@pytest.mark.parametrize("endpoint", list(CALLS))
def test_every_endpoint_refuses_a_module_that_does_not_exist(
    strict: FakeWolkvoxServer, endpoint: str
) -> None:
    [stored] = strict.add_records(MODULE, [{"Name": "Ana"}])
    with Api(strict) as api:
        response = CALLS[endpoint](api, MISSPELT)

    assert (response.status_code, response.json()) == (
        400,
        envelope(400, ERROR_BAD_REQUEST, MSG_MODULE_DOES_NOT_EXIST),
    )
    assert [record["wolkvox_id"] for record in strict.records(MODULE)] == [stored]
    assert strict.records(MISSPELT) == []
    entry = strict.request_log[-1]
    assert (entry.module, entry.ids, strict.quota_used(TOKEN)) == (None, (), 1)  # admitted, so charged


def test_the_modules_given_work(strict: FakeWolkvoxServer) -> None:
    with Api(strict) as api:
        new_id = created_id(api.insert({"Name": "Ana"}, module="leads"))
        answers: list[Any] = [
            api.query("Name", "Ana", module="leads").json()["data"][0]["wolkvox_id"],
            api.update(new_id, {"Name": "Eva"}, module="leads").status_code,
            api.delete([new_id], module="leads").json()["data"],
        ]

    assert answers == [new_id, 200, {"deleted": 1}]


def test_add_records_refuses_a_module_that_does_not_exist(strict: FakeWolkvoxServer) -> None:
    with pytest.raises(ValueError, match=f"^module '{MISSPELT}' is not one of the server's modules$"):
        strict.add_records(MISSPELT, [{"Name": "Ana"}])


def test_unique_fields_of_a_module_that_does_not_exist_are_refused() -> None:
    with pytest.raises(
        ValueError, match=r"^unique_fields name modules that are not in modules: \['contact'\]$"
    ):
        FakeWolkvoxServer(modules=[MODULE], unique_fields={MISSPELT: ["Email"]})


def test_without_modules_every_module_exists(api: Api, server: FakeWolkvoxServer) -> None:
    created_id(api.insert({"Name": "Ana"}, module=MISSPELT))

    assert [record["Name"] for record in server.records(MISSPELT)] == ["Ana"]
