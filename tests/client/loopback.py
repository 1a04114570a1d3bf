"""Loopback servers that misbehave on purpose, for the client's network tests.

Built on ``http.server``: each request is read whole by the standard library, then a test's
``Answer`` decides what goes back (a normal answer, nothing, a reset, garbage, a trickle...).
"""

from __future__ import annotations

import contextlib
import datetime
import ipaddress
import socket
import socketserver
import ssl
import struct
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

NEW_ID = "64cb1f0e2a9d4c0012ab34cd"
INSERTED = b'{"code":200,"error":"null","msg":"Succesfully create record","data":{"wolkvox_id":"%s"}}' % (
    NEW_ID.encode()
)
# Seconds a server thread waits at most: the tests never hang.
SERVER_TIMEOUT = 10.0

#: What a server does once it has read request ``number`` (0-based): write to ``handler.wfile``,
#: or not. It may set ``handler.close_connection``.
Answer = Callable[[BaseHTTPRequestHandler, int], None]


def ok(handler: BaseHTTPRequestHandler, number: int) -> None:
    """The documented insert answer, keep-alive."""
    handler.send_response(200)
    handler.send_header("Content-Type", "application/json")
    handler.send_header("Content-Length", str(len(INSERTED)))
    handler.end_headers()
    handler.wfile.write(INSERTED)


def silent(handler: BaseHTTPRequestHandler, number: int) -> None:
    """Read the request, then never answer (until the client goes away)."""
    handler.close_connection = True
    handler.rfile.read(1)


def reset(handler: BaseHTTPRequestHandler, number: int) -> None:
    """Read the request, then reset the connection (RST, no answer)."""
    handler.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    handler.close_connection = True
    handler.connection.close()  # now: socketserver's own close would send a FIN first


def garbage(handler: BaseHTTPRequestHandler, number: int) -> None:
    """Answer something that is not HTTP."""
    handler.wfile.write(b"SSH-2.0-OpenSSH_9.2\r\n\r\n")
    handler.close_connection = True


def drip(handler: BaseHTTPRequestHandler, number: int) -> None:
    """A valid answer, one byte per second."""
    raw = b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(INSERTED), INSERTED)
    handler.close_connection = True
    for byte in raw:
        handler.wfile.write(bytes([byte]))
        handler.wfile.flush()
        time.sleep(1.0)


def endless_continue(handler: BaseHTTPRequestHandler, number: int) -> None:
    """``100 Continue`` interim answers, one every 0.2 s, for ever."""
    handler.close_connection = True
    while True:
        handler.wfile.write(b"HTTP/1.1 100 Continue\r\n\r\n")
        handler.wfile.flush()
        time.sleep(0.2)


class LoopbackServer(socketserver.ThreadingTCPServer):
    """Serves ``answer`` on 127.0.0.1 (with TLS when ``tls`` is given) from background threads.

    Counts the TCP connections accepted and the requests read whole.
    """

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, answer: Answer, *, tls: ssl.SSLContext | None = None) -> None:
        self.answer = answer
        self.tls = tls
        self.connections = 0
        #: (method, path, headers, body) of every request read whole.
        self.requests: list[tuple[str, str, dict[str, str], bytes]] = []
        self._lock = threading.Lock()
        super().__init__(("127.0.0.1", 0), _Handler)
        self._thread = threading.Thread(
            target=self.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()

    @property
    def url(self) -> str:
        return f"{'https' if self.tls else 'http'}://127.0.0.1:{self.server_address[1]}"

    def get_request(self) -> tuple[socket.socket, object]:
        sock, address = super().get_request()
        with self._lock:
            self.connections += 1
        sock.settimeout(SERVER_TIMEOUT)
        return sock, address

    def finish_request(self, request: object, client_address: object) -> None:
        if self.tls is not None:
            try:
                request = self.tls.wrap_socket(request, server_side=True)  # type: ignore[arg-type]
            except (OSError, ssl.SSLError):
                return  # the client refused our certificate, or spoke no TLS
        super().finish_request(request, client_address)  # type: ignore[arg-type]

    def handle_error(self, request: object, client_address: object) -> None:
        pass  # the client went away mid-answer: expected in these tests

    def close(self) -> None:
        self.shutdown()
        self.server_close()


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: LoopbackServer

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        with self.server._lock:
            number = len(self.server.requests)
            self.server.requests.append((self.command, self.path, dict(self.headers.items()), body))
        self.server.answer(self, number)

    do_GET = do_POST

    def log_message(self, format: str, *args: object) -> None:
        pass


@contextlib.contextmanager
def serving(answer: Answer, *, tls: ssl.SSLContext | None = None) -> Iterator[LoopbackServer]:
    server = LoopbackServer(answer, tls=tls)
    try:
        yield server
    finally:
        server.close()


def closed_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def self_signed(folder: Path) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 and its key, as PEM files in ``folder``."""
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
    cert_path, key_path = folder / "cert.pem", folder / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return cert_path, key_path
