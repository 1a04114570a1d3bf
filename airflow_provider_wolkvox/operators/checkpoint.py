"""The load journal in Airflow's task state store (Airflow 3.3+), for loads that survive re-runs.

One journal per task instance (DAG run, task, map index): the scope of ``context["task_state_store"]``.
Airflow keeps it across retries and clears of the task; nothing here ever starts it afresh. To
send a task's records again on purpose, clear its state first (docs/retries-and-crash-safety.md).
"""

from __future__ import annotations

import logging
import threading
from typing import Any

from airflow_provider_wolkvox.loads import Journal


class _SerialStore:
    """One store call at a time: the in-process comms of ``dag.test()`` are not thread-safe."""

    def __init__(self, store: Any) -> None:
        self._store = store
        self._lock = threading.Lock()

    def get(self, key: str, default: Any = None) -> Any:
        with self._lock:
            return self._store.get(key, default)

    def set(self, key: str, value: Any) -> None:
        with self._lock:
            self._store.set(key, value)


class MemoryStore(dict[str, Any]):
    """The journal's notes in memory, where Airflow offers no task state store (Airflow 2.11): a load
    waiting for the quota carries them through its deferral."""

    def set(self, key: str, value: Any) -> None:
        self[key] = value


def task_state_journal(
    context: Any, log: logging.Logger | Any, *, fallback: MemoryStore | None = None
) -> Journal | None:
    """The journal of this task instance, or None (logged) where Airflow offers no task state store.

    :param fallback: where to keep the notes without a task state store, if anywhere.
    """
    store = context.get("task_state_store") if hasattr(context, "get") else None
    if store is not None:
        return Journal(_SerialStore(store))
    if fallback is not None:
        return Journal(_SerialStore(fallback))
    log.info(
        "No task state store (it needs Airflow 3.3+): crash recovery is off, so a retry of this "
        "task would send its records again."
    )
    return None
