"""The fake-only records path and the command that reads it, and the DEBUG line per request."""

from __future__ import annotations

import json
import logging
import re
import socket
import subprocess
import sys

import pytest
import requests

from airflow_provider_wolkvox.api import ERROR_BAD_REQUEST, MSG_MISSING_PARAMETERS, MSG_MODULE_DOES_NOT_EXIST
from airflow_provider_wolkvox.testing import FakeWolkvoxServer, Fault
from airflow_provider_wolkvox.testing.server import RECORDS_PATH
from tests.testing.helpers import MODULE, OPERATION, OTHER_OPERATION, TIMEOUT, TOKEN, Api, envelope, found

RECORDS = [sys.executable, "-m", "airflow_provider_wolkvox.testing", "records"]


class TestRecordsPath:
    def test_lists_a_module_without_token_quota_or_log(self, api: Api, server: FakeWolkvoxServer) -> None:
        server.add_records(MODULE, [{"Name": "Ana"}, {"Name": "Luis"}])
        server.add_records(MODULE, [{"Name": "Eva"}], operation=OTHER_OPERATION)

        default = api.call(RECORDS_PATH, method="GET", token=None, params={"module": MODULE})
        other = api.call(
            RECORDS_PATH, method="GET", token=None, params={"module": MODULE, "operation": OTHER_OPERATION}
        )

        assert (default.status_code, default.json()) == (200, found(server.records(MODULE)))
        assert [record["Name"] for record in other.json()["data"]] == ["Eva"]
        assert (server.calls(), server.quota_used(TOKEN), server.request_log) == (0, 0, [])

    def test_refusals(self, api: Api) -> None:
        with FakeWolkvoxServer({TOKEN: OPERATION}, modules=[MODULE]) as strict, Api(strict) as strict_api:
            misspelt = strict_api.call(RECORDS_PATH, method="GET", params={"module": "contact"})
        no_module = api.call(RECORDS_PATH, method="GET")
        posted = api.call(RECORDS_PATH, params={"module": MODULE})

        assert (misspelt.status_code, misspelt.json()) == (
            400,
            envelope(400, ERROR_BAD_REQUEST, MSG_MODULE_DOES_NOT_EXIST),
        )
        assert (no_module.status_code, no_module.json()) == (
            400,
            envelope(400, ERROR_BAD_REQUEST, MSG_MISSING_PARAMETERS),
        )
        assert (posted.status_code, posted.json()["msg"]) == (405, "THIS API ONLY ACCEPTS GET")


def run_records(*options: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*RECORDS, *options], capture_output=True, text=True, timeout=TIMEOUT * 4, check=False
    )


def test_the_records_command_prints_one_object_per_line(server: FakeWolkvoxServer) -> None:
    server.add_records(
        MODULE, [{"Name": "Ana María", "Tel": {"type": "telephone", "value": "300"}}, {"Name": "Luis"}]
    )
    server.add_records(MODULE, [{"Name": "Eva"}], operation=OTHER_OPERATION)

    default = run_records("--url", server.url + "/", "--module", MODULE)
    other = run_records("--url", server.url, "--module", MODULE, "--operation", OTHER_OPERATION)
    empty = run_records("--url", server.url, "--module", "leads")

    assert (default.returncode, default.stderr) == (0, "")
    assert [json.loads(line) for line in default.stdout.splitlines()] == server.records(MODULE)
    assert "Ana María" in default.stdout  # not escaped
    assert [json.loads(line)["Name"] for line in other.stdout.splitlines()] == ["Eva"]
    assert (empty.returncode, empty.stdout) == (0, "")
    assert server.calls() == 0


def test_the_records_command_names_a_refusal() -> None:
    with FakeWolkvoxServer({TOKEN: OPERATION}, modules=[MODULE]) as strict:
        url = strict.url
        result = run_records("--url", url, "--module", "contact")

    assert result.returncode == 1
    assert (
        result.stderr == f"the fake wolkvox CRM at {url} refused the request: {MSG_MODULE_DOES_NOT_EXIST}\n"
    )


def test_the_records_command_when_nothing_listens() -> None:
    with socket.socket() as probe:  # a port that was free a moment ago, with nothing listening now
        probe.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{probe.getsockname()[1]}"

    result = run_records("--url", url, "--module", MODULE)

    assert result.returncode == 1
    assert result.stdout == ""
    assert result.stderr.startswith(f"the fake wolkvox CRM at {url} cannot be reached: ")
    assert "Connection refused" in result.stderr


LINE = re.compile(
    r"(?P<request>\S+ \S+) -> (?P<status>.+) module=(?P<module>\S+) records=(?P<count>\d+) "
    r"fault=(?P<fault>\S+) \d+\.\d ms"
)


def test_one_debug_line_per_request_without_the_token_or_values(
    api: Api, server: FakeWolkvoxServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="airflow_provider_wolkvox.testing")
    secret_value = "ana-secret@x.co"
    api.insert_many([{"Email": secret_value}, {"Email": "luis@x.co"}])
    server.inject(Fault.STORE_THEN_DROP)
    with pytest.raises(requests.ConnectionError):
        api.insert({"Name": secret_value})
    api.token_info(token="forged")
    api.call(RECORDS_PATH, method="GET", params={"module": MODULE})  # fake-only: not logged

    records = [record for record in caplog.records if record.name == "airflow_provider_wolkvox.testing"]
    assert [record.levelno for record in records] == [logging.DEBUG] * 3
    lines = [LINE.fullmatch(record.getMessage()) for record in records]
    assert [None if line is None else line.groupdict() for line in lines] == [
        {
            "request": "POST /server/API/v2/custom/insertMany.php",
            "status": "200",
            "module": MODULE,
            "count": "2",
            "fault": "None",
        },
        {
            "request": "POST /server/API/v2/custom/insert.php",
            "status": "no answer",
            "module": MODULE,
            "count": "1",
            "fault": "STORE_THEN_DROP",
        },
        {
            "request": "GET /server/API/v2/token/tokenInformation.php",
            "status": "403",
            "module": "None",
            "count": "0",
            "fault": "None",
        },
    ]
    text = caplog.text
    assert TOKEN not in text
    assert "forged" not in text
    assert secret_value not in text
    assert OPERATION not in text  # the query string is not logged either
