"""The handling of one request: steps 1 to 11 of :mod:`airflow_provider_wolkvox.testing.server`."""

from __future__ import annotations

import threading
import time
from typing import Any

from airflow_provider_wolkvox.api import (
    ERROR_BAD_REQUEST,
    ERROR_FORBIDDEN,
    ERROR_UNAUTHORIZED,
    MSG_INVALID_TOKEN,
    MSG_MISSING_TOKEN,
    MSG_UNKNOWN_API,
    TOKEN_HEADER,
)
from airflow_provider_wolkvox.testing._accounts import Account, Accounts
from airflow_provider_wolkvox.testing._endpoints import RECORDS_PATH, STATS_PATH, Endpoints, method_refusal
from airflow_provider_wolkvox.testing._faults import Fault, FaultSchedule, Injection
from airflow_provider_wolkvox.testing._requestlog import LoggedRequest, RequestLog
from airflow_provider_wolkvox.testing._wire import Refusal, Reply, json_reply

_TOKEN_KEY = TOKEN_HEADER.lower()


class RequestHandling:
    """Answers each request (the transport's handler): admission, fault, endpoint, latency, log.

    :param accounts: the tokens' accounts.
    :param endpoints: the endpoints by path.
    :param faults: the faults to inject.
    :param log: where each request is logged.
    """

    def __init__(
        self, accounts: Accounts, endpoints: Endpoints, faults: FaultSchedule, log: RequestLog
    ) -> None:
        self._accounts = accounts
        self._endpoints = endpoints
        self._faults = faults
        self._log = log
        #: Seconds from a request's admission to its answer (the server's ``latency``).
        self.latency = 0.0
        #: Set while the server stops: cuts the waits for latency and SLOW faults short.
        self.stopping = threading.Event()
        self._late: list[threading.Thread] = []
        self._late_lock = threading.Lock()

    def __call__(self, method: str, target: str, headers: dict[str, str], body: bytes) -> Reply | None:
        """Handle one request; return its answer, or None to close the connection without one."""
        path, _, query = target.partition("?")
        if path == RECORDS_PATH:
            return self._endpoints.list_records(method, query)
        if path == STATS_PATH:
            return json_reply(200, self.stats()) if method == "GET" else method_refusal("GET").reply
        token = headers.get(_TOKEN_KEY) or None
        account = self._accounts.get(token)
        exchange = LoggedRequest(method, path, None if account is None else account.operation)
        reply: Reply | None
        try:
            admitted, injection = self._admit(method, path, token, account)
        except Refusal as refusal:
            reply = refusal.reply
        else:
            if injection is not None and injection.fault is Fault.DROP_THEN_STORE:
                exchange.fault = injection.fault
                self._store_later(injection, admitted, path, query, body, exchange)
                return None
            try:
                admitted_at = time.monotonic()
                exchange.fault = None if injection is None else injection.fault
                reply = self._process(injection, admitted, path, query, body, exchange)
                # The latency is the whole time the server takes, its own processing included.
                delay = self.latency - (time.monotonic() - admitted_at)
                delay = max(delay, 0.0) + (0.0 if injection is None else injection.delay)
                if delay > 0:
                    self.stopping.wait(delay)
            finally:
                self._accounts.release(admitted)
        # Logged before the answer is sent, so that a client that got its answer finds it logged.
        self._log.add(exchange, reply)
        return reply

    def stats(self) -> dict[str, Any]:
        """Return the counts of :meth:`FakeWolkvoxServer.stats`."""
        return {
            "endpoints": self._log.endpoints(),
            "refusals": self._log.refusals(),
            "tokens": self._accounts.summary(),
        }

    def _store_later(
        self,
        injection: Injection,
        account: Account,
        path: str,
        query: str,
        body: bytes,
        exchange: LoggedRequest,
    ) -> None:
        """Process the request once its delay has passed, in the background, then log it; the account's
        slot stays taken until then (the request is still in the server's hands). Not at all if the
        server stops first."""

        def store() -> None:
            try:
                if not self.stopping.wait(injection.delay):
                    self._process(None, account, path, query, body, exchange)
            finally:
                self._accounts.release(account)
                self._log.add(exchange, None)

        thread = threading.Thread(target=store, name="fake-wolkvox-late-store", daemon=True)
        with self._late_lock:
            self._late = [late for late in self._late if late.is_alive()] + [thread]
        thread.start()

    def join_late_stores(self) -> None:
        """Wait for the late stores' threads (after ``stopping`` is set, they end at once)."""
        with self._late_lock:
            late, self._late = self._late, []
        for thread in late:
            thread.join()

    def _admit(
        self, method: str, path: str, token: str | None, account: Account | None
    ) -> tuple[Account, Injection | None]:
        """Run steps 2 to 8; return the admitted account and its fault."""
        route = self._endpoints.routes.get(path)
        if route is None:
            raise Refusal(400, ERROR_BAD_REQUEST, MSG_UNKNOWN_API)
        if method != route[0]:
            raise method_refusal(route[0])
        if token is None:
            raise Refusal(401, ERROR_UNAUTHORIZED, MSG_MISSING_TOKEN)
        if account is None:
            raise Refusal(403, ERROR_FORBIDDEN, MSG_INVALID_TOKEN)
        return account, self._accounts.admit(account, lambda: self._faults.draw(path))

    def _process(
        self,
        injection: Injection | None,
        account: Account,
        path: str,
        query: str,
        body: bytes,
        exchange: LoggedRequest,
    ) -> Reply | None:
        """Run the endpoint unless the fault prevents it; return the answer the fault leaves."""
        if injection is not None and not injection.fault.stores:
            return injection.reply
        try:
            reply = self._endpoints.routes[path][1](account, query, body, exchange)
        except Refusal as refusal:
            reply = refusal.reply
        if injection is None or injection.fault is Fault.SLOW:
            return reply
        return injection.reply
