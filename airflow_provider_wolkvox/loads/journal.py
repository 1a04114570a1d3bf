"""The load journal: what became of each record, kept where a later try of the task finds it.

The journal is a run of numbered notes in a key-value store (Airflow's task state store, one per
task instance). A note is written just before a request goes out, naming its records by content key
as "sending" with the send time; once the request settles, the same note is replaced by the
outcomes. Records settled without a request of their own (an earlier try's records found in the
CRM) get a note of their own. Notes are numbered without gaps, so a later try reads them all back
in order; a record's latest note is what is known of it. Stored value of note ``n`` under
``wolkvox_load/note/<n>``::

    {"sent_at": 1764624000.5, "answered_at": 1764624000.7,
     "records": [["<content key>", "created", "<wolkvox_id>"],
                 ["<content key>", "rejected", null, "BAD REQUEST", "<msg>"]]}

``sent_at``/``answered_at`` are the worker's epoch seconds (``answered_at`` null until settled).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Protocol

from airflow_provider_wolkvox.loads.results import RecordResult, RecordStatus

KEY_PREFIX = "wolkvox_load/note/"
#: The status of a record whose request is on its way (or was, when a try died).
SENDING = "sending"
# Outcomes that a later try sends again: nothing of these records is in the CRM.
SEND_AGAIN = frozenset({RecordStatus.REJECTED.value, RecordStatus.NOT_SENT.value})
# Outcomes that a later try settles before sending: the record may be in the CRM.
IN_DOUBT = frozenset({SENDING, RecordStatus.OUTCOME_UNKNOWN.value})


class StateStore(Protocol):
    """A JSON key-value store, such as ``context["task_state_store"]``."""

    def get(self, key: str, default: Any = None) -> Any: ...

    def set(self, key: str, value: Any) -> None: ...


@dataclass(frozen=True, slots=True)
class Recalled:
    """What an earlier try noted of one record.

    :param status: a ``RecordStatus`` value, or ``SENDING``.
    :param sent_at: when its last request went out (worker clock, epoch seconds).
    :param answered_at: when that request settled; None if the try died first.
    """

    status: str
    sent_at: float
    answered_at: float | None = None
    wolkvox_id: str | None = None
    error: str | None = None
    msg: str | None = None

    def result(self, index: int) -> RecordResult:
        return RecordResult(index, RecordStatus(self.status), self.wolkvox_id, self.error, self.msg)


class Journal:
    """Notes of a load in ``store``; the notes of earlier tries are read when it is made.

    Thread-safe: the sending threads write notes, one store call at a time.
    """

    def __init__(self, store: StateStore) -> None:
        self._store = store
        self._lock = threading.Lock()
        self._known: dict[str, Recalled] = {}
        self._count = 0
        while (note := store.get(f"{KEY_PREFIX}{self._count}")) is not None:
            self._read(note)
            self._count += 1

    @property
    def notes(self) -> int:
        """Notes in the store, earlier tries' included."""
        return self._count

    def earlier(self) -> dict[str, int]:
        """How many records the notes of earlier tries leave in each state (a ``RecordStatus`` value,
        or ``SENDING``), by each record's latest note; empty on a first try."""
        counts: dict[str, int] = {}
        for note in self._known.values():
            counts[note.status] = counts.get(note.status, 0) + 1
        return counts

    def recall(self, key: str) -> Recalled | None:
        """What the notes say of the record with content ``key``, or None when they never named it."""
        return self._known.get(key)

    def sending(self, keys: Iterable[str]) -> tuple[int, float]:
        """Note that a request carrying ``keys`` goes out now; return the note's number and the time."""
        sent_at = time.time()
        with self._lock:
            number = self._count
            # Written before the count moves on, so that the notes in the store never have a gap.
            self._store.set(_key(number), {"sent_at": sent_at, "records": [[key, SENDING] for key in keys]})
            self._count += 1
        return number, sent_at

    def settled(self, number: int | None, keyed: Iterable[tuple[str, RecordResult]], sent_at: float) -> None:
        """Note outcomes: those of request note ``number``, or (None) a new note for records settled
        otherwise; ``sent_at`` is when their last request went out."""
        rows = [_row(key, result) for key, result in keyed]
        with self._lock:
            new = number is None
            number = self._count if number is None else number
            self._store.set(_key(number), {"sent_at": sent_at, "answered_at": time.time(), "records": rows})
            if new:  # counted once written, so that a failed write leaves no gap in the notes
                self._count += 1

    def _read(self, note: Any) -> None:
        if not isinstance(note, dict):
            return
        sent_at, answered_at = float(note.get("sent_at") or 0.0), note.get("answered_at")
        for row in note.get("records") or ():
            key, status, *rest = row
            wolkvox_id, error, msg = [*rest, None, None, None][:3]
            self._known[key] = Recalled(status, sent_at, answered_at, wolkvox_id, error, msg)


def _key(number: int) -> str:
    return f"{KEY_PREFIX}{number}"


def _row(key: str, result: RecordResult) -> list[Any]:
    row: list[Any] = [key, result.status.value, result.wolkvox_id, result.error, result.msg]
    while row[-1] is None:
        row.pop()
    return row
