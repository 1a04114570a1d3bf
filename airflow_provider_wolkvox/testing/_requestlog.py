"""What the fake remembers of the requests it answered, and the debug line it logs for each."""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter, deque
from dataclasses import dataclass, field
from typing import Any

from airflow_provider_wolkvox.testing._faults import Fault
from airflow_provider_wolkvox.testing._wire import Reply

#: The logger of the fake's request lines (DEBUG level).
LOGGER_NAME = "airflow_provider_wolkvox.testing"
_log = logging.getLogger(LOGGER_NAME)
# Answers from this status on are refusals (or the server's own errors) in the counts.
_HTTP_ERROR = 400


@dataclass(frozen=True)
class RequestLogEntry:
    """One request as the server saw it. It never holds the token: ``operation`` stands for it.

    :param method: the HTTP method.
    :param path: the path, without the query string.
    :param status: the HTTP status answered; None when the connection was closed without an answer.
    :param operation: the operation of the request's token; None when the token was missing or unknown.
    :param module: the body's ``module``, once read and valid.
    :param record_count: how many records the request carried (or named, for update and delete).
    :param fault: the injected fault, if any.
    :param ids: the ids of the records the request stored, updated or deleted.
    :param msg: the ``msg`` of the fake's own error answer (refusals), else None.
    """

    method: str
    path: str
    status: int | None
    operation: str | None
    module: str | None
    record_count: int
    fault: Fault | None
    ids: tuple[str, ...]
    msg: str | None = None


@dataclass
class LoggedRequest:
    """What the request log keeps of a request, gathered while it is handled."""

    method: str
    path: str
    operation: str | None
    module: str | None = None
    record_count: int = 0
    fault: Fault | None = None
    ids: tuple[str, ...] = ()
    started: float = field(default_factory=time.monotonic)

    def entry(self, reply: Reply | None) -> RequestLogEntry:
        return RequestLogEntry(
            self.method,
            self.path,
            None if reply is None else reply.status,
            self.operation,
            self.module,
            self.record_count,
            self.fault,
            self.ids,
            None if reply is None else reply.msg,
        )


class RequestLog:
    """The most recent requests, exact counts per path, and a DEBUG line per request; thread-safe.

    :param size: how many recent requests to keep.
    """

    def __init__(self, size: int) -> None:
        self._lock = threading.Lock()
        self._entries: deque[RequestLogEntry] = deque(maxlen=size)
        self._calls: Counter[str] = Counter()
        # Exact counts, whatever the size: error answers per path and per (status, msg), and
        # requests closed without an answer per path.
        self._refused: Counter[str] = Counter()
        self._refusals: Counter[tuple[int, str]] = Counter()
        self._unanswered: Counter[str] = Counter()

    def add(self, exchange: LoggedRequest, reply: Reply | None) -> None:
        """Log a request answered with ``reply`` (None: closed without an answer)."""
        entry = exchange.entry(reply)
        with self._lock:
            self._calls[entry.path] += 1
            self._entries.append(entry)
            if reply is None:
                self._unanswered[entry.path] += 1
            elif reply.status >= _HTTP_ERROR:
                self._refused[entry.path] += 1
                self._refusals[reply.status, reply.msg or f"HTTP {reply.status}"] += 1
        # Names and counts only: never the token, nor a value of the request's fields.
        _log.debug(
            "%s %s -> %s module=%s records=%d fault=%s %.1f ms",
            entry.method,
            entry.path,
            "no answer" if entry.status is None else entry.status,
            entry.module,
            entry.record_count,
            None if entry.fault is None else entry.fault.name,
            (time.monotonic() - exchange.started) * 1000,
        )

    def entries(self) -> list[RequestLogEntry]:
        with self._lock:
            return list(self._entries)

    def calls(self, path: str | None) -> int:
        """Return how many requests arrived on ``path`` (any path when None)."""
        with self._lock:
            return self._calls.total() if path is None else self._calls[path]

    def endpoints(self) -> dict[str, dict[str, int]]:
        """Return, per path that was called, its calls and how many were refused or left unanswered."""
        with self._lock:
            return {
                path: {
                    "calls": calls,
                    "refused": self._refused[path],
                    "unanswered": self._unanswered[path],
                }
                for path, calls in sorted(self._calls.items())
            }

    def refusals(self) -> list[dict[str, Any]]:
        """Return the error answers by status and ``msg`` (or ``HTTP <status>``), the most frequent first."""
        with self._lock:
            counted = sorted(self._refusals.items(), key=lambda item: (-item[1], item[0]))
        return [{"status": status, "msg": msg, "count": count} for (status, msg), count in counted]

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
            self._calls.clear()
            self._refused.clear()
            self._refusals.clear()
            self._unanswered.clear()
