"""The bulk load's journal in Airflow's task state store (Airflow 3.3+), for crash-safe retries.

Each chunk of a load gets one key: "sending" before its request goes out, then its results. A
retried task reads them back, skips what is settled and treats what was in flight as of unknown
outcome. Airflow clears the store when the task succeeds.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

from airflow_provider_wolkvox.client import RecordResult, RecordStatus
from airflow_provider_wolkvox.client.bulk import IN_DOUBT, LoadJournal

KEY_PREFIX = "wolkvox_load"


class TaskStateJournal:
    """A :class:`~airflow_provider_wolkvox.client.bulk.LoadJournal` on ``context["task_state_store"]``."""

    def __init__(self, store: Any) -> None:
        self._store = store
        # One store call at a time: the in-process comms of dag.test() are not thread-safe.
        self._lock = threading.Lock()

    def recall(self, number: int, fingerprint: str) -> list[RecordResult] | str | None:
        with self._lock:
            note = self._store.get(_key(number))
        if not isinstance(note, dict) or note.get("fingerprint") != fingerprint:
            return None
        if note.get("state") == "sending":
            return IN_DOUBT
        return [
            RecordResult(index, RecordStatus(status), wolkvox_id, error, msg)
            for index, status, wolkvox_id, error, msg in note["results"]
        ]

    def sending(self, number: int, fingerprint: str) -> None:
        self._write(number, {"fingerprint": fingerprint, "state": "sending"})

    def settled(self, number: int, fingerprint: str, results: list[RecordResult]) -> None:
        rows = [[r.index, r.status.value, r.wolkvox_id, r.error, r.msg] for r in results]
        self._write(number, {"fingerprint": fingerprint, "state": "settled", "results": rows})

    def _write(self, number: int, note: dict[str, Any]) -> None:
        with self._lock:
            self._store.set(_key(number), note)


def task_state_journal(context: Any, log: logging.Logger | Any) -> LoadJournal | None:
    """The journal of this task try, or None (logged) where Airflow offers no task state store."""
    store = context.get("task_state_store") if hasattr(context, "get") else None
    if store is None:
        log.info(
            "No task state store (it needs Airflow 3.3+): crash recovery is off, so a retry of this "
            "task would send its records again."
        )
        return None
    return TaskStateJournal(store)


def _key(number: int) -> str:
    return f"{KEY_PREFIX}/{number}"
