"""A lean keep-alive HTTP/1.1 transport for the client's ``requests`` session.

``requests``' own adapter goes through ``urllib3`` and ``http.client``, whose per-call bookkeeping
(connection-pool checks, retries, header parsing with the ``email`` package) costs about a
millisecond of CPU per call on a small worker. At 2 requests in flight and answers in 20 ms, that
alone is 5 % of the CRM's ceiling. This adapter does what the client needs and nothing else:
requests written in one piece, answers read by Content-Length, chunks or close, keep-alive
connections shared by the sending threads, connect and read timeouts, and TLS verified against the
same CA bundle as ``requests``. It uses neither proxies nor client certificates: the client mounts
it only where no proxy applies. ``Session.send`` still runs, so ``requests_mock`` sees every request.
"""

from __future__ import annotations

import os
import select
import socket
import ssl
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import IO, Any
from urllib.parse import SplitResult, urlsplit

import requests
from requests.adapters import BaseAdapter
from requests.structures import CaseInsensitiveDict
from requests.utils import DEFAULT_CA_BUNDLE_PATH, get_encoding_from_headers

Timeout = float | tuple[float | None, float | None] | None
_PoolKey = tuple[str, str, int, Any]
# Bounds on what a server may send before the body, as http.client has them, and on the body: the
# CRM's answers are small (ids of at most 10,000 records), a larger one is refused unread.
_MAX_LINE = 65_536
_MAX_HEADERS = 100
_MAX_BODY = 64 * 1024 * 1024
_BODILESS_STATUS = frozenset({204, 304})
# Servers close idle keep-alive connections (Apache after 5 s by default, nginx after 75 s); one
# closing just as a request goes out would leave that request's outcome unknown. Connections idle
# this long are replaced rather than risked.
MAX_IDLE_SECONDS = 2.0


class NotSentError(requests.ConnectionError):
    """No connection could be made: the request never left this machine."""


class ProtocolError(Exception):
    """The server's answer is not well-formed HTTP/1.1 (or stops short)."""


@dataclass(frozen=True)
class Answer:
    """One HTTP answer as read: status, reason, headers, body, and whether the connection stays open."""

    status: int
    reason: str
    headers: CaseInsensitiveDict[str]
    body: bytes
    keep_alive: bool


class _Connection:
    """One keep-alive socket, and since when it has been idle in the pool."""

    __slots__ = ("idle_since", "sock")

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.idle_since = 0.0

    def reusable(self) -> bool:
        """False when idle too long, or readable: the server closed it (or sent unasked bytes)."""
        if time.monotonic() - self.idle_since >= MAX_IDLE_SECONDS:
            return False
        poller = select.poll()
        poller.register(self.sock, select.POLLIN)
        return not poller.poll(0)


class KeepAliveAdapter(BaseAdapter):
    """Sends prepared requests over pooled keep-alive connections, one exchange at a time on each."""

    def __init__(self) -> None:
        super().__init__()
        self._idle: dict[_PoolKey, list[_Connection]] = {}
        self._lock = threading.Lock()
        self._closed = False
        self._tls_contexts: dict[bool | str, ssl.SSLContext] = {}

    def send(
        self,
        request: requests.PreparedRequest,
        stream: bool = False,
        timeout: Timeout = None,
        verify: bool | str = True,
        cert: Any = None,
        proxies: Mapping[str, str] | None = None,
    ) -> requests.Response:
        connect_timeout, read_timeout = timeout if isinstance(timeout, tuple) else (timeout, timeout)
        url = urlsplit(str(request.url))
        port = url.port or (443 if url.scheme == "https" else 80)
        key: _PoolKey = (url.scheme, url.hostname or "", port, verify if url.scheme == "https" else None)
        connection = self._take(key) or self._connect(key, connect_timeout, request)
        method = str(request.method)
        try:
            connection.sock.settimeout(read_timeout)
            connection.sock.sendall(_head(method, url, request.headers) + _bytes(request.body))
            # A reader per answer, as http.client has it: bytes a server sent beyond an answer are
            # dropped with it instead of being read as the next request's answer.
            with connection.sock.makefile("rb") as reader:
                answer = read_answer(reader, method)
        except TimeoutError as exc:
            connection.sock.close()
            raise requests.ReadTimeout(exc, request=request) from None
        except Exception as exc:
            # Once a byte may have left, any failure means "no answer": the server may have acted.
            connection.sock.close()
            raise requests.ConnectionError(exc, request=request) from None
        except BaseException:
            connection.sock.close()
            raise
        if answer.keep_alive:
            self._put(key, connection)
        else:
            connection.sock.close()
        return _response(request, answer)

    def close(self) -> None:
        with self._lock:
            self._closed = True
            idle, self._idle = self._idle, {}
        for connections in idle.values():
            for connection in connections:
                connection.sock.close()

    def _take(self, key: _PoolKey) -> _Connection | None:
        """The most recently used idle connection that can still be used, if there is one."""
        while True:
            with self._lock:
                connections = self._idle.get(key)
                if not connections:
                    return None
                connection = connections.pop()
            if connection.reusable():
                return connection
            connection.sock.close()

    def _put(self, key: _PoolKey, connection: _Connection) -> None:
        connection.idle_since = time.monotonic()
        with self._lock:
            if not self._closed:
                self._idle.setdefault(key, []).append(connection)
                return
        connection.sock.close()  # the adapter was closed during the exchange

    def _connect(
        self, key: _PoolKey, timeout: float | None, request: requests.PreparedRequest
    ) -> _Connection:
        scheme, host, port, verify = key
        # Built outside the connection's error handling: a bad CA bundle is no network failure.
        context = self._tls_context(verify) if scheme == "https" else None
        try:
            sock = socket.create_connection((host, port), timeout)
        except OSError as exc:
            raise _connect_error(exc, request) from None
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # requests leave in one piece
            if context is not None:
                sock = context.wrap_socket(sock, server_hostname=host)
        except OSError as exc:
            sock.close()
            raise _connect_error(exc, request) from None
        return _Connection(sock)

    def _tls_context(self, verify: bool | str) -> ssl.SSLContext:
        with self._lock:
            context = self._tls_contexts.get(verify)
        if context is None:
            context = _new_tls_context(verify)  # loading a CA bundle takes a while: not under the lock
            with self._lock:
                context = self._tls_contexts.setdefault(verify, context)
        return context


def read_answer(reader: IO[bytes], method: str) -> Answer:
    """Read one HTTP/1.1 answer to a ``method`` request from ``reader``.

    :raises ProtocolError: the answer is malformed, too large, or ends early.
    """
    while True:
        version, status, reason = _status_line(reader.readline(_MAX_LINE + 1))
        headers = _headers(reader)
        # Interim answers (100 Continue, 103 Early Hints) come before the real one.
        if not 100 <= status < 200:
            break
    tokens = {token.strip().lower() for token in headers.get("Connection", "").split(",")}
    keep_alive = "keep-alive" in tokens if version == "HTTP/1.0" else "close" not in tokens
    if method == "HEAD" or status in _BODILESS_STATUS:
        body = b""
    elif "chunked" in headers.get("Transfer-Encoding", "").lower():
        body = _chunked_body(reader)
    elif "Content-Length" in headers:
        body = _exactly(reader, _length(headers["Content-Length"]))
    else:
        body = reader.read(_MAX_BODY + 1)  # delimited by the server closing the connection
        _check_size(len(body))
        keep_alive = False
    return Answer(status, reason, headers, body, keep_alive)


# The server's bytes are not quoted in these errors: a server that echoes requests would put the
# token in them.


def _status_line(line: bytes) -> tuple[str, int, str]:
    if not line:
        raise ProtocolError("the server closed the connection without answering")
    if len(line) > _MAX_LINE:
        raise ProtocolError("status line too long")
    version, _, rest = line.decode("latin-1").rstrip("\r\n").partition(" ")
    code, _, reason = rest.partition(" ")
    if not version.startswith("HTTP/1.") or not _is_number(code) or len(code) != 3:
        raise ProtocolError("not an HTTP/1.x status line")
    return version, int(code), reason.strip()


def _headers(reader: IO[bytes]) -> CaseInsensitiveDict[str]:
    headers: CaseInsensitiveDict[str] = CaseInsensitiveDict()
    for _ in range(_MAX_HEADERS + 1):
        line = reader.readline(_MAX_LINE + 1)
        if line in (b"\r\n", b"\n"):
            return headers
        if not line:
            raise ProtocolError("the answer ends within its headers")
        if len(line) > _MAX_LINE:
            raise ProtocolError("header line too long")
        name, colon, value = line.decode("latin-1").partition(":")
        if not colon or not name.strip():
            raise ProtocolError("malformed header line")
        name, value = name.strip(), value.strip()
        # Repeated headers are joined, as RFC 9110 allows and urllib3 does.
        headers[name] = f"{headers[name]}, {value}" if name in headers else value
    raise ProtocolError(f"more than {_MAX_HEADERS} headers")


def _length(value: str) -> int:
    # Identical repeated values ("12, 12") are allowed by RFC 9110 and mean one length.
    values = {part.strip() for part in value.split(",")}
    if len(values) != 1 or not _is_number(length := values.pop()):
        raise ProtocolError("invalid Content-Length")
    _check_size(int(length))
    return int(length)


def _is_number(text: str) -> bool:
    return text.isascii() and text.isdigit()  # isdigit alone takes "²" and other digits int() refuses


def _check_size(size: int) -> None:
    if size > _MAX_BODY:
        raise ProtocolError(f"answer body over {_MAX_BODY} bytes")


def _exactly(reader: IO[bytes], size: int) -> bytes:
    data = reader.read(size)
    if len(data) < size:
        raise ProtocolError(f"the answer ends after {len(data)} of {size} bytes")
    return data


def _chunked_body(reader: IO[bytes]) -> bytes:
    chunks = []
    total = 0
    while True:
        size_text = reader.readline(_MAX_LINE + 1).split(b";", 1)[0].strip()  # an extension may follow
        try:
            size = int(size_text, 16)
        except ValueError:
            raise ProtocolError("invalid chunk size line") from None
        if size == 0:
            break
        total += size
        _check_size(total)
        chunks.append(_exactly(reader, size))
        if reader.readline(_MAX_LINE + 1) not in (b"\r\n", b"\n"):
            raise ProtocolError("a chunk is not followed by a line end")
    _headers(reader)  # trailer fields, up to the final empty line
    return b"".join(chunks)


def _connect_error(exc: OSError, request: requests.PreparedRequest) -> requests.RequestException:
    """The error of a connection not made (TLS handshake included): the request was not sent."""
    if isinstance(exc, TimeoutError):
        return requests.ConnectTimeout(exc, request=request)
    return NotSentError(exc, request=request)


def _head(method: str, url: SplitResult, headers: Mapping[str, str]) -> bytes:
    """The request line and headers; ``requests`` has checked the header names and values."""
    target = (url.path or "/") + (f"?{url.query}" if url.query else "")
    lines = [f"{method} {target} HTTP/1.1", f"Host: {url.netloc.rpartition('@')[2]}"]
    lines += (f"{name}: {value}" for name, value in headers.items())
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def _bytes(body: Any) -> bytes:
    if body is None:
        return b""
    return body.encode() if isinstance(body, str) else bytes(body)


def _new_tls_context(verify: bool | str) -> ssl.SSLContext:
    if verify is False:
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        return context
    if verify is True:
        # requests verifies against certifi's bundle unless given a file or directory: so does this.
        return ssl.create_default_context(cafile=DEFAULT_CA_BUNDLE_PATH)
    if os.path.isdir(verify):
        return ssl.create_default_context(capath=verify)
    return ssl.create_default_context(cafile=verify)


def _response(request: requests.PreparedRequest, answer: Answer) -> requests.Response:
    response = requests.Response()
    response.status_code = answer.status
    response.reason = answer.reason
    response.headers = answer.headers
    response._content = answer.body
    response.encoding = get_encoding_from_headers(answer.headers)
    response.url = str(request.url)
    response.request = request
    return response
