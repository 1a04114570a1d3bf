"""What a sync knows of each key, in a SQLite file of its own, so that a million keys stay out of memory.

Four tables: ``state`` (key → wolkvox_id and the hashes of the values last written, from the sync
state file and then from this run; ``gone`` once a mirror deleted its record), ``inputs`` (the keys
of this run's input, to refuse a key given twice), ``crm`` (key → the CRM records found holding it,
by look-up or scan) and ``doomed`` (the tracked keys a mirror sync deletes, with their records' ids).
"""

from __future__ import annotations

import json
import os
import sqlite3
import tempfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

_SCHEMA = """
CREATE TABLE state (
    key TEXT PRIMARY KEY, id TEXT NOT NULL, hashes TEXT, written INTEGER NOT NULL DEFAULT 0,
    gone INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE inputs (key TEXT PRIMARY KEY, label TEXT NOT NULL, looked_up INTEGER);
CREATE TABLE crm (key TEXT NOT NULL, id TEXT NOT NULL, record TEXT NOT NULL, PRIMARY KEY (key, id));
CREATE TABLE doomed (key TEXT PRIMARY KEY, id TEXT NOT NULL);
CREATE INDEX crm_id ON crm (id);
CREATE INDEX state_id ON state (id);
"""
# The tracked keys absent from the input.
_ABSENT = "FROM state WHERE key NOT IN (SELECT key FROM inputs)"

# The hashes a key keeps when noted again: the old ones when the new are not known for the same record.
_KEPT_HASHES = "(CASE WHEN excluded.hashes IS NULL AND id = excluded.id THEN hashes ELSE excluded.hashes END)"


@dataclass(frozen=True)
class Known:
    """A key's entry in the sync state: its record's id and the hashes of the values last written."""

    wolkvox_id: str
    hashes: dict[str, str] | None


class SyncIndex:
    """The sync's working index; one per run, used from one thread, removed by :meth:`close`."""

    def __init__(self) -> None:
        handle, self._path = tempfile.mkstemp(prefix="wolkvox-sync-", suffix=".sqlite")
        os.close(handle)
        # Used by one thread at a time; closed by whichever thread collects the sync last.
        self._db = sqlite3.connect(self._path, check_same_thread=False)
        # A scratch file: nothing to recover after a crash, so no journal and no syncs to disk.
        self._db.executescript("PRAGMA journal_mode = OFF; PRAGMA synchronous = OFF;" + _SCHEMA)

    def close(self) -> None:
        self._db.close()
        os.unlink(self._path)

    # The sync state

    def load_state(self, rows: Iterable[tuple[str, str, dict[str, str] | None]]) -> int:
        """Add (key, wolkvox_id, hashes) rows; return how many."""
        with self._db:
            cursor = self._db.executemany(
                "INSERT OR REPLACE INTO state (key, id, hashes) VALUES (?, ?, ?)",
                ((key, wolkvox_id, _dump(hashes)) for key, wolkvox_id, hashes in rows),
            )
        return cursor.rowcount

    def known(self, key: str) -> Known | None:
        row = self._db.execute("SELECT id, hashes FROM state WHERE key = ?", (key,)).fetchone()
        return None if row is None else Known(row[0], _load(row[1]))

    def keep(self, rows: Iterable[tuple[str, str, dict[str, str] | None]]) -> None:
        """Note (key, wolkvox_id, hashes) as the state the CRM now holds; hashes None keeps the old ones.

        A key new to the state, or whose entry this changes, is this run's when the state is written
        (:meth:`state_entries`)."""
        # Every expression of the SET reads the row as it was before the update.
        with self._db:
            self._db.executemany(
                "INSERT INTO state (key, id, hashes, written) VALUES (?, ?, ?, 1) "
                "ON CONFLICT (key) DO UPDATE SET id = excluded.id, "
                f"hashes = {_KEPT_HASHES}, "
                f"written = written OR id IS NOT excluded.id OR hashes IS NOT {_KEPT_HASHES}",
                ((key, wolkvox_id, _dump(hashes)) for key, wolkvox_id, hashes in rows),
            )

    def changed(self) -> bool:
        """True when this run noted a key new to the state, or changed one's entry."""
        return self._db.execute("SELECT 1 FROM state WHERE written = 1 LIMIT 1").fetchone() is not None

    def state_rows(self) -> Iterator[tuple[str, str, dict[str, str] | None]]:
        for key, wolkvox_id, hashes in self._db.execute("SELECT key, id, hashes FROM state ORDER BY key"):
            yield key, wolkvox_id, _load(hashes)

    def state_entries(self) -> Iterator[tuple[str, str | None, dict[str, str] | None, bool]]:
        """(key, wolkvox_id, hashes, noted by this run) of every key, in ascending key order: the
        entries the sync state is written from (``written`` False: only read from the state; the
        wolkvox_id None: a key this run deleted, for the state to forget)."""
        rows = self._db.execute("SELECT key, id, hashes, written, gone FROM state ORDER BY key")
        for key, wolkvox_id, hashes, written, gone in rows:
            yield key, None if gone else wolkvox_id, None if gone else _load(hashes), bool(written)

    def tracked(self) -> int:
        """How many keys the sync state tracks."""
        return int(self._db.execute("SELECT count(*) FROM state").fetchone()[0])

    def tracked_absent(self) -> int:
        """How many keys the sync state tracks that the input does not hold."""
        return int(self._db.execute(f"SELECT count(*) {_ABSENT}").fetchone()[0])

    def doom(self) -> int:
        """Choose the deletes of a mirror sync, once its keys are looked up: the tracked keys absent
        from the input, less those whose record is an input key's (by the state or a look-up: a record
        whose key was changed in the CRM is kept); return how many."""
        with self._db:
            self._db.execute("DELETE FROM doomed")
            self._db.execute(
                f"INSERT INTO doomed SELECT key, id {_ABSENT} "
                "AND id NOT IN (SELECT id FROM state WHERE key IN (SELECT key FROM inputs)) "
                "AND id NOT IN (SELECT id FROM crm)"
            )
        return int(self._db.execute("SELECT count(*) FROM doomed").fetchone()[0])

    def doomed(self, size: int) -> Iterator[list[tuple[str, tuple[str, ...]]]]:
        """The deletes chosen by :meth:`doom` in batches of ``size`` distinct ids: (id, its keys) each."""
        batch: list[tuple[str, tuple[str, ...]]] = []
        rows = self._db.execute("SELECT id, json_group_array(key) FROM doomed GROUP BY id ORDER BY id")
        for wolkvox_id, keys in rows.fetchall():
            batch.append((wolkvox_id, tuple(sorted(json.loads(keys)))))
            if len(batch) == size:
                yield batch
                batch = []
        if batch:
            yield batch

    def doomed_ids(self) -> int:
        """How many distinct records the deletes chosen by :meth:`doom` name."""
        return int(self._db.execute("SELECT count(DISTINCT id) FROM doomed").fetchone()[0])

    def forget(self, keys: Iterable[str]) -> None:
        """Note keys whose record is gone from the CRM: the sync state forgets them."""
        with self._db:
            self._db.executemany("UPDATE state SET gone = 1, written = 1 WHERE key = ?", ((k,) for k in keys))

    # The input's keys

    def add_input(self, key: str, label: str, *, look_up: bool) -> str | None:
        """Note an input key (its identity, ``compare.key_text``); return the label of the earlier
        record holding it, if one did."""
        try:
            with self._db:
                self._db.execute("INSERT INTO inputs VALUES (?, ?, ?)", (key, label, int(look_up)))
        except sqlite3.IntegrityError:
            row = self._db.execute("SELECT label FROM inputs WHERE key = ?", (key,)).fetchone()
            return str(row[0])
        return None

    def to_look_up(self, *, unfound_only: bool = False) -> Iterator[str]:
        """Every input key to look up in the CRM, in input order.

        :param unfound_only: only the keys no CRM record was found holding yet.
        """
        unfound = " AND key NOT IN (SELECT key FROM crm)" if unfound_only else ""
        rows = self._db.execute(
            f"SELECT key FROM inputs WHERE looked_up = 1{unfound} ORDER BY rowid"
        ).fetchall()
        for (key,) in rows:
            yield key

    def looks_up(self, key: str) -> bool:
        """True when ``key`` is an input key looked up in the CRM (not known from the state)."""
        return (
            self._db.execute("SELECT 1 FROM inputs WHERE key = ? AND looked_up = 1", (key,)).fetchone()
            is not None
        )

    # What the CRM holds

    def found(self, key: str, records: Iterable[dict[str, Any]]) -> None:
        """Note CRM records holding ``key`` (each once, by id)."""
        with self._db:
            self._db.executemany(
                "INSERT OR IGNORE INTO crm VALUES (?, ?, ?)",
                ((key, str(record["wolkvox_id"]), json.dumps(record)) for record in records),
            )

    def holders(self, key: str) -> list[dict[str, Any]]:
        """The CRM records found holding ``key``, oldest noted first."""
        rows = self._db.execute("SELECT record FROM crm WHERE key = ? ORDER BY rowid", (key,))
        return [json.loads(record) for (record,) in rows]


def _dump(hashes: dict[str, str] | None) -> str | None:
    return None if hashes is None else json.dumps(hashes, separators=(",", ":"))


def _load(text: str | None) -> dict[str, str] | None:
    return None if text is None else json.loads(text)
