"""update.php and delete.php over real HTTP: envelopes, the store after the call, unique and query indexes."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pytest

from airflow_provider_wolkvox.api import (
    CREATED_AT_FIELD,
    DELETE_PATH,
    ERROR_BAD_REQUEST,
    MAX_TEXT_LENGTH,
    MODIFIED_AT_FIELD,
    MSG_MISSING_PARAMETERS,
    MSG_RECORD_DOES_NOT_EXIST,
    UPDATE_PATH,
)
from airflow_provider_wolkvox.testing import FakeWolkvoxServer
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

SEEDED_AT = datetime(2024, 1, 2, 3, 4, 5)
SEEDED_STAMP = "2024-01-02 03:04:05"
NO_RECORD = (400, envelope(400, ERROR_BAD_REQUEST, MSG_RECORD_DOES_NOT_EXIST))
MISSING = (400, ERROR_BAD_REQUEST, MSG_MISSING_PARAMETERS)


def answer(response: Any) -> tuple[int, Any]:
    return response.status_code, response.json()


def by_id(server: FakeWolkvoxServer, module: str = MODULE) -> dict[str, dict[str, Any]]:
    return {record["wolkvox_id"]: record for record in server.records(module)}


@pytest.fixture
def ana_luis(server: FakeWolkvoxServer) -> list[str]:
    """Two records created in the past; the module's ``Email`` is unique."""
    return server.add_records(
        MODULE,
        [{"Name": "Ana", "Email": "ana@x.co", "City": "Cali"}, {"Name": "Luis", "Email": "luis@x.co"}],
        created_at=SEEDED_AT,
    )


class TestUpdate:
    def test_merges_the_fields_and_sets_the_modification_time(
        self, api: Api, server: FakeWolkvoxServer, ana_luis: list[str]
    ) -> None:
        ana, luis = ana_luis
        before = crm_stamp(server)

        response = api.update(ana, {"Name": "Ana María", "Tel": {"type": "telephone", "value": "300"}})

        after = crm_stamp(server)
        assert answer(response) == (
            200,
            {"code": 200, "error": "null", "msg": "Succesfully edit record", "data": {"wolkvox_id": ana}},
        )
        records = by_id(server)
        modified = records[ana].pop(MODIFIED_AT_FIELD)
        assert before <= modified <= after
        assert records[ana] == {
            "Name": "Ana María",
            "Email": "ana@x.co",
            "City": "Cali",
            "Tel": {"type": "telephone", "value": "300"},
            "wolkvox_id": ana,
            CREATED_AT_FIELD: SEEDED_STAMP,
            "wolkvox_usuario_creacion": "API",
        }
        assert records[luis][MODIFIED_AT_FIELD] == SEEDED_STAMP
        entry = server.request_log[-1]
        assert (entry.path, entry.status, entry.module, entry.record_count, entry.ids) == (
            UPDATE_PATH,
            200,
            MODULE,
            1,
            (ana,),
        )

    def test_metadata_in_the_fields_is_ignored(
        self, api: Api, server: FakeWolkvoxServer, ana_luis: list[str]
    ) -> None:
        ana = ana_luis[0]

        response = api.update(
            ana, {"wolkvox_id": "f" * 24, CREATED_AT_FIELD: "1999-01-01 00:00:00", "City": "Pasto"}
        )

        assert response.status_code == 200, response.text
        record = by_id(server)[ana]
        assert (record["City"], record[CREATED_AT_FIELD]) == ("Pasto", SEEDED_STAMP)

    def test_the_query_index_follows(self, api: Api, ana_luis: list[str]) -> None:
        ana = ana_luis[0]
        assert [r["wolkvox_id"] for r in api.query("Name", "Ana").json()["data"]] == [ana]  # builds the index

        api.update(ana, {"Name": "Anita"})

        assert api.query("Name", "Ana").json()["data"] == []
        [record] = api.query("Name", "Anita").json()["data"]
        assert (record["wolkvox_id"], record["City"]) == (ana, "Cali")
        assert [r["Name"] for r in api.query("City", "Cali").json()["data"]] == ["Anita"]

    def test_unique_values(self, api: Api, server: FakeWolkvoxServer, ana_luis: list[str]) -> None:
        ana, luis = ana_luis

        taken = api.update(luis, {"Email": "ana@x.co"})
        own = api.update(ana, {"Email": "ana@x.co", "Name": "Ana"})
        moved = api.update(ana, {"Email": "ana@y.co"})

        assert answer(taken) == (
            400,
            envelope(400, ERROR_BAD_REQUEST, "VALUE OF FIELD 'Email' ALREADY EXISTS"),
        )
        assert (own.status_code, moved.status_code) == (200, 200)
        assert {record["Email"] for record in server.records(MODULE)} == {"ana@y.co", "luis@x.co"}
        # The old value is free again and the new one is taken.
        assert api.update(luis, {"Email": "ana@x.co"}).status_code == 200
        assert api.insert({"Email": "ana@y.co"}).json()["msg"] == "VALUE OF FIELD 'Email' ALREADY EXISTS"
        created_id(api.insert({"Email": "luis@x.co"}))

    @pytest.mark.parametrize(
        ("record", "module", "token"),
        [
            pytest.param("0" * 24, MODULE, TOKEN, id="unknown"),
            pytest.param(0, "leads", TOKEN, id="another-module"),
            pytest.param(0, MODULE, OTHER_TOKEN, id="another-operation"),
        ],
    )
    def test_a_record_that_does_not_exist(
        self, api: Api, server: FakeWolkvoxServer, ana_luis: list[str], record: Any, module: str, token: str
    ) -> None:
        record_id = ana_luis[record] if isinstance(record, int) else record
        operation = OTHER_OPERATION if token == OTHER_TOKEN else OPERATION
        body = {"operation": operation, "module": module, "wolkvox-id": record_id, "fields": {"Name": "x"}}

        response = api.call(UPDATE_PATH, body, token=token)

        assert answer(response) == NO_RECORD
        assert [record["Name"] for record in server.records(MODULE)] == ["Ana", "Luis"]

    @pytest.mark.parametrize(
        ("body", "expected"),
        [
            pytest.param({"wolkvox-id": None}, MISSING, id="no-id"),
            pytest.param({"fields": {}}, MISSING, id="empty-fields"),
            pytest.param(
                {"wolkvox-id": ["x"]},
                (400, ERROR_BAD_REQUEST, "THE PARAMETER 'wolkvox-id' MUST BE TEXT"),
                id="id-list",
            ),
            pytest.param(
                {"fields": [{"Name": "x"}]},
                (400, ERROR_BAD_REQUEST, "THE PARAMETER 'fields' MUST BE AN OBJECT"),
                id="fields-array",
            ),
            pytest.param(
                {"fields": {"Dir": {"type": "address"}}},
                (400, ERROR_BAD_REQUEST, "FIELD 'Dir' OF TYPE 'address' NEEDS A 'value'"),
                id="typed-without-value",
            ),
            pytest.param(
                {"fields": {"Name": "x" * (MAX_TEXT_LENGTH + 1)}},
                (400, ERROR_BAD_REQUEST, f"FIELD 'Name' IS LONGER THAN {MAX_TEXT_LENGTH} CHARACTERS"),
                id="too-long",
            ),
        ],
    )
    def test_refused_bodies(
        self, api: Api, server: FakeWolkvoxServer, ana_luis: list[str], body: dict[str, Any], expected: Any
    ) -> None:
        full = {
            "operation": OPERATION,
            "module": MODULE,
            "wolkvox-id": ana_luis[0],
            "fields": {"Name": "x"},
            **body,
        }

        response = api.call(UPDATE_PATH, {name: value for name, value in full.items() if value is not None})

        status, error, msg = expected
        assert answer(response) == (status, envelope(status, error, msg))
        assert by_id(server)[ana_luis[0]]["Name"] == "Ana"


class TestDelete:
    def test_deletes_a_list_of_ids(self, api: Api, server: FakeWolkvoxServer, ana_luis: list[str]) -> None:
        kept = created_id(api.insert({"Name": "Eva"}))

        response = api.delete(ana_luis)

        assert answer(response) == (
            200,
            {"code": 200, "error": "null", "msg": "Succesfully delete record", "data": {"deleted": 2}},
        )
        assert list(by_id(server)) == [kept]
        entry = server.request_log[-1]
        assert (entry.path, entry.record_count, entry.ids) == (DELETE_PATH, 2, tuple(ana_luis))

    def test_deletes_one_id_given_as_text(
        self, api: Api, server: FakeWolkvoxServer, ana_luis: list[str]
    ) -> None:
        response = api.delete(ana_luis[1], multiple=False)

        assert response.json()["data"] == {"deleted": 1}
        assert list(by_id(server)) == [ana_luis[0]]

    def test_a_repeated_id_is_deleted_once(
        self, api: Api, server: FakeWolkvoxServer, ana_luis: list[str]
    ) -> None:
        assert api.delete([ana_luis[0], ana_luis[0]]).json()["data"] == {"deleted": 1}
        assert server.record_count(MODULE) == 1

    def test_all_or_none(self, api: Api, server: FakeWolkvoxServer, ana_luis: list[str]) -> None:
        response = api.delete([ana_luis[0], "0" * 24, ana_luis[1]])

        assert answer(response) == NO_RECORD
        assert list(by_id(server)) == ana_luis

    def test_an_id_of_another_module(self, api: Api, server: FakeWolkvoxServer, ana_luis: list[str]) -> None:
        assert answer(api.delete([ana_luis[0]], module="leads")) == NO_RECORD
        assert server.record_count(MODULE) == 2

    def test_frees_unique_values_and_keeps_the_indexes_right(
        self, api: Api, server: FakeWolkvoxServer, ana_luis: list[str]
    ) -> None:
        assert len(api.query("Name", "Ana").json()["data"]) == 1  # builds the index
        window = ("2024-01-02 00:00", "2024-01-03 00:00")
        assert len(api.query_dates(*window).json()["data"]) == 2

        assert api.delete([ana_luis[0]]).status_code == 200

        assert api.query("Name", "Ana").json()["data"] == []
        assert [record["wolkvox_id"] for record in api.query_dates(*window).json()["data"]] == [ana_luis[1]]
        assert api.update(ana_luis[0], {"Name": "x"}).json()["msg"] == MSG_RECORD_DOES_NOT_EXIST
        created_id(api.insert({"Name": "Ana", "Email": "ana@x.co"}))
        assert [record["Email"] for record in api.query("Name", "Ana").json()["data"]] == ["ana@x.co"]

    @pytest.mark.parametrize(
        ("body", "expected"),
        [
            pytest.param({"wolkvox-id": None}, MISSING, id="no-id"),
            pytest.param({"wolkvox-id": []}, MISSING, id="no-ids"),
            pytest.param({"multiple": None}, MISSING, id="no-multiple"),
            pytest.param(
                {"multiple": "yes"},
                (400, ERROR_BAD_REQUEST, "THE PARAMETER 'multiple' MUST BE TRUE OR FALSE"),
                id="multiple-text",
            ),
            pytest.param(
                {"multiple": False},
                (
                    400,
                    ERROR_BAD_REQUEST,
                    "THE PARAMETER 'multiple' MUST BE TRUE FOR MORE THAN ONE 'wolkvox-id'",
                ),
                id="several-not-multiple",
            ),
            pytest.param(
                {"wolkvox-id": [1]},
                (400, ERROR_BAD_REQUEST, "THE PARAMETER 'wolkvox-id' MUST BE AN ID OR AN ARRAY OF IDS"),
                id="id-number",
            ),
            pytest.param(
                {"wolkvox-id": {"id": "x"}},
                (400, ERROR_BAD_REQUEST, "THE PARAMETER 'wolkvox-id' MUST BE AN ID OR AN ARRAY OF IDS"),
                id="id-object",
            ),
        ],
    )
    def test_refused_bodies(
        self, api: Api, server: FakeWolkvoxServer, ana_luis: list[str], body: dict[str, Any], expected: Any
    ) -> None:
        full = {"operation": OPERATION, "module": MODULE, "multiple": True, "wolkvox-id": ana_luis, **body}

        response = api.call(DELETE_PATH, {name: value for name, value in full.items() if value is not None})

        status, error, msg = expected
        assert answer(response) == (status, envelope(status, error, msg))
        assert server.record_count(MODULE) == 2
