"""The client's HTTP stack: a ``requests`` session on urllib3, a deadline per request, one failure reading.

Everything goes through ``requests.adapters.HTTPAdapter``. Two small additions ride on urllib3's
own classes: each request knows whether a byte of it may have left (the connection's ``send`` was
called), and a watchdog thread shuts the request's socket down once its whole deadline has passed, so
that an answer trickling in byte by byte (whatever its framing), or an endless run of interim ``1xx``
answers, cannot hold a request slot past the Connection's timeout. Every interim ``1xx`` answer is
skipped, not only ``100 Continue`` as ``http.client`` does. :func:`network_error` then reads urllib3's and
requests' exception types (the way ``urllib3.util.retry.Retry`` tells connect errors from read
errors) into the provider's: could not connect, TLS refused before sending, or sent without an answer.
"""

from __future__ import annotations

import codecs
import contextlib
import http.client
import ssl
import threading
import time
from collections.abc import Iterator
from socket import SHUT_RDWR
from typing import Any

import requests
from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.exceptions import ConnectTimeoutError, ProxyError
from urllib3.exceptions import SSLError as Urllib3SSLError
from urllib3.util.retry import Retry

from airflow_provider_wolkvox.api import MAX_IN_FLIGHT_PER_TOKEN
from airflow_provider_wolkvox.exceptions import (
    WolkvoxConfigError,
    WolkvoxConnectionError,
    WolkvoxError,
    WolkvoxNoAnswerError,
    WolkvoxTLSError,
)

# urllib3 retries nothing and follows no redirect: the client's retry policy is the only one, and a
# redirect would carry the token header to wherever it points.
NO_RETRIES = Retry(0, read=False, redirect=False)

#: The largest answer read, in bytes: an insertMany answer of 10,000 ids is about 0.5 MB, a page of
#: 1,000 queried records a few MB. A larger answer fails the request unread (docs/connection.md).
MAX_ANSWER_BYTES = 32 * 1024 * 1024
# Bytes read from the socket at a time.
_READ_CHUNK = 64 * 1024
# Characters of the innermost error's own text that a message quotes.
_REASON_LIMIT = 120

_current = threading.local()


class Exchange:
    """One request on its way through urllib3: whether it may have been sent, and its deadline."""

    def __init__(self) -> None:
        #: The request went through the provider's tracked pool, so ``sent`` is known (not through
        #: another adapter, a mock, or a SOCKS proxy's pool).
        self.tracked = False
        #: A byte of the request may have left: a failure from here on leaves its outcome unknown.
        self.sent = False
        #: The deadline passed before the answer was read whole, and the socket was shut down.
        self.expired = False
        self._connection: HTTPConnection | None = None
        # The socket itself: http.client lets go of it when the answer will close the connection,
        # while the answer is still being read from it.
        self._socket: Any = None
        self._lock = threading.Lock()

    def attach(self, connection: HTTPConnection) -> None:
        """Called by the connection before it sends bytes of this request."""
        with self._lock:
            self.sent = True
            self._connection = connection
            self._socket = connection.sock
            if self.expired:
                self._shut_down()

    def detach(self, connection: Any) -> None:
        """Called when ``connection`` goes back to the pool, its answer read."""
        with self._lock:
            if self._connection is connection:
                self._connection = self._socket = None

    def expire(self) -> None:
        """Called by the watchdog at the deadline: ends any wait of this request on the network."""
        with self._lock:
            if self.sent and self._connection is None:
                return  # answered: its connection is back in the pool
            self.expired = True
            self._shut_down()

    def _shut_down(self) -> None:
        sock = self._socket
        if sock is not None:
            # shutdown, not close: it wakes a read blocked in another thread; urllib3 closes later.
            with contextlib.suppress(OSError):
                sock.shutdown(SHUT_RDWR)


class Watchdog:
    """Shuts down the connection of each request still waiting at its deadline; one thread per client.

    :param seconds: every request's deadline, from its start. The thread starts with the first
        request, sleeps until the earliest deadline, and, with none, for ``seconds``: any request
        started meanwhile has a later deadline than that, so no request needs to wake it.
    """

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self._wake = threading.Condition()
        self._deadlines: dict[Exchange, float] = {}
        self._thread: threading.Thread | None = None
        self._closed = False

    @contextlib.contextmanager
    def watch(self) -> Iterator[Exchange]:
        """Track the request the calling thread sends next; shut its connection down at the deadline."""
        current = Exchange()
        with self._wake:
            if self._thread is None or self._closed:  # the first request, or one after close()
                self._closed = False
                self._thread = threading.Thread(target=self._run, name="wolkvox-deadlines", daemon=True)
                self._thread.start()
            self._deadlines[current] = time.monotonic() + self.seconds
        _current.exchange = current
        try:
            yield current
        finally:
            _current.exchange = None
            with self._wake:
                self._deadlines.pop(current, None)

    def close(self) -> None:
        with self._wake:
            self._closed = True
            self._wake.notify()

    def _run(self) -> None:
        with self._wake:
            while not self._closed:
                now = time.monotonic()
                for current, deadline in list(self._deadlines.items()):
                    if deadline <= now:
                        current.expire()
                        self._deadlines.pop(current, None)
                earliest = min(self._deadlines.values(), default=now + self.seconds)
                self._wake.wait(earliest - now)


class _FinalResponse(http.client.HTTPResponse):
    """``http.client``'s answer, read past every interim ``1xx`` answer (``103 Early Hints`` too)."""

    def _read_status(self) -> tuple[str, int, str]:
        while True:
            version, status, reason = super()._read_status()  # type: ignore[misc]
            if status >= 200 or status == 101:
                return version, status, reason
            http.client.parse_headers(self.fp)  # the interim answer's headers, dropped


class _TrackedConnection(HTTPConnection):
    _tunnelling = False
    response_class = _FinalResponse

    def send(self, data: Any) -> None:
        if self.sock is None:
            # Connected first (as http.client would), so that a failure to connect is not "sent".
            self.connect()
        current: Exchange | None = getattr(_current, "exchange", None)
        if current is not None and not self._tunnelling:
            current.attach(self)
        super().send(data)

    def _tunnel(self) -> None:
        # The CONNECT to a proxy carries nothing of the request.
        self._tunnelling = True
        try:
            super()._tunnel()
        finally:
            self._tunnelling = False


class _TrackedHTTPSConnection(HTTPSConnection):
    _tunnelling = False
    response_class = _FinalResponse
    send = _TrackedConnection.send
    _tunnel = _TrackedConnection._tunnel


class _TrackingPool(HTTPConnectionPool):
    def _get_conn(self, timeout: float | None = None) -> Any:
        current: Exchange | None = getattr(_current, "exchange", None)
        if current is not None:
            current.tracked = True
        return super()._get_conn(timeout)

    def _put_conn(self, conn: Any) -> None:
        # Back in the pool the connection may serve another thread: its request's deadline no longer
        # applies to it.
        current: Exchange | None = getattr(_current, "exchange", None)
        if current is not None:
            current.detach(conn)
        super()._put_conn(conn)


class _TrackedPool(_TrackingPool):
    ConnectionCls = _TrackedConnection


class _TrackedHTTPSPool(_TrackingPool, HTTPSConnectionPool):
    ConnectionCls = _TrackedHTTPSConnection


_TRACKED_POOLS = {"http": _TrackedPool, "https": _TrackedHTTPSPool}


class WolkvoxAdapter(HTTPAdapter):
    """``HTTPAdapter`` with urllib3's retries off, one pool of the CRM's in-flight size, tracked requests.

    Direct and HTTP(S)-proxied connections are tracked; behind a SOCKS proxy (urllib3's own pool
    classes) requests have no deadline beyond the timeouts and a TLS failure reads as "no answer".
    """

    def __init__(self) -> None:
        super().__init__(pool_connections=1, pool_maxsize=MAX_IN_FLIGHT_PER_TOKEN, max_retries=NO_RETRIES)

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = _TRACKED_POOLS

    def proxy_manager_for(self, proxy: str, **proxy_kwargs: Any) -> Any:
        manager = super().proxy_manager_for(proxy, **proxy_kwargs)
        if not proxy.lower().startswith("socks"):
            manager.pool_classes_by_scheme = _TRACKED_POOLS
        return manager


def network_error(
    exc: requests.RequestException | None,
    sent: Exchange,
    *,
    where: str,
    endpoint: str,
    module: str | None,
    seconds: float,
) -> WolkvoxError:
    """The provider's error for a request that got no complete HTTP answer.

    :param exc: what requests raised; None when the answer seemed to end but the deadline had cut it.
    :param where: names the endpoint and the server, e.g. "wolkvox insert.php at https://…".
    :param seconds: the request's deadline, for the message.
    """
    chain = list(_causes(exc)) if exc is not None else []
    if isinstance(exc, _UNSENDABLE):
        # Only the type: the text may quote a proxy URL with its credentials.
        return WolkvoxConfigError(
            f"{where}: the request cannot be made ({type(exc).__name__}); check the Connection's Host and "
            "the proxy settings (HTTPS_PROXY, HTTP_PROXY)",
            endpoint=endpoint,
            module=module,
        )
    if exc is None or (sent.expired and sent.sent):
        cut = f" ({_reason(chain[-1])})" if chain else ""
        return WolkvoxNoAnswerError(
            f"{where}: no complete answer within {seconds:g} s; the request was sent{cut}",
            endpoint=endpoint,
            module=module,
        )
    reason = _reason(chain[-1])
    connect_failed = any(
        isinstance(cause, (ConnectTimeoutError, ProxyError, requests.ConnectTimeout)) for cause in chain
    )
    if connect_failed or (sent.tracked and not sent.sent):
        # Nothing of the request left: a TLS failure is the Connection's; anything else, retried.
        # Untracked, only a failure to connect proves that; anything else may have been sent.
        if any(isinstance(cause, (Urllib3SSLError, ssl.SSLError, ssl.CertificateError)) for cause in chain):
            return WolkvoxTLSError(
                f"{where}: the TLS handshake failed ({reason}); check that the Connection's Host names an "
                "https server whose certificate this worker trusts (REQUESTS_CA_BUNDLE, or the extra verify)",
                endpoint=endpoint,
                module=module,
            )
        return WolkvoxConnectionError(
            f"{where}: could not connect ({reason})", endpoint=endpoint, module=module
        )
    return WolkvoxNoAnswerError(
        f"{where}: no answer after the request was sent ({reason})", endpoint=endpoint, module=module
    )


# Refused by requests before anything is sent: a malformed URL or proxy URL, a scheme it cannot use.
_UNSENDABLE = (
    requests.exceptions.InvalidURL,
    requests.exceptions.InvalidSchema,
    requests.exceptions.MissingSchema,
)


def _causes(exc: BaseException) -> Iterator[BaseException]:
    """``exc`` and what it wraps, outermost first: requests wraps urllib3, which wraps the socket's error."""
    seen: set[int] = set()
    cause: BaseException | None = exc
    while cause is not None and id(cause) not in seen:
        seen.add(id(cause))
        yield cause
        wrapped = [getattr(cause, "reason", None), getattr(cause, "original_error", None), *cause.args]
        cause = next((w for w in wrapped if isinstance(w, BaseException)), None) or cause.__cause__


def _reason(cause: BaseException) -> str:
    """The innermost error in a few words (the exception type and its own text, cut short)."""
    detail: str | None
    if isinstance(cause, ssl.SSLCertVerificationError):
        detail = cause.verify_message
    elif isinstance(cause, ssl.SSLError):
        detail = cause.reason
    elif isinstance(cause, OSError):
        detail = cause.strerror
    else:
        detail = None
    text = (detail or str(cause)).strip()
    if len(text) > _REASON_LIMIT:
        text = text[:_REASON_LIMIT] + "…"
    return type(cause).__name__ + (f": {text}" if text else "")


def read_answer(response: requests.Response) -> bytearray | str:
    """The body of ``response`` as sent, or why it is not read: a ``Content-Encoding`` the client did
    not ask for, or more than ``MAX_ANSWER_BYTES``. A body not read is dropped with its connection."""
    encoding = response.headers.get("Content-Encoding", "identity").strip().lower()
    declared = response.headers.get("Content-Length", "").strip()
    refusal = None
    if encoding not in ("", "identity"):
        refusal = f"with a body in Content-Encoding {encoding[:40]!r}, which the client did not ask for"
    elif declared.isdigit() and int(declared) > MAX_ANSWER_BYTES:
        refusal = f"with a body of {int(declared):,} bytes, over the {MAX_ANSWER_BYTES:,} the client reads"
    content = bytearray()
    if refusal is None:
        for chunk in response.iter_content(_READ_CHUNK):
            content += chunk
            if len(content) > MAX_ANSWER_BYTES:
                refusal = f"with a body over the {MAX_ANSWER_BYTES:,} bytes the client reads"
                break
    if refusal is not None:
        response.close()
        return refusal
    return content


def text_encoding(response: requests.Response) -> str:
    """The text encoding of an answer: its charset, else UTF-8 (JSON's)."""
    try:
        return codecs.lookup(response.encoding or "utf-8").name
    except LookupError:
        return "utf-8"
