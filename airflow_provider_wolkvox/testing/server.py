"""The embedded fake wolkvox CRM server.

How a request is handled, step by step; the first step that fails answers and ends the request:

1. **path** unknown: 400 BAD REQUEST / THE API YOU WANT TO CONSULT DOES NOT EXIST.
2. **method** other than the endpoint's: 405 METHOD NOT ALLOWED (our wording; not public).
3. **token header** missing or empty: 401 UNAUTHORIZED / PLEASE ENTER THE WOLKVOX-TOKEN.
4. **token** unknown: 403 FORBIDDEN / PLEASE VALIDATE TOKEN.
5. **concurrency**: the token already has ``MAX_IN_FLIGHT_PER_TOKEN`` requests in flight: the
   documented 403 for simultaneous requests.
6. **quota**: the token's quota is spent: 403 FORBIDDEN / TOKEN LIMIT EXCEEDED.

   Steps 1 to 6 neither charge the quota nor count in flight. A request that passes them is
   *admitted*: it is charged one use of the quota, and it counts in flight until just before its
   answer is written. (A real server finishes before its answer has travelled back, so a client that
   keeps at most two requests in flight is never refused; releasing after the write would open a
   race in which it could be.)
7. **fault**: the next injected fault, if any, is drawn. Faults that do not process the request
   answer now; of these, the ones modelling a request the server refused or never saw are not
   charged (see :attr:`Fault.charges`).
8. **body**: the parameters are read from the JSON body (the query string for token information):
   a body that is not a JSON object gives 400 BAD REQUEST; a missing ``operation``, ``module``,
   ``fields`` (``field`` and ``value`` for a query) gives 400 BAD REQUEST / SOME PARAMETERS ARE
   REQUIRED; an ``operation`` other than the token's gives 403 FORBIDDEN / PLEASE VALIDATE TOKEN;
   parameters of the wrong JSON type and invalid records give 400 BAD REQUEST with our own ``msg``.
   These refusals were admitted, so they are charged.
9. **endpoint**: the records are stored (all of a batch or none) or looked up.
10. **answer** once the configured latency has passed since admission (plus a SLOW fault's
    delay); faults that processed the request replace or withhold the answer now.

Every envelope carries ``code``, ``error``, ``msg`` and ``data``; error envelopes send ``"data": []``
(the vendor does not document it; an empty PHP array encodes so). Success envelopes copy the
vendor's examples: ``code`` is the number 200 for inserts and the string ``"200"`` for queries and
token information, as the documentation shows them.
"""

from __future__ import annotations

import json
import math
import threading
import time
from collections import Counter, deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from types import TracebackType
from typing import Any
from urllib.parse import parse_qs

from airflow_provider_wolkvox.api import (
    DEFAULT_DAILY_QUOTA,
    ERROR_BAD_REQUEST,
    ERROR_FORBIDDEN,
    ERROR_NONE,
    ERROR_UNAUTHORIZED,
    INSERT_MANY_PATH,
    INSERT_PATH,
    MAX_IN_FLIGHT_PER_TOKEN,
    MSG_INVALID_TOKEN,
    MSG_MISSING_PARAMETERS,
    MSG_MISSING_TOKEN,
    MSG_QUOTA_EXCEEDED,
    MSG_TOO_MANY_SIMULTANEOUS,
    MSG_UNKNOWN_API,
    QUERY_PATH,
    TOKEN_HEADER,
    TOKEN_INFO_PATH,
)
from airflow_provider_wolkvox.testing._faults import Fault, FaultSchedule, Injection, make_injection
from airflow_provider_wolkvox.testing._store import ID, InvalidRecord, Record, RecordStore
from airflow_provider_wolkvox.testing._transport import HTTPServer
from airflow_provider_wolkvox.testing._wire import Reply, error_reply, json_reply

DEMO_TOKEN = "demo-token"
DEMO_OPERATION = "demo"
#: The environment variable Airflow reads the default wolkvox connection from.
CONN_ENV_VAR = "AIRFLOW_CONN_WOLKVOX_DEFAULT"

# Success texts as the vendor's examples spell them; our own where the vendor shows none.
_MSG_CREATED = "Succesfully create record"
_MSG_CREATED_MANY = "Succesfully create records"
_MSG_FOUND = "{} records were are found"
_ERROR_METHOD_NOT_ALLOWED = "METHOD NOT ALLOWED"
_MSG_NOT_A_JSON_OBJECT = "THE BODY MUST BE A JSON OBJECT"
# Parameters that name something and so must be text.
_TEXT_PARAMETERS = frozenset({"module", "field"})

_TOKEN_KEY = TOKEN_HEADER.lower()


@dataclass(frozen=True)
class FakeToken:
    """A token the fake accepts.

    :param token: the ``Wolkvox-Token`` header value.
    :param operation: the CRM operation the token belongs to.
    :param quota: the token's daily quota; None for the server's ``quota``.
    """

    token: str = field(repr=False)
    operation: str
    quota: int | None = None


@dataclass(frozen=True)
class RequestLogEntry:
    """One request as the server saw it. It never holds the token: ``operation`` stands for it.

    :param method: the HTTP method.
    :param path: the path, without the query string.
    :param status: the HTTP status answered; None when the connection was closed without an answer.
    :param operation: the operation of the request's token; None when the token was missing or unknown.
    :param module: the body's ``module``, once read and valid.
    :param record_count: how many records the request carried.
    :param fault: the injected fault, if any.
    :param ids: the ids of the records the request stored.
    """

    method: str
    path: str
    status: int | None
    operation: str | None
    module: str | None
    record_count: int
    fault: Fault | None
    ids: tuple[str, ...]


@dataclass
class _Account:
    """A token's configuration and counters; guarded by the server's lock."""

    operation: str
    quota: int
    used: int = 0
    in_flight: int = 0
    max_in_flight: int = 0


@dataclass
class _Exchange:
    """What the request log keeps of a request, gathered while it is handled."""

    method: str
    path: str
    account: _Account | None
    module: str | None = None
    record_count: int = 0
    fault: Fault | None = None
    ids: tuple[str, ...] = ()

    def entry(self, reply: Reply | None) -> RequestLogEntry:
        return RequestLogEntry(
            self.method,
            self.path,
            None if reply is None else reply.status,
            None if self.account is None else self.account.operation,
            self.module,
            self.record_count,
            self.fault,
            self.ids,
        )


class _Refusal(Exception):
    """Ends the handling of a request with an error envelope."""

    def __init__(self, status: int, error: str, msg: str) -> None:
        super().__init__(msg)
        self.reply = error_reply(status, error, msg)


def _missing(value: Any) -> bool:
    """Tell a missing parameter: absent, null or empty, as the CRM's PHP ``empty()`` would."""
    return value is None or value == "" or value == [] or value == {}


def _json_object(body: bytes) -> dict[str, Any]:
    try:
        parsed = json.loads(body)
    except ValueError:  # includes undecodable bytes
        parsed = None
    if not isinstance(parsed, dict):
        raise _Refusal(400, ERROR_BAD_REQUEST, _MSG_NOT_A_JSON_OBJECT)
    return parsed


def _hours_to_midnight() -> int:
    """Return the whole hours, rounded up, until the quota's daily restart at local midnight."""
    now = datetime.now()
    midnight = datetime.combine(now.date() + timedelta(days=1), datetime.min.time())
    return math.ceil((midnight - now).total_seconds() / 3600)


class FakeWolkvoxServer:
    """An in-process fake of the wolkvox CRM API on loopback, for tests and demos (like moto for AWS).

    It serves the documented endpoints, envelopes, error rows and limits of
    :mod:`airflow_provider_wolkvox.api` (the module docstring lists the order of its checks), keeps
    records in memory and can inject faults. Use it as a context manager or call :meth:`start` and
    :meth:`stop`. All inspection methods are thread-safe.

    :param tokens: the accepted tokens: a mapping of token to operation, or :class:`FakeToken` items;
        default ``{"demo-token": "demo"}``. The first token's operation is the default operation of
        the inspection methods.
    :param host: the address to listen on (IPv4).
    :param port: the port; 0 picks a free one (see :attr:`url`).
    :param quota: the daily quota of every token that does not set its own. It never restarts while
        the server runs; :meth:`reset` clears it.
    :param latency: seconds from the admission of a request to its answer, the server's own
        processing included, counted in flight: a distant server. Settable.
    :param insert_many_ids: answer a batch insert with one id per record; False answers
        ``{"inserted": n}`` instead, as a server whose batch answer cannot be matched to the input
        would. Settable.
    :param unique_fields: field labels per module whose values must not repeat, e.g.
        ``{"contacts": ["Email"]}``.
    :param log_size: how many recent requests :attr:`request_log` keeps; counters are exact anyway.
    """

    def __init__(
        self,
        tokens: Mapping[str, str] | Iterable[FakeToken] | None = None,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        quota: int = DEFAULT_DAILY_QUOTA,
        latency: float = 0.0,
        insert_many_ids: bool = True,
        unique_fields: Mapping[str, Iterable[str]] | None = None,
        log_size: int = 10_000,
    ) -> None:
        if tokens is None:
            tokens = {DEMO_TOKEN: DEMO_OPERATION}
        items = [FakeToken(*item) for item in tokens.items()] if isinstance(tokens, Mapping) else list(tokens)
        if not items:
            raise ValueError("the fake server needs at least one token")
        self._accounts = {
            item.token: _Account(item.operation, quota if item.quota is None else item.quota)
            for item in items
        }
        self._default_token = items[0].token
        self.host = host
        self.port = port
        self.latency = latency
        self.insert_many_ids = insert_many_ids
        self._store = RecordStore(unique_fields or {})
        self._faults = FaultSchedule()
        self._lock = threading.Lock()
        self._log: deque[RequestLogEntry] = deque(maxlen=log_size)
        self._calls: Counter[str] = Counter()
        self._routes: dict[str, tuple[str, Callable[[_Account, str, bytes, _Exchange], Reply]]] = {
            INSERT_PATH: ("POST", self._insert),
            INSERT_MANY_PATH: ("POST", self._insert_many),
            QUERY_PATH: ("POST", self._query),
            TOKEN_INFO_PATH: ("GET", self._token_info),
        }
        self._stopping = threading.Event()
        self._http: HTTPServer | None = None

    # Life cycle

    def start(self) -> FakeWolkvoxServer:
        """Listen and serve in a background thread; return self.

        :raises RuntimeError: the server is already running.
        :raises OSError: the port cannot be bound.
        """
        if self._http is not None:
            raise RuntimeError("the fake wolkvox server is already running")
        self._stopping.clear()
        self._http = HTTPServer((self.host, self.port), self._handle)
        # Kept for a restart, so that a connection configured with the URL stays valid.
        self.port = self._http.server_address[1]
        self._http.start()
        return self

    def stop(self) -> None:
        """Stop serving; close the listening socket and every connection, and join every thread.

        Requests waiting out their latency or a SLOW delay are cut short. Does nothing when stopped.
        """
        if self._http is None:
            return
        self._stopping.set()
        self._http.stop()
        self._http = None

    def __enter__(self) -> FakeWolkvoxServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def url(self) -> str:
        """The base URL, e.g. ``http://127.0.0.1:8765``, for the connection's host.

        :raises RuntimeError: the server is not running (with port 0 the port is not known yet).
        """
        if self._http is None:
            raise RuntimeError("the fake wolkvox server is not running")
        return f"http://{self.host}:{self.port}"

    def airflow_connection(self, token: str | None = None) -> str:
        """Return the JSON value of an ``AIRFLOW_CONN_*`` variable that points Airflow at this server.

        :param token: one of the configured tokens; default the first. The connection's
            ``operation`` extra is the token's operation.
        """
        token = self._default_token if token is None else token
        return json.dumps(
            {
                "conn_type": "wolkvox",
                "host": self.url,
                "password": token,
                "extra": {"operation": self._accounts[token].operation},
            }
        )

    # Inspection

    def records(self, module: str, operation: str | None = None) -> list[Record]:
        """Return copies of the records stored in ``module``, oldest first.

        :param operation: default the first token's operation.
        """
        return self._store.records(self._operation(operation), module)

    def record_count(self, module: str, operation: str | None = None) -> int:
        """Return how many records ``module`` holds, without copying them (for large loads)."""
        return self._store.count(self._operation(operation), module)

    @property
    def request_log(self) -> list[RequestLogEntry]:
        """The most recent requests (up to ``log_size``), in the order they were answered."""
        with self._lock:
            return list(self._log)

    def calls(self, path: str | None = None) -> int:
        """Return how many requests arrived on ``path`` (any path when None), refused ones included."""
        with self._lock:
            return self._calls.total() if path is None else self._calls[path]

    def quota_used(self, token: str) -> int:
        """Return how many of ``token``'s calls counted against its quota."""
        with self._lock:
            return self._accounts[token].used

    def max_in_flight(self, token: str) -> int:
        """Return the most admitted requests ``token`` had in flight at once."""
        with self._lock:
            return self._accounts[token].max_in_flight

    def reset(self) -> None:
        """Forget records, counters, the request log and faults; requests in flight stay counted."""
        self._store.clear()
        self._faults.clear()
        with self._lock:
            self._log.clear()
            self._calls.clear()
            for account in self._accounts.values():
                account.used = 0
                account.max_in_flight = account.in_flight

    def _operation(self, operation: str | None) -> str:
        return self._accounts[self._default_token].operation if operation is None else operation

    # Fault injection

    def inject(
        self,
        fault: Fault,
        *,
        path: str | None = None,
        times: int | None = 1,
        status: int | None = None,
        body: Mapping[str, Any] | str | bytes | None = None,
        delay: float | None = None,
        after: int = 0,
    ) -> None:
        """Make the next ``times`` admitted requests on ``path`` suffer ``fault``.

        Scripted faults apply in the order they were injected, before any random rule.

        :param path: an endpoint path; None for any.
        :param times: how many requests; None until :meth:`clear_faults`.
        :param status: replaces the fault's HTTP status (RESPOND needs it).
        :param body: replaces the fault's body (RESPOND needs it): a mapping is sent as JSON, text or
            bytes verbatim.
        :param delay: seconds a SLOW answer is held (default 1 s).
        :param after: let this many matching requests through first (a fault in the middle of a load).
        :raises ValueError: arguments that do not apply to ``fault``.
        """
        self._faults.script(make_injection(fault, status, body, delay), path=path, times=times, after=after)

    def inject_random(
        self,
        rate: float,
        faults: Iterable[Fault] | None = None,
        *,
        seed: int | None = None,
        path: str | None = None,
        delay: float | None = None,
    ) -> None:
        """Make each admitted request on ``path`` suffer a fault with probability ``rate``.

        Replaces the previous random rule. The fault is chosen uniformly from ``faults`` (default:
        every fault but RESPOND); with a ``seed`` the sequence of draws is reproducible.

        :param delay: seconds a SLOW answer is held (default 1 s).
        """
        self._faults.randomize(rate, faults, seed=seed, path=path, delay=delay)

    def clear_faults(self) -> None:
        """Stop injecting faults."""
        self._faults.clear()

    # Request handling

    def _handle(self, method: str, target: str, headers: dict[str, str], body: bytes) -> Reply | None:
        """Handle one request; return its answer, or None to close the connection without one."""
        path, _, query = target.partition("?")
        token = headers.get(_TOKEN_KEY) or None
        account = None if token is None else self._accounts.get(token)
        exchange = _Exchange(method, path, account)
        reply: Reply | None
        try:
            admitted, injection = self._admit(method, path, token, account)
        except _Refusal as refusal:
            reply = refusal.reply
        else:
            try:
                admitted_at = time.monotonic()
                exchange.fault = None if injection is None else injection.fault
                reply = self._process(injection, admitted, path, query, body, exchange)
                # The latency is the whole time the server takes, its own processing included.
                delay = self.latency - (time.monotonic() - admitted_at)
                delay = max(delay, 0.0) + (0.0 if injection is None else injection.delay)
                if delay > 0:
                    self._stopping.wait(delay)
            finally:
                with self._lock:
                    admitted.in_flight -= 1
        # Logged before the answer is sent, so that a client that got its answer finds it logged.
        with self._lock:
            self._calls[path] += 1
            self._log.append(exchange.entry(reply))
        return reply

    def _admit(
        self, method: str, path: str, token: str | None, account: _Account | None
    ) -> tuple[_Account, Injection | None]:
        """Run steps 1 to 7 of the module docstring; return the admitted account and its fault."""
        route = self._routes.get(path)
        if route is None:
            raise _Refusal(400, ERROR_BAD_REQUEST, MSG_UNKNOWN_API)
        if method != route[0]:
            raise _Refusal(405, _ERROR_METHOD_NOT_ALLOWED, f"THIS API ONLY ACCEPTS {route[0]}")
        if token is None:
            raise _Refusal(401, ERROR_UNAUTHORIZED, MSG_MISSING_TOKEN)
        if account is None:
            raise _Refusal(403, ERROR_FORBIDDEN, MSG_INVALID_TOKEN)
        with self._lock:
            if account.in_flight >= MAX_IN_FLIGHT_PER_TOKEN:
                raise _Refusal(403, ERROR_FORBIDDEN, MSG_TOO_MANY_SIMULTANEOUS)
            if account.used >= account.quota:
                raise _Refusal(403, ERROR_FORBIDDEN, MSG_QUOTA_EXCEEDED)
            # Drawn under the lock so that the quota check and the charge stay one step.
            injection = self._faults.draw(path)
            if injection is None or injection.fault.charges:
                account.used += 1
            account.in_flight += 1
            account.max_in_flight = max(account.max_in_flight, account.in_flight)
        return account, injection

    def _process(
        self,
        injection: Injection | None,
        account: _Account,
        path: str,
        query: str,
        body: bytes,
        exchange: _Exchange,
    ) -> Reply | None:
        """Run the endpoint unless the fault prevents it; return the answer the fault leaves."""
        if injection is not None and not injection.fault.stores:
            return injection.reply
        try:
            reply = self._routes[path][1](account, query, body, exchange)
        except _Refusal as refusal:
            reply = refusal.reply
        if injection is None or injection.fault is Fault.SLOW:
            return reply
        return injection.reply

    def _parameters(self, account: _Account, source: Mapping[str, Any], *names: str) -> list[Any]:
        """Check ``operation`` and ``names`` in ``source``; return the values of ``names``."""
        values = [source.get(name) for name in ("operation", *names)]
        if any(_missing(value) for value in values):
            raise _Refusal(400, ERROR_BAD_REQUEST, MSG_MISSING_PARAMETERS)
        if values[0] != account.operation:
            raise _Refusal(403, ERROR_FORBIDDEN, MSG_INVALID_TOKEN)
        for name, value in zip(names, values[1:], strict=True):
            if name in _TEXT_PARAMETERS and not isinstance(value, str):
                raise _Refusal(400, ERROR_BAD_REQUEST, f"THE PARAMETER '{name}' MUST BE TEXT")
        return values[1:]

    def _store_records(
        self, account: _Account, module: str, records: list[Any], exchange: _Exchange, *, numbered: bool
    ) -> list[str]:
        exchange.record_count = len(records)
        try:
            ids = self._store.insert(account.operation, module, records, numbered=numbered)
        except InvalidRecord as invalid:
            raise _Refusal(400, ERROR_BAD_REQUEST, str(invalid)) from None
        exchange.ids = tuple(ids)
        return ids

    def _insert(self, account: _Account, query: str, body: bytes, exchange: _Exchange) -> Reply:
        module, fields = self._parameters(account, _json_object(body), "module", "fields")
        exchange.module = module
        if not isinstance(fields, dict):
            raise _Refusal(400, ERROR_BAD_REQUEST, "THE PARAMETER 'fields' MUST BE AN OBJECT")
        (new_id,) = self._store_records(account, module, [fields], exchange, numbered=False)
        return json_reply(200, {"code": 200, "error": ERROR_NONE, "msg": _MSG_CREATED, "data": {ID: new_id}})

    def _insert_many(self, account: _Account, query: str, body: bytes, exchange: _Exchange) -> Reply:
        module, records = self._parameters(account, _json_object(body), "module", "fields")
        exchange.module = module
        if not isinstance(records, list):
            raise _Refusal(400, ERROR_BAD_REQUEST, "THE PARAMETER 'fields' MUST BE AN ARRAY OF OBJECTS")
        ids = self._store_records(account, module, records, exchange, numbered=True)
        data: Any = [{ID: new_id} for new_id in ids] if self.insert_many_ids else {"inserted": len(ids)}
        return json_reply(200, {"code": 200, "error": ERROR_NONE, "msg": _MSG_CREATED_MANY, "data": data})

    def _query(self, account: _Account, query: str, body: bytes, exchange: _Exchange) -> Reply:
        module, label, value = self._parameters(account, _json_object(body), "module", "field", "value")
        exchange.module = module
        found = self._store.query(account.operation, module, label, value)
        return json_reply(
            200, {"code": "200", "error": ERROR_NONE, "msg": _MSG_FOUND.format(len(found)), "data": found}
        )

    def _token_info(self, account: _Account, query: str, body: bytes, exchange: _Exchange) -> Reply:
        self._parameters(account, {name: values[0] for name, values in parse_qs(query).items()})
        with self._lock:
            used = account.used
        data = {
            "description": "token",
            "token_limit": account.quota,
            "token_use_today": used,
            "available_consumition_options": max(account.quota - used, 0),
            "hours_to_restart_count": _hours_to_midnight(),
        }
        return json_reply(
            200, {"code": "200", "error": ERROR_NONE, "msg": _MSG_FOUND.format(1), "data": data}
        )
