"""The client on the standard HTTP stack against real loopback sockets: every network failure classified.

Each row: the exception, whether it fails fast (no retries inside the client or by Airflow), and
how many requests the server saw.
"""

from __future__ import annotations

import contextlib
import time
from pathlib import Path

import pytest
import requests

from airflow_provider_wolkvox import __version__, api
from airflow_provider_wolkvox.client import RetryPolicy, WolkvoxClient
from airflow_provider_wolkvox.exceptions import (
    WolkvoxConfigError,
    WolkvoxConnectionError,
    WolkvoxNoAnswerError,
    WolkvoxOutcomeUnknownError,
    WolkvoxTLSError,
)
from airflow_provider_wolkvox.hooks.wolkvox import WolkvoxHook
from airflow_provider_wolkvox.testing import FakeWolkvoxServer
from tests.client import loopback
from tests.client.loopback import NEW_ID, closed_port, serving
from tests.conftest import OPERATION, TOKEN, connection_json

RETRIES = RetryPolicy(base_delay=0, max_attempts=3)
TIMEOUT = 1.0
FIELDS = {"Nombre": "Ana"}


def client_for(url: str, *, timeout: float = TIMEOUT, token: str = TOKEN) -> WolkvoxClient:
    return WolkvoxClient(url, token, timeout=timeout, retry_policy=RETRIES)


def test_the_request_goes_out_as_the_contract_says_and_reuses_its_connection() -> None:
    with serving(loopback.ok) as server, client_for(server.url) as client:
        assert client.insert(OPERATION, "contacts", FIELDS) == NEW_ID
        assert client.insert(OPERATION, "contacts", FIELDS) == NEW_ID
    method, path, headers, body = server.requests[0]
    assert (method, path) == ("POST", api.INSERT_PATH)
    assert headers["Wolkvox-Token"] == TOKEN
    assert headers["Content-Type"] == "application/json"
    assert headers["Accept-Encoding"] == "identity"
    assert headers["User-Agent"] == f"airflow-provider-wolkvox/{__version__}"
    assert body == b'{"operation":"modulotest03","module":"contacts","fields":{"Nombre":"Ana"}}'
    assert headers["Content-Length"] == str(len(body))
    assert server.connections == 1


def test_a_closed_port_is_a_retried_connection_error_naming_the_url() -> None:
    port = closed_port()
    with client_for(f"http://127.0.0.1:{port}") as client:
        with pytest.raises(WolkvoxConnectionError) as raised:
            client.insert(OPERATION, "contacts", FIELDS)
        assert client.calls == RETRIES.max_attempts
    assert not raised.value.fail_fast
    assert str(raised.value) == (
        f"wolkvox insert.php at http://127.0.0.1:{port} (module 'contacts'): could not connect "
        "(ConnectionRefusedError: Connection refused)"
    )


@pytest.mark.parametrize("scheme", ["https", "http"])
def test_a_proxy_at_a_closed_port_is_a_retried_connection_error_and_nothing_reaches_the_crm(
    monkeypatch: pytest.MonkeyPatch, scheme: str
) -> None:
    monkeypatch.setenv(f"{scheme.upper()}_PROXY", f"http://user:secret@127.0.0.1:{closed_port()}")
    with FakeWolkvoxServer({TOKEN: OPERATION}) as fake:
        url = f"{scheme}://127.0.0.1:{fake.port}"
        with client_for(url) as client:
            with pytest.raises(WolkvoxConnectionError) as raised:
                client.insert(OPERATION, "contacts", FIELDS)
            assert client.calls == RETRIES.max_attempts
        assert fake.calls() == 0
    assert not raised.value.fail_fast
    assert f"insert.php at {url} (module 'contacts'): could not connect" in str(raised.value)
    assert "secret" not in str(raised.value)


@pytest.mark.parametrize(
    ("proxy", "kind"),
    [
        ("http://user:secret@[bad", "InvalidURL"),
        ("http://", "InvalidProxyURL"),
        ("ftp://x:1", "InvalidURL"),
    ],
    ids=["unparsable", "no-host", "unknown-scheme"],
)
def test_a_malformed_proxy_setting_fails_fast_as_configuration_and_nothing_is_sent(
    monkeypatch: pytest.MonkeyPatch, proxy: str, kind: str
) -> None:
    monkeypatch.setenv("HTTP_PROXY", proxy)
    with FakeWolkvoxServer({TOKEN: OPERATION}) as fake:
        url = fake.url
        with client_for(url) as client:
            with pytest.raises(WolkvoxConfigError) as raised:
                client.insert(OPERATION, "contacts", FIELDS)
            assert client.calls == 1
        assert fake.calls() == 0
    assert raised.value.fail_fast
    assert str(raised.value) == (
        f"wolkvox insert.php at {url} (module 'contacts'): the request cannot be made ({kind}); "
        "check the Connection's Host and the proxy settings (HTTPS_PROXY, HTTP_PROXY)"
    )


def test_an_untrusted_certificate_fails_fast_once_naming_the_url_and_the_tls_reason(tmp_path: Path) -> None:
    import ssl

    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(*loopback.self_signed(tmp_path))
    with serving(loopback.ok, tls=context) as server, client_for(server.url) as client:
        with pytest.raises(WolkvoxTLSError) as raised:
            client.insert(OPERATION, "contacts", FIELDS)
        assert client.calls == 1
    assert raised.value.fail_fast
    assert server.connections == 1
    assert server.requests == []
    assert str(raised.value).startswith(
        f"wolkvox insert.php at {server.url} (module 'contacts'): the TLS handshake failed "
        "(SSLCertVerificationError: self-signed certificate)"
    )


def test_an_https_host_against_a_plain_http_server_fails_fast_once(monkeypatch: pytest.MonkeyPatch) -> None:
    with FakeWolkvoxServer({TOKEN: OPERATION}) as fake:
        url = f"https://127.0.0.1:{fake.port}"
        monkeypatch.setenv("AIRFLOW_CONN_WOLKVOX_DEFAULT", connection_json(url))
        started = time.monotonic()
        with pytest.raises(WolkvoxTLSError) as raised:
            WolkvoxHook().insert("contacts", FIELDS)
        assert time.monotonic() - started < 2.0
        assert fake.calls() == 0
    assert raised.value.fail_fast
    assert str(raised.value).startswith(
        f"wolkvox insert.php at {url} (module 'contacts'): the TLS handshake failed (SSLError: "
    )


def test_a_tls_handshake_that_never_comes_is_a_retried_connection_error_not_an_unknown_outcome() -> None:
    import socket
    import threading

    listener = socket.create_server(("127.0.0.1", 0))
    accepted: list[socket.socket] = []

    def accept() -> None:  # accepts the TCP connections, then says nothing: no TLS handshake
        listener.settimeout(10)
        with contextlib.suppress(OSError):
            while len(accepted) < RETRIES.max_attempts:
                accepted.append(listener.accept()[0])

    acceptor = threading.Thread(target=accept, daemon=True)
    acceptor.start()
    url = f"https://127.0.0.1:{listener.getsockname()[1]}"
    try:
        with client_for(url, timeout=0.5) as client, pytest.raises(WolkvoxConnectionError) as raised:
            client.insert(OPERATION, "contacts", FIELDS)
        assert client.calls == RETRIES.max_attempts
    finally:
        acceptor.join(5)
        for sock in accepted:
            sock.close()
        listener.close()
    assert not raised.value.fail_fast
    assert str(raised.value).startswith(
        f"wolkvox insert.php at {url} (module 'contacts'): could not connect ("
    )


@pytest.mark.parametrize(
    ("answer", "reason"),
    [
        (loopback.silent, "no complete answer within 1 s; the request was sent ("),
        (
            loopback.reset,
            "no answer after the request was sent (ConnectionResetError: Connection reset by peer)",
        ),
        (loopback.garbage, "no answer after the request was sent (BadStatusLine: SSH-2.0-OpenSSH_9.2)"),
    ],
)
def test_an_insert_sent_without_an_answer_is_of_unknown_outcome_and_not_retried(
    answer: loopback.Answer, reason: str
) -> None:
    with (
        serving(answer) as server,
        client_for(server.url) as client,
        pytest.raises(WolkvoxOutcomeUnknownError) as raised,
    ):
        client.insert(OPERATION, "contacts", FIELDS)
    assert raised.value.fail_fast
    assert len(server.requests) == 1
    assert f"wolkvox insert.php at {server.url} (module 'contacts'): {reason}" in str(raised.value)


@pytest.mark.parametrize("answer", [loopback.silent, loopback.reset, loopback.garbage])
def test_a_read_sent_without_an_answer_is_retried(answer: loopback.Answer) -> None:
    # A silent server costs every try the whole timeout: a short one keeps the three tries quick.
    with (
        serving(answer) as server,
        client_for(server.url, timeout=TIMEOUT / 2) as client,
        pytest.raises(WolkvoxNoAnswerError),
    ):
        client.token_info(OPERATION)
    assert len(server.requests) == RETRIES.max_attempts


@pytest.mark.parametrize("answer", [loopback.drip, loopback.endless_continue])
def test_the_timeout_bounds_the_whole_wait_for_an_answer(answer: loopback.Answer) -> None:
    timeout = 1.0  # the drip takes minutes to finish, the interim answers never end
    with serving(answer) as server, client_for(server.url, timeout=timeout) as client:
        started = time.monotonic()
        with pytest.raises(WolkvoxOutcomeUnknownError) as raised:
            client.insert(OPERATION, "contacts", FIELDS)
        waited = time.monotonic() - started
    assert timeout <= waited < timeout + 1.0
    assert len(server.requests) == 1
    assert f"no complete answer within {timeout:g} s" in str(raised.value)


@pytest.mark.parametrize(
    ("token", "position", "code_point"),
    [
        ("tok\u200b-3f9a1c77e2b54d08", 4, "U+200B (ZERO WIDTH SPACE)"),
        ("tok-3f9a 1c77e2b54d08", 9, "U+0020 (SPACE)"),
        ("tok-3f9a\t1c77e2b54d08", 9, "U+0009 (a control character)"),
        ("tok-3f9a1c77e2b54d08\x7f", 21, "U+007F (a control character)"),
    ],
)
def test_a_token_that_cannot_travel_in_a_header_is_a_config_error_before_any_request(
    monkeypatch: pytest.MonkeyPatch, token: str, position: int, code_point: str
) -> None:
    with serving(loopback.ok) as server:
        monkeypatch.setenv("AIRFLOW_CONN_WOLKVOX_DEFAULT", connection_json(server.url, token=token))
        with pytest.raises(WolkvoxConfigError) as raised:
            WolkvoxHook().insert("contacts", FIELDS)
        assert server.connections == 0
    assert str(raised.value) == (
        f"the token of the wolkvox Connection 'wolkvox_default' cannot be sent in an HTTP header: "
        f"character {position} of {len(token)} is {code_point}; copy the token again from the CRM"
    )
    assert token not in str(raised.value)


def test_urllib3_replaces_a_keep_alive_connection_the_server_closed_while_idle() -> None:
    def answer_then_close_soon(handler: loopback.BaseHTTPRequestHandler, number: int) -> None:
        loopback.ok(handler, number)
        handler.wfile.flush()
        time.sleep(0.2)
        handler.close_connection = True  # the server closes the idle connection (FIN) after 0.2 s

    with serving(answer_then_close_soon) as server, client_for(server.url) as client:
        assert client.insert(OPERATION, "contacts", FIELDS) == NEW_ID
        time.sleep(0.6)
        # The pooled connection is dropped: urllib3 sees the FIN before sending and opens a new one,
        # so the insert is not sent into a closed connection (which would leave its outcome unknown).
        assert client.insert(OPERATION, "contacts", FIELDS) == NEW_ID
    assert (server.connections, len(server.requests)) == (2, 2)


def test_redirects_are_never_followed() -> None:
    def redirect(handler: loopback.BaseHTTPRequestHandler, number: int) -> None:
        handler.send_response(302)
        handler.send_header("Location", "http://elsewhere.example/steal")
        handler.send_header("Content-Length", "0")
        handler.end_headers()

    with (
        serving(redirect) as server,
        client_for(server.url) as client,
        pytest.raises(WolkvoxConfigError, match=r"redirects to 'http://elsewhere\.example/steal'"),
    ):
        client.token_info(OPERATION)
    assert len(server.requests) == 1


def test_the_session_mounts_one_adapter_sized_to_the_crm_limit_without_urllib3_retries() -> None:
    with client_for("https://crm0001.wolkvox.com") as client:
        adapter = client._session.get_adapter("https://crm0001.wolkvox.com/x")
        assert client._session.get_adapter("http://127.0.0.1:1/x") is adapter
        assert isinstance(adapter, requests.adapters.HTTPAdapter)
        assert adapter._pool_maxsize == api.MAX_IN_FLIGHT_PER_TOKEN
        assert (adapter.max_retries.total, adapter.max_retries.read, adapter.max_retries.redirect) == (
            0,
            False,
            False,
        )
