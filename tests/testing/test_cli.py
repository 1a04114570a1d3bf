"""The fake's counts (``stats()``, ``GET /__fake__/stats``), and the command line that sets the fake
up and reads them: ``serve --latency --unique --quota`` and ``stats --url``."""

from __future__ import annotations

import json
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any

import pytest
import requests

from airflow_provider_wolkvox.api import (
    DEFAULT_DAILY_QUOTA,
    ERROR_BAD_REQUEST,
    INSERT_MANY_PATH,
    INSERT_PATH,
    MSG_QUOTA_EXCEEDED,
    TOKEN_HEADER,
    TOKEN_INFO_PATH,
)
from airflow_provider_wolkvox.testing import FakeWolkvoxServer, Fault
from airflow_provider_wolkvox.testing.__main__ import _parser, _unique_fields, main
from airflow_provider_wolkvox.testing.server import RECORDS_PATH, STATS_PATH
from tests.testing.helpers import MODULE, OPERATION, OTHER_OPERATION, TIMEOUT, TOKEN, Api, envelope

COMMAND = [sys.executable, "-m", "airflow_provider_wolkvox.testing"]
EMAIL_TAKEN = "VALUE OF FIELD 'Email' ALREADY EXISTS"


class TestStats:
    def test_counts_calls_refusals_and_quota_per_token(self, api: Api, server: FakeWolkvoxServer) -> None:
        api.insert({"Email": "ana@example.com"})
        api.insert({"Email": "ana@example.com"})  # the unique field refuses it (charged)
        api.insert({"Email": "eva@example.com"}, token=None)  # no token: refused, not charged
        server.inject(Fault.DROP_BEFORE, path=INSERT_MANY_PATH)
        with pytest.raises(requests.ConnectionError):
            api.insert_many([{"Email": "luis@example.com"}])
        api.token_info()

        assert server.stats() == {
            "endpoints": {
                INSERT_MANY_PATH: {"calls": 1, "refused": 0, "unanswered": 1},
                INSERT_PATH: {"calls": 3, "refused": 2, "unanswered": 0},
                TOKEN_INFO_PATH: {"calls": 1, "refused": 0, "unanswered": 0},
            },
            "refusals": [
                {"status": 400, "msg": EMAIL_TAKEN, "count": 1},
                {"status": 401, "msg": "PLEASE ENTER THE WOLKVOX-TOKEN", "count": 1},
            ],
            "tokens": [
                {"operation": OPERATION, "quota": DEFAULT_DAILY_QUOTA, "quota_used": 3, "max_in_flight": 1},
                {
                    "operation": OTHER_OPERATION,
                    "quota": DEFAULT_DAILY_QUOTA,
                    "quota_used": 0,
                    "max_in_flight": 0,
                },
            ],
        }
        assert server.calls() == 5  # the same count as calls()

    def test_the_path_needs_no_token_and_is_neither_counted_nor_charged(
        self, api: Api, server: FakeWolkvoxServer
    ) -> None:
        api.insert({"Email": "ana@example.com"})

        answer = api.call(STATS_PATH, method="GET", token=None)
        posted = api.call(STATS_PATH, token=None)

        assert (answer.status_code, answer.json()) == (200, server.stats())
        assert posted.status_code == 405
        assert (server.calls(), server.quota_used(TOKEN), len(server.request_log)) == (1, 1, 1)
        assert TOKEN not in answer.text

    def test_reset_clears_the_counts(self, api: Api, server: FakeWolkvoxServer) -> None:
        api.call("/server/API/v2/custom/nothing.php")
        api.insert({"Email": "ana@example.com"})
        server.reset()

        counts = server.stats()
        assert (counts["endpoints"], counts["refusals"]) == ({}, [])
        assert [token["quota_used"] for token in counts["tokens"]] == [0, 0]


def stats_command(url: str, *options: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*COMMAND, "stats", "--url", url, *options],
        capture_output=True,
        text=True,
        timeout=TIMEOUT * 4,
        check=False,
    )


@pytest.fixture
def served() -> Iterator[tuple[str, str]]:
    """``serve`` in a subprocess with every option; yields its URL and its connection's JSON."""
    options = [
        *("--port", "0", "--token", TOKEN, "--operation", OPERATION),
        *("--quota", "3", "--latency", "0.2", "--unique", "contacts:Email", "--unique", "leads:Doc:Id"),
    ]
    with subprocess.Popen([*COMMAND, "serve", *options], stdout=subprocess.PIPE, text=True) as process:
        try:
            assert process.stdout is not None
            banner = process.stdout.readline()
            connection = process.stdout.readline().partition("=")[2]
            url = re.search(r"http://127\.0\.0\.1:\d+", banner)
            assert url is not None, banner
            yield url.group(0), connection
            process.send_signal(signal.SIGTERM)
            assert process.wait(timeout=TIMEOUT) == 0
        finally:
            if process.poll() is None:
                process.kill()


def insert(url: str, module: str, fields: dict[str, Any]) -> requests.Response:
    with requests.Session() as session:
        session.trust_env = False  # no proxy between us and loopback
        return session.post(
            url + INSERT_PATH,
            json={"operation": OPERATION, "module": module, "fields": fields},
            headers={TOKEN_HEADER: TOKEN},
            timeout=TIMEOUT,
        )


def test_serve_with_latency_unique_fields_and_quota_then_stats_prints_the_counts(
    served: tuple[str, str],
) -> None:
    url, _ = served

    started = time.monotonic()
    created = insert(url, MODULE, {"Email": "ana@example.com"})
    took = time.monotonic() - started
    repeated = insert(url, MODULE, {"Email": "ana@example.com"})  # --unique contacts:Email
    field_with_a_colon = insert(url, "leads", {"Doc:Id": "1"})  # the third call: the quota is spent
    refused = insert(url, "leads", {"Doc:Id": "2"})
    result = stats_command(url)

    assert created.status_code == 200
    assert took >= 0.2  # --latency: at least that long
    assert (repeated.status_code, repeated.json()) == (400, envelope(400, ERROR_BAD_REQUEST, EMAIL_TAKEN))
    assert field_with_a_colon.status_code == 200
    assert (refused.status_code, refused.json()["msg"]) == (403, MSG_QUOTA_EXCEEDED)
    assert (result.returncode, result.stderr) == (0, "")
    assert result.stdout.splitlines() == [
        f"fake wolkvox CRM at {url}: 4 calls",
        "calls per endpoint (refused and unanswered ones included):",
        f"  {INSERT_PATH}       4  (2 refused)",
        "quota used:",
        f"  operation {OPERATION}: 3 of 3 calls, at most 1 in flight at once",
        "refusals: 2",
        f"       1  400 {EMAIL_TAKEN}",
        f"       1  403 {MSG_QUOTA_EXCEEDED}",
    ]
    as_json = json.loads(stats_command(url, "--json").stdout)
    assert as_json["endpoints"] == {INSERT_PATH: {"calls": 4, "refused": 2, "unanswered": 0}}
    assert as_json["tokens"] == [{"operation": OPERATION, "quota": 3, "quota_used": 3, "max_in_flight": 1}]


def test_unique_fields_of_one_module_add_up() -> None:
    args = _parser().parse_args(
        ["serve", "--unique", "contacts:Email", "--unique", "contacts:Documento", "--unique", "leads:Email"]
    )

    assert _unique_fields(args.unique) == {"contacts": ["Email", "Documento"], "leads": ["Email"]}


@pytest.mark.parametrize("value", ["contacts", ":Email", "contacts:", " : "])
def test_serve_refuses_a_unique_field_without_module_or_field(
    value: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["serve", "--unique", value])

    assert exit_info.value.code == 2
    assert "expected MODULE:FIELD, e.g. contacts:Email" in capsys.readouterr().err


def test_stats_with_no_call_yet(server: FakeWolkvoxServer, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["stats", "--url", server.url + "/"]) == 0

    assert capsys.readouterr().out.splitlines() == [
        f"fake wolkvox CRM at {server.url}: 0 calls",
        "quota used:",
        f"  operation {OPERATION}: 0 of {DEFAULT_DAILY_QUOTA} calls, at most 0 in flight at once",
        f"  operation {OTHER_OPERATION}: 0 of {DEFAULT_DAILY_QUOTA} calls, at most 0 in flight at once",
        "refusals: 0 (none)",
    ]


def test_stats_of_something_that_is_not_the_fake(
    server: FakeWolkvoxServer, capsys: pytest.CaptureFixture[str]
) -> None:
    # The records path answers JSON, but not the counts.
    assert main(["stats", "--url", f"{server.url}{RECORDS_PATH}?module={MODULE}&"]) == 1

    assert "did not answer as a fake wolkvox CRM does" in capsys.readouterr().err


def test_stats_when_nothing_listens() -> None:
    with socket.socket() as probe:  # a port that was free a moment ago, with nothing listening now
        probe.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{probe.getsockname()[1]}"

    result = stats_command(url)

    assert (result.returncode, result.stdout) == (1, "")
    assert result.stderr.startswith(f"the fake wolkvox CRM at {url} cannot be reached: ")
