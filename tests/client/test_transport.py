"""The lean transport: answers parsed byte by byte, then the adapter against scripted loopback servers."""

from __future__ import annotations

import contextlib
import datetime
import io
import ipaddress
import json
import re
import shutil
import socket
import ssl
import struct
import subprocess
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import requests
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from requests.adapters import HTTPAdapter

from airflow_provider_wolkvox import __version__, api
from airflow_provider_wolkvox.client import RetryPolicy, WolkvoxClient, transport
from airflow_provider_wolkvox.client.transport import (
    Answer,
    KeepAliveAdapter,
    NotSentError,
    ProtocolError,
    read_answer,
)
from airflow_provider_wolkvox.exceptions import (
    WolkvoxConnectionError,
    WolkvoxNoAnswerError,
    WolkvoxOutcomeUnknownError,
)
from tests.conftest import OPERATION, TOKEN
from tests.testing.helpers import wait_until

NEW_ID = "64cb1f0e2a9d4c0012ab34cd"
INSERTED = b'{"code":200,"error":null,"msg":"ok","data":{"wolkvox_id":"64cb1f0e2a9d4c0012ab34cd"}}'
# Seconds a scripted server or a client waits at most: the tests never hang.
TIMEOUT = 5.0
NO_RETRIES = RetryPolicy(max_attempts=1)
CHUNKED = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"


def answer(raw: bytes, method: str = "POST") -> Answer:
    return read_answer(io.BufferedReader(io.BytesIO(raw)), method)


def ok_head(length: int, *extra: bytes) -> bytes:
    return b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n%s\r\n" % (
        length,
        b"".join(line + b"\r\n" for line in extra),
    )


# -- read_answer -------------------------------------------------------------------------------


def test_content_length_answer_keeps_the_connection() -> None:
    read = answer(ok_head(len(INSERTED), b"X-Trace: a", b"x-trace: b") + INSERTED + b"NEXT")
    assert (read.status, read.reason, read.body, read.keep_alive) == (200, "OK", INSERTED, True)
    # Names are case-insensitive and repeated headers are joined.
    assert read.headers["content-type"] == "application/json"
    assert read.headers["X-TRACE"] == "a, b"


@pytest.mark.parametrize(
    ("status_line", "connection", "keep_alive"),
    [
        (b"HTTP/1.1 200 OK", b"", True),
        (b"HTTP/1.1 200 OK", b"Connection: close\r\n", False),
        (b"HTTP/1.1 200 OK", b"Connection: Keep-Alive, Close\r\n", False),
        (b"HTTP/1.0 200 OK", b"", False),
        (b"HTTP/1.0 200 OK", b"Connection: keep-alive\r\n", True),
    ],
)
def test_keep_alive_follows_the_version_and_connection_header(
    status_line: bytes, connection: bytes, keep_alive: bool
) -> None:
    read = answer(status_line + b"\r\nContent-Length: 2\r\n" + connection + b"\r\n{}")
    assert (read.body, read.keep_alive) == (b"{}", keep_alive)


def test_chunked_answer_with_extension_and_trailer() -> None:
    raw = (
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
        b'5;name=value\r\n{"a":\r\n3\r\n12}\r\n0\r\nX-Checksum: 1\r\n\r\n'
    )
    read = answer(raw)
    assert (read.body, read.keep_alive) == (b'{"a":12}', True)


def test_answer_without_length_is_read_to_the_close() -> None:
    read = answer(b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\n\r\n<html>down</html>")
    assert (read.body, read.keep_alive) == (b"<html>down</html>", False)


def test_interim_answers_are_skipped() -> None:
    read = answer(b"HTTP/1.1 100 Continue\r\n\r\n" + ok_head(2) + b"{}")
    assert (read.status, read.body) == (200, b"{}")


@pytest.mark.parametrize(("status", "method"), [(204, "POST"), (304, "GET"), (200, "HEAD")])
def test_bodiless_answers_read_no_body(status: int, method: str) -> None:
    read = answer(b"HTTP/1.1 %d X\r\nContent-Length: 10\r\n\r\n" % status, method)
    assert (read.status, read.body, read.keep_alive) == (status, b"", True)


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (b"", "the server closed the connection without answering"),
        (b"SSH-2.0-OpenSSH\r\n\r\n", "not an HTTP/1.x status line"),
        (b"HTTP/1.1 2OO OK\r\n\r\n", "not an HTTP/1.x status line"),
        ("HTTP/1.1 ²00 OK\r\n\r\n".encode("latin-1"), "not an HTTP/1.x status line"),
        (b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n", "the answer ends within its headers"),
        (b"HTTP/1.1 200 OK\r\nno colon here\r\n\r\n", "malformed header line"),
        (b"HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n", "invalid Content-Length"),
        (b"HTTP/1.1 200 OK\r\nContent-Length: 2, 3\r\n\r\n", "invalid Content-Length"),
        ("HTTP/1.1 200 OK\r\nContent-Length: ²\r\n\r\n".encode("latin-1"), "invalid Content-Length"),
        (b"HTTP/1.1 200 OK\r\nContent-Length: 10000000000000\r\n\r\n", "answer body over 67108864 bytes"),
        (CHUNKED + b"7ffffffffff\r\n", "answer body over 67108864 bytes"),
        (ok_head(10) + b"{}", "the answer ends after 2 of 10 bytes"),
        (CHUNKED + b"zz\r\n", "invalid chunk size line"),
        (CHUNKED + b"2\r\n{}xx", "a chunk is not followed by a line end"),
        (b"HTTP/1.1 200 OK\r\n" + b"X: 1\r\n" * 101 + b"\r\n", "more than 100 headers"),
        (b"HTTP/1.1 200 OK\r\nX: " + b"a" * 70_000 + b"\r\n\r\n", "header line too long"),
    ],
)
def test_malformed_answers_raise_protocol_error(raw: bytes, message: str) -> None:
    with pytest.raises(ProtocolError, match=f"^{re.escape(message)}$"):
        answer(raw)


def test_identical_repeated_content_length_is_one_length() -> None:
    assert answer(b"HTTP/1.1 200 OK\r\nContent-Length: 2, 2\r\n\r\n{}").body == b"{}"


# -- the adapter against a scripted server ---------------------------------------------------------


@dataclass
class Exchange:
    """One request as the scripted server read it: the connection it came on and its raw bytes."""

    connection: int
    head: bytes
    body: bytes


Script = Callable[[int, "ScriptedServer", socket.socket], bool]


@dataclass
class ScriptedServer:
    """A loopback server that reads each request whole, records it, and answers by ``script``.

    ``script(number, server, sock)`` writes the answer to request ``number`` (0-based, over all
    connections) and returns whether to keep the connection open.
    """

    script: Script
    tls: ssl.SSLContext | None = None
    exchanges: list[Exchange] = field(default_factory=list)
    connections: int = 0
    #: Connections the client closed (the server read the end of the stream).
    closed: int = 0

    def __post_init__(self) -> None:
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(TIMEOUT)
        self.port = self._listener.getsockname()[1]
        self._threads: list[threading.Thread] = []
        self._sockets: list[socket.socket] = []
        self._stopped = threading.Event()
        acceptor = threading.Thread(target=self._accept, daemon=True)
        acceptor.start()
        self._threads.append(acceptor)

    @property
    def url(self) -> str:
        return f"{'https' if self.tls else 'http'}://127.0.0.1:{self.port}"

    def close(self) -> None:
        self._stopped.set()
        # Shutting the sockets down wakes the threads blocked on them; closing alone would not.
        for sock in [self._listener, *self._sockets]:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
        self._listener.close()
        for thread in self._threads:
            thread.join(TIMEOUT)

    def _accept(self) -> None:
        while not self._stopped.is_set():
            try:
                sock, _ = self._listener.accept()
            except OSError:
                return
            self._sockets.append(sock)
            number = self.connections
            self.connections += 1
            worker = threading.Thread(target=self._serve, args=(sock, number), daemon=True)
            worker.start()
            self._threads.append(worker)

    def _serve(self, sock: socket.socket, connection: int) -> None:
        sock.settimeout(TIMEOUT)
        try:
            if self.tls is not None:
                sock = self.tls.wrap_socket(sock, server_side=True)
            with sock, sock.makefile("rb") as reader:
                while True:
                    head = b""
                    while (line := reader.readline()) not in (b"\r\n", b""):
                        head += line
                    if not head:
                        self.closed += 1
                        return
                    length = next(
                        (
                            int(h.split(b":")[1])
                            for h in head.split(b"\r\n")
                            if h.lower().startswith(b"content-length")
                        ),
                        0,
                    )
                    self.exchanges.append(Exchange(connection, head, reader.read(length)))
                    if not self.script(len(self.exchanges) - 1, self, sock):
                        return
        except (OSError, ssl.SSLError):
            return


def reply(body: bytes = INSERTED, *extra: bytes) -> Script:
    def script(number: int, server: ScriptedServer, sock: socket.socket) -> bool:
        sock.sendall(ok_head(len(body), *extra) + body)
        return b"Connection: close" not in extra

    return script


@pytest.fixture
def scripted() -> Iterator[Callable[..., ScriptedServer]]:
    servers: list[ScriptedServer] = []

    def start(script: Script, tls: ssl.SSLContext | None = None) -> ScriptedServer:
        servers.append(ScriptedServer(script, tls))
        return servers[-1]

    yield start
    for server in servers:
        server.close()


def client_for(server: ScriptedServer, **options: object) -> WolkvoxClient:
    return WolkvoxClient(server.url, TOKEN, timeout=TIMEOUT, retry_policy=NO_RETRIES, **options)  # type: ignore[arg-type]


def test_the_request_leaves_whole_with_the_exact_head(scripted: Callable[..., ScriptedServer]) -> None:
    server = scripted(reply())
    with client_for(server) as client:
        assert client.insert(OPERATION, "contacts", {"Nombre": "Ana"}) == NEW_ID

    [exchange] = server.exchanges
    body = b'{"operation":"%s","module":"contacts","fields":{"Nombre":"Ana"}}' % OPERATION.encode()
    assert exchange.head.decode() == (
        f"POST {api.INSERT_PATH} HTTP/1.1\r\n"
        f"Host: 127.0.0.1:{server.port}\r\n"
        f"{api.TOKEN_HEADER}: {TOKEN}\r\n"
        "Content-Type: application/json\r\n"
        "Accept-Encoding: identity\r\n"
        f"User-Agent: airflow-provider-wolkvox/{__version__}\r\n"
        f"Content-Length: {len(body)}\r\n"
    )
    assert exchange.body == body


def test_query_string_is_sent_in_the_target(scripted: Callable[..., ScriptedServer]) -> None:
    figures = b'{"code":200,"data":{"token_limit":4800,"token_use_today":10}}'
    server = scripted(reply(figures))
    with client_for(server) as client:
        assert client.token_info(OPERATION).calls_left == 4790
    assert server.exchanges[0].head.startswith(
        f"GET {api.TOKEN_INFO_PATH}?operation={OPERATION} HTTP/1.1\r\n".encode()
    )


def test_keep_alive_connection_is_reused(scripted: Callable[..., ScriptedServer]) -> None:
    server = scripted(reply())
    with client_for(server) as client:
        for _ in range(3):
            client.insert(OPERATION, "contacts", {"a": 1})
    assert [exchange.connection for exchange in server.exchanges] == [0, 0, 0]


def test_connection_close_answer_opens_a_new_connection(scripted: Callable[..., ScriptedServer]) -> None:
    server = scripted(reply(INSERTED, b"Connection: close"))
    with client_for(server) as client:
        for _ in range(2):
            assert client.insert(OPERATION, "contacts", {"a": 1}) == NEW_ID
    assert [exchange.connection for exchange in server.exchanges] == [0, 1]


def test_idle_connection_closed_by_the_server_is_replaced_before_sending(
    scripted: Callable[..., ScriptedServer],
) -> None:
    closed = threading.Event()

    def answer_then_hang_up(number: int, server: ScriptedServer, sock: socket.socket) -> bool:
        sock.sendall(ok_head(len(INSERTED)) + INSERTED)  # says keep-alive, then closes anyway
        closed.set()
        return False

    server = scripted(answer_then_hang_up)
    with client_for(server) as client:
        client.insert(OPERATION, "contacts", {"a": 1})
        assert closed.wait(TIMEOUT)
        wait_until(lambda: server.connections == 1 and _closed_by_peer(client))
        # The dead connection is noticed before the request goes out: no outcome-unknown error.
        assert client.insert(OPERATION, "contacts", {"a": 2}) == NEW_ID
    assert [exchange.connection for exchange in server.exchanges] == [0, 1]


def test_drop_after_the_request_is_outcome_unknown(scripted: Callable[..., ScriptedServer]) -> None:
    server = scripted(lambda number, server, sock: False)  # reads the request, closes without answer
    with client_for(server) as client, pytest.raises(WolkvoxOutcomeUnknownError) as raised:
        client.insert(OPERATION, "contacts", {"a": 1})
    assert isinstance(raised.value.__cause__, WolkvoxNoAnswerError)
    assert "(ProtocolError)" in str(raised.value.__cause__)


def test_read_timeout_is_outcome_unknown(scripted: Callable[..., ScriptedServer]) -> None:
    released = threading.Event()

    def never_answer(number: int, server: ScriptedServer, sock: socket.socket) -> bool:
        released.wait(TIMEOUT)
        return False

    server = scripted(never_answer)
    client = WolkvoxClient(server.url, TOKEN, timeout=0.2, retry_policy=NO_RETRIES)
    with client, pytest.raises(WolkvoxOutcomeUnknownError) as raised:
        client.insert(OPERATION, "contacts", {"a": 1})
    released.set()
    assert "no answer after the request was sent (TimeoutError)" in str(raised.value.__cause__)


def test_refused_connection_is_not_sent() -> None:
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    listener.close()  # nothing listens there now: connecting is refused
    with pytest.raises(NotSentError):
        KeepAliveAdapter().send(
            requests.Request("GET", f"http://127.0.0.1:{port}/").prepare(), timeout=TIMEOUT
        )
    client = WolkvoxClient(f"http://127.0.0.1:{port}", TOKEN, retry_policy=NO_RETRIES)
    refused = r"could not reach the server \(ConnectionRefusedError\)"
    with client, pytest.raises(WolkvoxConnectionError, match=refused):
        client.insert(OPERATION, "contacts", {"a": 1})


def test_connection_idle_too_long_is_replaced(
    scripted: Callable[..., ScriptedServer], monkeypatch: pytest.MonkeyPatch
) -> None:
    server = scripted(reply())
    with client_for(server) as client:
        client.insert(OPERATION, "contacts", {"a": 1})
        client.insert(OPERATION, "contacts", {"a": 2})
        monkeypatch.setattr(transport, "MAX_IDLE_SECONDS", 0.0)
        client.insert(OPERATION, "contacts", {"a": 3})
    assert [exchange.connection for exchange in server.exchanges] == [0, 0, 1]


def test_reused_connection_dropped_after_the_request_is_outcome_unknown(
    scripted: Callable[..., ScriptedServer],
) -> None:
    def answer_once(number: int, server: ScriptedServer, sock: socket.socket) -> bool:
        if number == 0:
            sock.sendall(ok_head(len(INSERTED)) + INSERTED)
            return True
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))  # reset
        return False

    server = scripted(answer_once)
    with client_for(server) as client:
        assert client.insert(OPERATION, "contacts", {"a": 1}) == NEW_ID
        with pytest.raises(WolkvoxOutcomeUnknownError) as raised:
            client.insert(OPERATION, "contacts", {"a": 2})
    assert isinstance(raised.value.__cause__, WolkvoxNoAnswerError)
    assert [exchange.connection for exchange in server.exchanges] == [0, 0]


def test_any_failure_while_reading_is_outcome_unknown(
    scripted: Callable[..., ScriptedServer], monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken_reader(reader: object, method: str) -> None:
        raise ValueError("a bug in the reader")

    monkeypatch.setattr(transport, "read_answer", broken_reader)
    server = scripted(reply())
    with client_for(server) as client, pytest.raises(WolkvoxOutcomeUnknownError) as raised:
        client.insert(OPERATION, "contacts", {"a": 1})
    assert "no answer after the request was sent (ValueError)" in str(raised.value.__cause__)
    wait_until(lambda: len(server.exchanges) == 1)  # it was sent


def test_close_closes_idle_connections_and_those_coming_back(scripted: Callable[..., ScriptedServer]) -> None:
    server = scripted(reply())
    adapter = KeepAliveAdapter()
    request = requests.Request("POST", server.url + api.INSERT_PATH, data=b"{}").prepare()
    adapter.send(request, timeout=TIMEOUT)
    [[idle]] = adapter._idle.values()
    adapter.close()
    assert idle.sock.fileno() == -1
    # An exchange that ends after close() does not put its connection back.
    adapter.send(request, timeout=TIMEOUT)
    assert adapter._idle == {}
    wait_until(lambda: server.closed == 2)


def test_threads_share_the_pool_one_exchange_per_connection(scripted: Callable[..., ScriptedServer]) -> None:
    def echo_id(number: int, server: ScriptedServer, sock: socket.socket) -> bool:
        # The id names the request's record, so that an answer read by the wrong thread shows.
        record = json.loads(server.exchanges[number].body)["fields"]["n"]
        body = b'{"code":200,"data":{"wolkvox_id":"%024d"}}' % record
        sock.sendall(ok_head(len(body)) + body)
        return True

    server = scripted(echo_id)
    ids: dict[int, list[str]] = {0: [], 1: []}
    with client_for(server) as client:

        def insert_many(thread: int) -> None:
            for n in range(thread * 100, thread * 100 + 20):
                ids[thread].append(client.insert(OPERATION, "contacts", {"n": n}))

        threads = [threading.Thread(target=insert_many, args=(thread,)) for thread in ids]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(TIMEOUT)
    assert ids == {t: [f"{n:024d}" for n in range(t * 100, t * 100 + 20)] for t in ids}
    assert server.connections <= 2  # the gate lets 2 through at once, each on its own connection


def test_proxied_client_keeps_the_requests_adapter(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.internal:3128")
    monkeypatch.setenv("HTTP_PROXY", "http://proxy.internal:3128")
    for name in ("NO_PROXY", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
    with WolkvoxClient("https://crm0001.wolkvox.com", TOKEN) as client:
        assert type(client._session.get_adapter("https://crm0001.wolkvox.com/")) is HTTPAdapter
    # A proxy for the other scheme does not apply.
    monkeypatch.delenv("HTTPS_PROXY")
    with WolkvoxClient("https://crm0001.wolkvox.com", TOKEN) as client:
        assert type(client._session.get_adapter("https://crm0001.wolkvox.com/")) is KeepAliveAdapter


# -- TLS -------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1, and its key."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "wolkvox test")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), True)
        .sign(key, hashes.SHA256())
    )
    folder = tmp_path_factory.mktemp("tls")
    cert_path, key_path = folder / "cert.pem", folder / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return cert_path, key_path


@pytest.fixture
def tls_server(scripted: Callable[..., ScriptedServer], certificate: tuple[Path, Path]) -> ScriptedServer:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(*certificate)
    return scripted(reply(), tls=context)


def test_tls_verified_against_the_ca_bundle_from_the_environment(
    tls_server: ScriptedServer, certificate: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(certificate[0]))
    with client_for(tls_server) as client:
        assert client.insert(OPERATION, "contacts", {"a": 1}) == NEW_ID
        assert client.insert(OPERATION, "contacts", {"a": 2}) == NEW_ID
    assert [exchange.connection for exchange in tls_server.exchanges] == [0, 0]


def test_tls_with_an_unknown_certificate_is_not_sent(
    tls_server: ScriptedServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE"):
        monkeypatch.delenv(name, raising=False)
    with (
        client_for(tls_server) as client,
        pytest.raises(
            WolkvoxConnectionError, match=r"could not reach the server \(SSLCertVerificationError\)"
        ),
    ):
        client.insert(OPERATION, "contacts", {"a": 1})
    assert tls_server.exchanges == []


def test_tls_without_verification_when_the_connection_says_so(
    tls_server: ScriptedServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE"):
        monkeypatch.delenv(name, raising=False)
    with client_for(tls_server, verify=False) as client:
        assert client.insert(OPERATION, "contacts", {"a": 1}) == NEW_ID


def test_tls_handshake_that_hangs_is_a_connect_timeout(scripted: Callable[..., ScriptedServer]) -> None:
    plain = scripted(reply())  # speaks no TLS: the handshake never completes
    client = WolkvoxClient(f"https://127.0.0.1:{plain.port}", TOKEN, timeout=0.3, retry_policy=NO_RETRIES)
    with client, pytest.raises(WolkvoxConnectionError, match=r"could not reach the server \(TimeoutError\)"):
        client.insert(OPERATION, "contacts", {"a": 1})
    assert plain.exchanges == []


def test_tls_certificate_for_another_host_is_not_sent(
    tls_server: ScriptedServer, certificate: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(certificate[0]))  # trusted, but names 127.0.0.1 only
    client = WolkvoxClient(f"https://localhost:{tls_server.port}", TOKEN, retry_policy=NO_RETRIES)
    with client, pytest.raises(WolkvoxConnectionError, match=r"\(SSLCertVerificationError\)"):
        client.insert(OPERATION, "contacts", {"a": 1})
    assert tls_server.exchanges == []


@pytest.mark.skipif(shutil.which("openssl") is None, reason="needs the openssl command to name the CA file")
def test_tls_verified_against_a_ca_directory(
    tls_server: ScriptedServer,
    certificate: tuple[Path, Path],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    # A CA directory holds certificates under their subject hash, as c_rehash names them.
    subject_hash = subprocess.run(
        ["openssl", "x509", "-hash", "-noout", "-in", str(certificate[0])],
        capture_output=True,
        text=True,
        check=True,
        timeout=TIMEOUT,
    ).stdout.strip()
    (tmp_path / f"{subject_hash}.0").write_bytes(certificate[0].read_bytes())
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(tmp_path))
    with client_for(tls_server) as client:
        assert client.insert(OPERATION, "contacts", {"a": 1}) == NEW_ID


# -- helpers ---------------------------------------------------------------------------------------


def _closed_by_peer(client: WolkvoxClient) -> bool:
    adapter = client._session.get_adapter(client.base_url)
    assert isinstance(adapter, KeepAliveAdapter)
    return not any(
        connection.reusable() for connections in adapter._idle.values() for connection in connections
    )
