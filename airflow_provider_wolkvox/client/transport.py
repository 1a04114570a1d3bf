"""A lean keep-alive HTTP/1.1 transport for the client's ``requests`` session.

``requests``' own adapter goes through ``urllib3`` and ``http.client``, whose per-call bookkeeping
(connection-pool checks, retries, header parsing with the ``email`` package) costs about a
millisecond of CPU per call on a small worker. At 2 requests in flight and answers in 20 ms, that
alone is 5 % of the CRM's ceiling. This adapter does what the client needs and nothing else:
requests written in one piece, answers read by Content-Length, chunks or close, keep-alive
connections shared by the sending threads, connect and read timeouts, and TLS verified against the
same CA bundle as ``requests``. It never goes through a proxy: the client mounts it only where no
proxy applies. ``Session.send`` still runs, so ``requests_mock`` sees every request.
"""

from __future__ import annotations

import os
import select
import socket
import ssl
import threading
import zlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import IO, Any
from urllib.parse import SplitResult, urlsplit

import requests
from requests.adapters import BaseAdapter
from requests.structures import CaseInsensitiveDict
from requests.utils import DEFAULT_CA_BUNDLE_PATH, get_encoding_from_headers, select_proxy

Timeout = float | tuple[float | None, float | None] | None
_PoolKey = tuple[str, str, int, Any]
# Bounds on what a server may send before the body, as http.client has them.
_MAX_LINE = 65_536
_MAX_HEADERS = 100
# Content codings an answer may come in although the request asks for none (zlib's window bits).
_DECODERS = {"gzip": 16 + zlib.MAX_WBITS, "deflate": zlib.MAX_WBITS}
_BODILESS_STATUS = frozenset({204, 304})


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
    """One socket and the buffered reader of its answers, kept together for the connection's life."""

    __slots__ = ("reader", "sock")

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.reader = sock.makefile("rb")

    def close(self) -> None:
        self.reader.close()
        self.sock.close()

    def dropped(self) -> bool:
        """True when the idle connection is readable: the server closed it (or sent unasked bytes)."""
        poller = select.poll()
        poller.register(self.sock, select.POLLIN)
        return bool(poller.poll(0))


class KeepAliveAdapter(BaseAdapter):
    """Sends prepared requests over pooled keep-alive connections, one exchange at a time on each."""

    def __init__(self) -> None:
        super().__init__()
        self._idle: dict[_PoolKey, list[_Connection]] = {}
        self._lock = threading.Lock()
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
        if cert is not None or select_proxy(str(request.url), proxies or {}) is not None:
            raise requests.RequestException(
                "this transport supports neither client certificates nor proxies", request=request
            )
        connect_timeout, read_timeout = timeout if isinstance(timeout, tuple) else (timeout, timeout)
        url = urlsplit(str(request.url))
        port = url.port or (443 if url.scheme == "https" else 80)
        key: _PoolKey = (url.scheme, url.hostname or "", port, verify if url.scheme == "https" else None)
        connection = self._take(key) or self._connect(key, connect_timeout, request)
        method = str(request.method)
        try:
            connection.sock.settimeout(read_timeout)
            connection.sock.sendall(_head(method, url, request.headers) + _bytes(request.body))
            answer = read_answer(connection.reader, method)
        except TimeoutError as exc:
            connection.close()
            raise requests.ReadTimeout(exc, request=request) from None
        except (OSError, ProtocolError) as exc:
            connection.close()
            raise requests.ConnectionError(exc, request=request) from None
        if answer.keep_alive:
            with self._lock:
                self._idle.setdefault(key, []).append(connection)
        else:
            connection.close()
        return _response(request, answer)

    def close(self) -> None:
        with self._lock:
            idle, self._idle = self._idle, {}
        for connections in idle.values():
            for connection in connections:
                connection.close()

    def _take(self, key: _PoolKey) -> _Connection | None:
        """An idle connection the server has not closed, if there is one."""
        while True:
            with self._lock:
                connections = self._idle.get(key)
                if not connections:
                    return None
                connection = connections.pop()
            if not connection.dropped():
                return connection
            connection.close()

    def _connect(
        self, key: _PoolKey, timeout: float | None, request: requests.PreparedRequest
    ) -> _Connection:
        scheme, host, port, verify = key
        try:
            sock = socket.create_connection((host, port), timeout)
        except OSError as exc:
            raise _connect_error(exc, request) from None
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # requests leave in one piece
            if scheme == "https":
                sock = self._tls_context(verify).wrap_socket(sock, server_hostname=host)
        except OSError as exc:
            sock.close()
            raise _connect_error(exc, request) from None
        return _Connection(sock)

    def _tls_context(self, verify: bool | str) -> ssl.SSLContext:
        with self._lock:
            context = self._tls_contexts.get(verify)
            if context is None:
                context = self._tls_contexts[verify] = _new_tls_context(verify)
            return context


def read_answer(reader: IO[bytes], method: str) -> Answer:
    """Read one HTTP/1.1 answer to a ``method`` request from ``reader``.

    :raises ProtocolError: the answer is malformed or ends early.
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
        body = reader.read()  # delimited by the server closing the connection
        keep_alive = False
    return Answer(status, reason, headers, body, keep_alive)


def _status_line(line: bytes) -> tuple[str, int, str]:
    if not line:
        raise ProtocolError("the server closed the connection without answering")
    if len(line) > _MAX_LINE:
        raise ProtocolError("status line too long")
    version, _, rest = line.decode("latin-1").rstrip("\r\n").partition(" ")
    code, _, reason = rest.partition(" ")
    if not version.startswith("HTTP/1.") or not (len(code) == 3 and code.isdigit()):
        raise ProtocolError(f"not an HTTP/1.x status line: {line[:80]!r}")
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
            raise ProtocolError(f"malformed header line: {line[:80]!r}")
        name, value = name.strip(), value.strip()
        # Repeated headers are joined, as RFC 9110 allows and urllib3 does.
        headers[name] = f"{headers[name]}, {value}" if name in headers else value
    raise ProtocolError(f"more than {_MAX_HEADERS} headers")


def _length(value: str) -> int:
    # Identical repeated values ("12, 12") are allowed by RFC 9110 and mean one length.
    values = {part.strip() for part in value.split(",")}
    if len(values) != 1 or not (length := values.pop()).isdigit():
        raise ProtocolError(f"invalid Content-Length: {value[:80]!r}")
    return int(length)


def _exactly(reader: IO[bytes], size: int) -> bytes:
    data = reader.read(size)
    if len(data) < size:
        raise ProtocolError(f"the answer ends after {len(data)} of {size} bytes")
    return data


def _chunked_body(reader: IO[bytes]) -> bytes:
    chunks = []
    while True:
        line = reader.readline(_MAX_LINE + 1)
        size_text = line.split(b";", 1)[0].strip()  # a chunk extension may follow the size
        try:
            size = int(size_text, 16)
        except ValueError:
            raise ProtocolError(f"invalid chunk size line: {line[:80]!r}") from None
        if size == 0:
            break
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
    # requests verifies against certifi's bundle unless given a file or directory: so does this.
    if isinstance(verify, str) and os.path.isdir(verify):
        return ssl.create_default_context(capath=verify)
    return ssl.create_default_context(cafile=verify if isinstance(verify, str) else DEFAULT_CA_BUNDLE_PATH)


def _response(request: requests.PreparedRequest, answer: Answer) -> requests.Response:
    response = requests.Response()
    response.status_code = answer.status
    response.reason = answer.reason
    response.headers = answer.headers
    coding = answer.headers.get("Content-Encoding", "").strip().lower()
    try:
        response._content = (
            zlib.decompress(answer.body, _DECODERS[coding]) if coding in _DECODERS else answer.body
        )
    except zlib.error as exc:
        raise requests.exceptions.ContentDecodingError(exc, request=request) from None
    response.encoding = get_encoding_from_headers(answer.headers)
    response.url = str(request.url)
    response.request = request
    return response
