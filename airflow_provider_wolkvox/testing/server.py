"""The embedded fake wolkvox CRM server.

How a request is handled, step by step; the first step that fails answers and ends the request:

1. **inspection**: the fake-only ``GET /__fake__/records?module=...&operation=...`` answers a
   module's records as ``query.php`` would, and ``GET /__fake__/stats`` the counts of
   :meth:`FakeWolkvoxServer.stats` as JSON, both with no token; they are never charged, counted or
   logged.
2. **path** unknown: 400 BAD REQUEST / THE API YOU WANT TO CONSULT DOES NOT EXIST.
3. **method** other than the endpoint's: 405 METHOD NOT ALLOWED (our wording; not public).
4. **token header** missing or empty: 401 UNAUTHORIZED / PLEASE ENTER THE WOLKVOX-TOKEN.
5. **token** unknown: 403 FORBIDDEN / PLEASE VALIDATE TOKEN.
6. **concurrency**: the token already has ``MAX_IN_FLIGHT_PER_TOKEN`` requests in flight: the
   documented 403 for simultaneous requests.
7. **quota**: the token's quota is spent: 403 FORBIDDEN / TOKEN LIMIT EXCEEDED. (A quota period that
   ended restarts every token's count first.)

   Steps 1 to 7 neither charge the quota nor count in flight. A request that passes them is
   *admitted*: it is charged one use of the quota, and it counts in flight until just before its
   answer is written. (A real server finishes before its answer has travelled back, so a client that
   keeps at most two requests in flight is never refused; releasing after the write would open a
   race in which it could be.)
8. **fault**: the next injected fault, if any, is drawn. Faults that do not process the request
   answer now; of these, the ones modelling a request the server refused or never saw are not
   charged (see :attr:`Fault.charges`).
9. **body**: the parameters are read from the JSON body (the query string for token information):
   a body that is not a JSON object gives 400 BAD REQUEST; a missing parameter (``date`` not true
   for ``queryDates.php``) gives 400 BAD REQUEST / SOME PARAMETERS ARE REQUIRED; an ``operation``
   other than the token's gives 403 FORBIDDEN / PLEASE VALIDATE TOKEN; a module outside ``modules``
   gives 400 BAD REQUEST / THE MODULE DOES NOT EXIST; parameters of the wrong JSON type, malformed
   dates and invalid records give 400 BAD REQUEST with our own ``msg``. These refusals were
   admitted, so they are charged.
10. **endpoint**: the records are stored (all of a batch or none), looked up, updated or deleted
    (all or none) as :mod:`~airflow_provider_wolkvox.testing._endpoints` describes; an update or
    delete naming an id the module does not hold gives 400 BAD REQUEST / THE RECORD DOES NOT EXIST.
11. **answer** once the configured latency has passed since admission (plus a SLOW fault's
    delay); faults that processed the request replace or withhold the answer now. The request is
    logged first (:attr:`FakeWolkvoxServer.request_log`, and a DEBUG line on the
    ``airflow_provider_wolkvox.testing`` logger).

Requests that ``http.server`` refuses itself never reach step 1: malformed ones (400), unsupported
methods (501) and bodies sent with a ``Transfer-Encoding`` such as chunked (411), which ``http.server``
does not decode.

Every envelope carries ``code``, ``error``, ``msg`` and ``data``; error envelopes send ``"data": []``
(the vendor does not document it; an empty PHP array encodes so). Success envelopes copy the
vendor's examples: ``code`` is the number 200 for inserts, updates and deletes and the string
``"200"`` for queries and token information, as the documentation shows them.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from types import TracebackType
from typing import Any

from airflow_provider_wolkvox.api import DEFAULT_DAILY_QUOTA
from airflow_provider_wolkvox.testing._accounts import Accounts, FakeToken
from airflow_provider_wolkvox.testing._clock import FakeClock, MidnightRestart, PeriodicRestart
from airflow_provider_wolkvox.testing._endpoints import RECORDS_PATH, STATS_PATH, Endpoints
from airflow_provider_wolkvox.testing._faults import FaultInjection
from airflow_provider_wolkvox.testing._handling import RequestHandling
from airflow_provider_wolkvox.testing._requestlog import RequestLog, RequestLogEntry
from airflow_provider_wolkvox.testing._store import Record, RecordStore
from airflow_provider_wolkvox.testing._transport import HTTPServer

__all__ = [
    "CONN_ENV_VAR",
    "RECORDS_PATH",
    "STATS_PATH",
    "FakeToken",
    "FakeWolkvoxServer",
    "RequestLogEntry",
]

DEMO_TOKEN = "demo-token"
DEMO_OPERATION = "demo"
#: The environment variable Airflow reads the default wolkvox connection from.
CONN_ENV_VAR = "AIRFLOW_CONN_WOLKVOX_DEFAULT"
# wolkvox is Colombian: the CRM's clock is UTC-5 unless a test says otherwise.
_COLOMBIA_UTC_OFFSET = -5.0


class FakeWolkvoxServer(FaultInjection):
    """An in-process fake of the wolkvox CRM API on loopback, for tests and demos (like moto for AWS).

    It serves the documented endpoints (insert, insertMany, query, queryDates, update, delete, token
    information), envelopes, error rows and limits of :mod:`airflow_provider_wolkvox.api` (the module
    docstring lists the order of its checks), keeps records in memory with the CRM's metadata
    (``wolkvox_id``, ``wolkvox_fecha_creacion``, ``wolkvox_fecha_modificacion`` on the CRM's clock,
    ``wolkvox_usuario_creacion``) and can inject faults. Use it as a context manager or call
    :meth:`start` and :meth:`stop`. All inspection methods are thread-safe.

    Tests and benchmarks seed modules with :meth:`add_records` (past creation times, no quota) and
    read them with :meth:`records`; the fake-only ``GET /__fake__/records`` (and the ``records``
    command of ``python -m airflow_provider_wolkvox.testing``) lists them from another process, as
    ``GET /__fake__/stats`` (and the ``stats`` command) gives :meth:`stats`.
    Each request is logged at DEBUG on ``airflow_provider_wolkvox.testing``: method, path, status,
    module, record count, fault and duration, never the token nor a field's value.

    :param tokens: the accepted tokens: a mapping of token to operation, or :class:`FakeToken` items;
        default ``{"demo-token": "demo"}``. The first token's operation is the default operation of
        the inspection methods.
    :param host: the address to listen on (IPv4).
    :param port: the port; 0 picks a free one (see :attr:`url`).
    :param quota: the daily quota of every token that does not set its own; see ``quota_period``.
        :meth:`reset` and :meth:`restart_quota` clear the counts.
    :param latency: seconds from the admission of a request to its answer, the server's own
        processing included, counted in flight: a distant server. Settable.
    :param insert_many_ids: answer a batch insert with one id per record; False answers
        ``{"inserted": n}`` instead, as a server whose batch answer cannot be matched to the input
        would. Settable.
    :param query_dates_order: how ``queryDates.php`` lists a window's records, whose order the vendor
        does not document: ``"ascending"`` (default: the oldest ``limit`` records, oldest first),
        ``"descending"`` (the newest ``limit``, newest first) or ``"random"`` (any ``limit`` of them,
        in any order), so that a client is tested against each. Settable.
    :param unique_fields: field labels per module whose values must not repeat, e.g.
        ``{"contacts": ["Email"]}``.
    :param log_size: how many recent requests :attr:`request_log` keeps; counters are exact anyway.
    :param modules: the modules that exist; a request naming another one is refused with 400 THE
        MODULE DOES NOT EXIST, so an offline test catches a misspelt module. None: every module exists.
    :param utc_offset_hours: the CRM's wall clock is UTC plus this (the record dates, queryDates'
        bounds, the daily restart); tests of clients must not assume the worker's clock. See :meth:`crm_now`.
    :param quota_period: None: the quota restarts at midnight on the CRM's clock, and
        ``hours_to_restart_count`` is the whole hours until then, rounded up. Seconds: every token's
        count restarts every ``quota_period`` seconds from :meth:`start`, and ``hours_to_restart_count``
        is the time left in the period in hours, rounded up to 6 decimals (2 s: 0.000556).
    :raises ValueError: no token, a bad offset or period, unique fields of a module not in ``modules``,
        an unknown ``query_dates_order``.
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
        query_dates_order: str = "ascending",
        unique_fields: Mapping[str, Iterable[str]] | None = None,
        log_size: int = 10_000,
        modules: Iterable[str] | None = None,
        utc_offset_hours: float = _COLOMBIA_UTC_OFFSET,
        quota_period: float | None = None,
    ) -> None:
        if tokens is None:
            tokens = {DEMO_TOKEN: DEMO_OPERATION}
        items = [FakeToken(*item) for item in tokens.items()] if isinstance(tokens, Mapping) else tokens
        self._clock = FakeClock(utc_offset_hours)
        restart = MidnightRestart(self._clock) if quota_period is None else PeriodicRestart(quota_period)
        self._accounts = Accounts(items, quota, restart)
        unique_fields = unique_fields or {}
        self._store = RecordStore(unique_fields, self._clock)
        self._endpoints = Endpoints(
            self._store,
            self._accounts,
            modules,
            insert_many_ids=insert_many_ids,
            query_dates_order=query_dates_order,
        )
        strays = sorted(module for module in unique_fields if not self._endpoints.has_module(module))
        if strays:
            raise ValueError(f"unique_fields name modules that are not in modules: {strays}")
        super().__init__()
        self._log = RequestLog(log_size)
        self._handling = RequestHandling(self._accounts, self._endpoints, self._faults, self._log)
        self.host = host
        self.port = port
        self.latency = latency
        self._http: HTTPServer | None = None

    # Life cycle

    def start(self) -> FakeWolkvoxServer:
        """Listen and serve in a background thread; return self. A ``quota_period`` starts now.

        :raises RuntimeError: the server is already running.
        :raises OSError: the port cannot be bound.
        """
        if self._http is not None:
            raise RuntimeError("the fake wolkvox server is already running")
        self._handling.stopping.clear()
        self._http = HTTPServer((self.host, self.port), self._handling)
        # Kept for a restart, so that a connection configured with the URL stays valid.
        self.port = self._http.server_address[1]
        self._accounts.begin()
        self._http.start()
        return self

    def stop(self) -> None:
        """Stop serving; close the listening socket and every connection, and join every thread.

        Requests waiting out their latency or a SLOW delay are cut short, and stores a
        DROP_THEN_STORE fault put off never happen. Does nothing when stopped.
        """
        if self._http is None:
            return
        self._handling.stopping.set()
        self._http.stop()
        self._handling.join_late_stores()
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

    def airflow_connection(self, token: str | None = None, *, timeout: float | None = None) -> str:
        """Return the JSON value of an ``AIRFLOW_CONN_*`` variable that points Airflow at this server.

        :param token: one of the configured tokens; default the first. The connection's
            ``operation`` extra is the token's operation.
        :param timeout: the connection's ``timeout`` extra, if any: a test that loses answers on
            purpose sets a short one, since a load waits that long before it looks their records up.
        """
        token = self._accounts.default_token if token is None else token
        extra: dict[str, object] = {"operation": self._accounts.operation(token)}
        if timeout is not None:
            extra["timeout"] = timeout
        return json.dumps({"conn_type": "wolkvox", "host": self.url, "password": token, "extra": extra})

    @property
    def latency(self) -> float:
        """Seconds from the admission of a request to its answer (see the parameter)."""
        return self._handling.latency

    @latency.setter
    def latency(self, value: float) -> None:
        self._handling.latency = value

    @property
    def insert_many_ids(self) -> bool:
        """Whether a batch insert is answered with one id per record (see the parameter)."""
        return self._endpoints.insert_many_ids

    @insert_many_ids.setter
    def insert_many_ids(self, value: bool) -> None:
        self._endpoints.insert_many_ids = value

    @property
    def query_dates_order(self) -> str:
        """How ``queryDates.php`` lists a window's records (see the parameter).

        :raises ValueError: set to a value other than ``"ascending"``, ``"descending"``, ``"random"``.
        """
        return self._endpoints.query_dates_order

    @query_dates_order.setter
    def query_dates_order(self, value: str) -> None:
        self._endpoints.query_dates_order = value

    def crm_now(self) -> datetime:
        """Return the CRM's time now (naive), on which record dates and queryDates' bounds are."""
        return self._clock.now()

    # Records

    def records(self, module: str, operation: str | None = None) -> list[Record]:
        """Return copies of the records stored in ``module``, in the order they were stored.

        :param operation: default the first token's operation.
        """
        return self._store.records(self._operation(operation), module)

    def record_count(self, module: str, operation: str | None = None) -> int:
        """Return how many records ``module`` holds, without copying them (for large loads)."""
        return self._store.count(self._operation(operation), module)

    def add_records(
        self,
        module: str,
        records: Iterable[Mapping[str, Any]],
        *,
        created_at: datetime | Sequence[datetime] | None = None,
        operation: str | None = None,
    ) -> list[str]:
        """Store copies of ``records`` directly, to seed a test or benchmark: no quota, no request log.

        They are validated as inserts are and get the CRM's metadata, all or none.

        :param created_at: their creation time on the CRM's clock (an aware time is converted): one
            for all, one per record, or None for now. Their modification time is the same.
        :param operation: default the first token's operation.
        :return: the new ids, in input order.
        :raises ValueError: an unknown operation or module, as many times as records, or an invalid
            record (named by its index).
        """
        operation = self._operation(operation)
        if operation not in self._accounts.operations:
            raise ValueError(f"no token of operation {operation!r}")
        if not self._endpoints.has_module(module):
            raise ValueError(f"module {module!r} is not one of the server's modules")
        copies = [dict(record) if isinstance(record, Mapping) else record for record in records]
        times = None
        if isinstance(created_at, datetime):
            times = [self._clock.stamp(created_at)] * len(copies)
        elif created_at is not None:
            times = [self._clock.stamp(moment) for moment in created_at]
            if len(times) != len(copies):
                raise ValueError(f"created_at holds {len(times)} times for {len(copies)} records")
        return self._store.insert(operation, module, copies, numbered=True, created_at=times)

    # Requests and quota

    @property
    def request_log(self) -> list[RequestLogEntry]:
        """The most recent requests (up to ``log_size``), in the order they were answered."""
        return self._log.entries()

    def calls(self, path: str | None = None) -> int:
        """Return how many requests arrived on ``path`` (any path when None), refused ones included."""
        return self._log.calls(path)

    def quota_used(self, token: str) -> int:
        """Return how many of ``token``'s calls counted against its quota in the current period."""
        return self._accounts.used(token)

    def max_in_flight(self, token: str) -> int:
        """Return the most admitted requests ``token`` had in flight at once."""
        return self._accounts.max_in_flight(token)

    def stats(self) -> dict[str, Any]:
        """Return the counts since the start (or :meth:`reset`), as ``GET /__fake__/stats`` answers them.

        ``endpoints``: per path called, ``calls`` (as :meth:`calls`), how many were ``refused`` (an
        HTTP error status) and how many ``unanswered`` (the connection closed without an answer);
        ``refusals``: the error answers by ``status`` and ``msg`` (``"HTTP <status>"`` when the answer
        had none), with their ``count``, the most frequent first; ``tokens``: per token, in the
        order given, its ``operation``, ``quota``, ``quota_used`` in the current period and
        ``max_in_flight`` (never the token itself). The fake-only paths are not counted.
        """
        return self._handling.stats()

    def restart_quota(self) -> None:
        """Restart every token's used count now, as the CRM's daily restart does."""
        self._accounts.restart()

    def reset(self) -> None:
        """Forget records, counters, the request log and faults; requests in flight stay counted."""
        self._store.clear()
        self._faults.clear()
        self._log.clear()
        self._accounts.reset()

    def _operation(self, operation: str | None) -> str:
        return self._accounts.default_operation if operation is None else operation
