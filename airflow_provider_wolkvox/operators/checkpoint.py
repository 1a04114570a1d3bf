"""The bulk load's journal in Airflow's task state store (Airflow 3.3+), for crash-safe retries.

Each chunk of a load gets one key holding an entry per record: "sending" before the request goes
out, then its outcome. A retried try reads them back, reuses what is created and looks up what was
in flight. Notes belong to a generation: a try that succeeds starts a new one, so a later run of
the task (cleared by hand) sends its records afresh instead of finding them done.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

from airflow_provider_wolkvox.client.bulk import JournalEntry

KEY_PREFIX = "wolkvox_load"
GENERATION_KEY = f"{KEY_PREFIX}/generation"


class TaskStateJournal:
    """A :class:`~airflow_provider_wolkvox.client.bulk.LoadJournal` on ``context["task_state_store"]``."""

    def __init__(self, store: Any) -> None:
        self._store = store
        # One store call at a time: the in-process comms of dag.test() are not thread-safe.
        self._lock = threading.Lock()
        with self._lock:
            self._generation = int(store.get(GENERATION_KEY) or 0)

    def recall(self, number: int) -> list[JournalEntry] | None:
        with self._lock:
            rows = self._store.get(self._key(number))
        if not isinstance(rows, list):
            return None
        return [JournalEntry(*row) for row in rows]

    def note(self, number: int, entries: list[JournalEntry]) -> None:
        rows = [[e.fingerprint, e.status, e.wolkvox_id, e.error, e.msg] for e in entries]
        with self._lock:
            self._store.set(self._key(number), rows)

    def finish(self) -> None:
        """The load is done: later tries of this task start afresh."""
        with self._lock:
            self._store.set(GENERATION_KEY, self._generation + 1)

    def _key(self, number: int) -> str:
        return f"{KEY_PREFIX}/{self._generation}/{number}"


def task_state_journal(context: Any, log: logging.Logger | Any) -> TaskStateJournal | None:
    """The journal of this task try, or None (logged) where Airflow offers no task state store."""
    store = context.get("task_state_store") if hasattr(context, "get") else None
    if store is None:
        log.info(
            "No task state store (it needs Airflow 3.3+): crash recovery is off, so a retry of this "
            "task would send its records again."
        )
        return None
    return TaskStateJournal(store)
