"""The fake server as a process resident: HTTP/1.1 transport, start and stop, the command line."""

from __future__ import annotations

import contextlib
import json
import queue
import shlex
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator

import pytest
import requests
from requests.adapters import HTTPAdapter

from airflow_provider_wolkvox.api import INSERT_PATH, TOKEN_HEADER
from airflow_provider_wolkvox.testing import CONN_ENV_VAR, FakeWolkvoxServer
from tests.testing.helpers import MODULE, OPERATION, TIMEOUT, TOKEN, Api, wait_until


def fake_threads() -> set[threading.Thread]:
    return {thread for thread in threading.enumerate() if thread.name.startswith("wolkvox-fake")}


def raw_exchange(server: FakeWolkvoxServer, request: bytes) -> bytes:
    """Send raw bytes on a new connection and return everything read until the server closes it."""
    with socket.create_connection((server.host, server.port), timeout=TIMEOUT) as connection:
        connection.sendall(request)
        answer = b""
        while chunk := connection.recv(65536):
            answer += chunk
        return answer


def call_ignoring_errors(api: Api) -> None:
    """Make a call whose outcome does not matter, only that it ends."""
    with contextlib.suppress(requests.RequestException):
        api.token_info()


class TestTransport:
    def test_keep_alive_reuses_one_connection(self, api: Api, server: FakeWolkvoxServer) -> None:
        statuses = [api.insert({"Name": f"n{index}"}).status_code for index in range(5)]
        statuses.append(api.insert({"Name": "x"}, token=None).status_code)  # an error keeps it open too
        statuses.append(api.token_info().status_code)

        assert statuses == [200] * 5 + [401, 200]
        adapter = api.session.get_adapter(server.url)
        assert isinstance(adapter, HTTPAdapter)
        pools = adapter.poolmanager.pools
        # The pool container refuses plain iteration (not thread-safe), hence keys().
        assert [pools[key].num_connections for key in pools.keys()] == [1]  # noqa: SIM118

    def test_connection_close_is_honoured_and_announced(self, api: Api) -> None:
        closing = api.token_info(headers={"Connection": "close"})
        after = api.token_info()

        assert (closing.status_code, closing.headers["Connection"]) == (200, "close")
        assert (after.status_code, after.headers.get("Connection")) == (200, None)

    def test_chunked_body_is_refused_with_length_required(self, api: Api, server: FakeWolkvoxServer) -> None:
        body = json.dumps({"operation": OPERATION, "module": MODULE, "fields": {"Name": "Ana"}}).encode()
        chunks = iter([body[:10], body[10:]])  # requests sends a generator chunked

        response = api.call(INSERT_PATH, data=chunks)

        # http.server does not decode chunked request bodies; the fake refuses them before handling.
        assert (response.status_code, response.headers["Connection"]) == (411, "close")
        assert (server.record_count(MODULE), server.calls(), server.quota_used(TOKEN)) == (0, 0, 0)

    @pytest.mark.parametrize(
        "request_head",
        [
            pytest.param(b"POST /x HTTP/1.1\r\nContent-Length: many\r\n\r\n", id="content-length"),
            pytest.param(b"POST /x HTTP/1.1\r\nContent-Length: -1\r\n\r\n", id="negative-length"),
            pytest.param(b"POST /x y HTTP/1.1\r\n\r\n", id="request-line"),
        ],
    )
    def test_malformed_request_is_refused_and_closed(
        self, server: FakeWolkvoxServer, request_head: bytes
    ) -> None:
        answer = raw_exchange(server, request_head)

        assert answer.startswith(b"HTTP/1.1 400 ")  # http.server's own answer and reason phrase
        assert b"\r\nConnection: close\r\n" in answer
        assert server.calls() == 0

    def test_expect_continue_and_connection_close(self, server: FakeWolkvoxServer) -> None:
        body = json.dumps({"operation": OPERATION, "module": MODULE, "fields": {"Name": "Ana"}}).encode()
        head = (
            f"POST {INSERT_PATH} HTTP/1.1\r\n{TOKEN_HEADER}: {TOKEN}\r\nExpect: 100-continue\r\n"
            f"Connection: close\r\nContent-Length: {len(body)}\r\n\r\n"
        )

        answer = raw_exchange(server, head.encode() + body)

        continuation, final_head, final_body = answer.split(b"\r\n\r\n")
        assert continuation == b"HTTP/1.1 100 Continue"
        assert final_head.startswith(b"HTTP/1.1 200 OK\r\n")
        assert final_head.endswith(b"\r\nConnection: close")
        assert json.loads(final_body)["msg"] == "Succesfully create record"


class TestLifeCycle:
    def test_stop_leaves_no_thread_and_frees_the_port(self) -> None:
        before = fake_threads()
        server = FakeWolkvoxServer({TOKEN: OPERATION}).start()
        port = server.port
        with Api(server) as idle, Api(server) as waiting:
            assert idle.token_info().status_code == 200  # leaves an idle keep-alive connection
            server.latency = 60.0
            in_flight = threading.Thread(target=call_ignoring_errors, args=(waiting,))
            in_flight.start()
            wait_until(lambda: server.quota_used(TOKEN) == 2)  # the second call is being handled

            server.stop()  # cuts the latency short

            in_flight.join(timeout=TIMEOUT)
            assert not in_flight.is_alive()
        assert fake_threads() == before
        with FakeWolkvoxServer({TOKEN: OPERATION}, port=port) as again, Api(again) as api:
            assert api.token_info().status_code == 200

    def test_restart_keeps_the_port(self) -> None:
        server = FakeWolkvoxServer().start()
        url = server.url
        server.stop()
        server.stop()  # a second stop does nothing

        with server:
            assert server.url == url

    def test_url_needs_a_running_server(self) -> None:
        server = FakeWolkvoxServer()

        with pytest.raises(RuntimeError, match="not running"):
            _ = server.url

    def test_start_twice_is_refused(self, server: FakeWolkvoxServer) -> None:
        with pytest.raises(RuntimeError, match="already running"):
            server.start()

    def test_airflow_connection(self, server: FakeWolkvoxServer) -> None:
        assert json.loads(server.airflow_connection()) == {
            "conn_type": "wolkvox",
            "host": server.url,
            "password": TOKEN,
            "extra": {"operation": OPERATION},
        }

    def test_no_token_configured(self) -> None:
        with pytest.raises(ValueError, match="at least one token"):
            FakeWolkvoxServer({})


def read_lines(process: subprocess.Popen[str]) -> queue.Queue[str]:
    """Read the process's output in a thread, so that the test can wait for a line with a timeout."""
    lines: queue.Queue[str] = queue.Queue()
    stdout = process.stdout
    assert stdout is not None

    def forward() -> None:
        for line in stdout:
            lines.put(line)

    threading.Thread(target=forward, daemon=True).start()
    return lines


SERVE = [sys.executable, "-m", "airflow_provider_wolkvox.testing", "serve"]


@pytest.fixture
def cli() -> Iterator[subprocess.Popen[str]]:
    options = [
        "--port",
        "0",
        "--token",
        "cli-token",
        "--operation",
        "cli",
        "--quota",
        "7",
        "--latency",
        "0.01",
    ]
    with subprocess.Popen([*SERVE, *options], stdout=subprocess.PIPE, text=True) as process:
        try:
            yield process
        finally:
            if process.poll() is None:
                process.kill()


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_command_line(cli: subprocess.Popen[str], signum: signal.Signals) -> None:
    lines = read_lines(cli)
    banner = lines.get(timeout=TIMEOUT)
    name, _, value = shlex.split(lines.get(timeout=TIMEOUT))[0].partition("=")
    connection = json.loads(value)

    assert name == CONN_ENV_VAR
    assert connection["host"] in banner
    assert connection == {
        "conn_type": "wolkvox",
        "host": connection["host"],
        "password": "cli-token",
        "extra": {"operation": "cli"},
    }
    response = requests.get(
        f"{connection['host']}/server/API/v2/token/tokenInformation.php",
        params={"operation": "cli"},
        headers={TOKEN_HEADER: "cli-token"},
        timeout=TIMEOUT,
    )
    assert response.json()["data"]["token_limit"] == 7
    cli.send_signal(signum)
    assert cli.wait(timeout=TIMEOUT) == 0


def test_command_line_on_a_busy_port(server: FakeWolkvoxServer) -> None:
    result = subprocess.run(
        [*SERVE, "--port", str(server.port)], capture_output=True, text=True, timeout=TIMEOUT, check=False
    )

    assert result.returncode == 1
    assert result.stderr.startswith(f"cannot listen on 127.0.0.1:{server.port}: ")
