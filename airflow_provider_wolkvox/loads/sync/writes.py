"""A sync's writes: creates in ``insertMany.php`` batches, updates one ``update.php`` call each, a mirror
sync's deletes, and what they leave in the sync's working index (the state to write) and the
task's journal.

The engine (``engine.py``) decides each record and hands the decisions here in groups, each holding
one batch of creates at most, ``max_in_flight`` groups at a time; a group's results come back in
input order and are kept (:meth:`Writer.keep`) in the engine's thread.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import replace

from airflow_provider_wolkvox.loads.journal import Journal
from airflow_provider_wolkvox.loads.records import PreparedRecord
from airflow_provider_wolkvox.loads.results import GONE_STATUSES, RecordResult, RecordStatus
from airflow_provider_wolkvox.loads.sender import Sender
from airflow_provider_wolkvox.loads.sync.deletes import Deleter, Doomed
from airflow_provider_wolkvox.loads.sync.index import SyncIndex
from airflow_provider_wolkvox.loads.sync.plan import Decision, SyncOptions
from airflow_provider_wolkvox.loads.sync.state import field_hashes
from airflow_provider_wolkvox.loads.sync.updates import Updater

# Results noted in the journal by the sync itself (the others are noted by the requests that made them).
_FOUND = (RecordStatus.UNCHANGED, RecordStatus.SKIPPED)


class Writer:
    """Writes a sync's decisions through its sender (client, journal, stop state)."""

    def __init__(
        self, sender: Sender, options: SyncOptions, index: SyncIndex, journal: Journal | None
    ) -> None:
        self.sender = sender
        self.options = options
        self.index = index
        self.journal = journal
        self.updater = Updater(sender, options, self._create_again)
        self.deleter = Deleter(sender, options.key_field)

    def write(self, group: list[Decision]) -> tuple[list[Decision], list[RecordResult]]:
        """Write one group: its creates in one batch, its updates one by one; results in input order."""
        results: dict[int, RecordResult] = {d.record.index: d.result for d in group if d.result is not None}
        creates = [d for d in group if creates_record(d)]
        updates = [d for d in group if d.result is None and d.update_id is not None]
        if creates:
            sent = self._create([d.record for d in creates])
            results.update((r.index, self._created(d, r)) for d, r in zip(creates, sent, strict=True))
        for decision in updates:
            results[decision.record.index] = self.updater.update(decision)
        return group, [results[d.record.index] for d in group]

    def delete(self, batch: Sequence[Doomed]) -> list[RecordResult]:
        """Delete the records of one batch (a mirror sync's); one result per key."""
        return self.deleter.delete(batch)

    def keep(self, group: list[Decision], results: list[RecordResult]) -> None:
        """Note in the sync state what the CRM now holds for each key of ``group``, and in the journal
        the records found in the CRM without a write (unchanged, skipped), so that a clear of the
        task recalls them rather than looking them up again."""
        kept: list[tuple[str, str, dict[str, str] | None]] = []
        found: list[tuple[str, RecordResult]] = []
        for decision, result in zip(group, results, strict=True):
            if result.status in (RecordStatus.CREATED, RecordStatus.UPDATED, RecordStatus.UNCHANGED):
                kept.append((decision.key, str(result.wolkvox_id), field_hashes(decision.record.fields)))
            elif result.status is RecordStatus.SKIPPED and result.wolkvox_id is not None:
                kept.append((decision.key, result.wolkvox_id, None))
            if result.status in _FOUND and result.wolkvox_id is not None and self._new_note(decision, result):
                found.append((str(decision.record.key), result))
        self.index.keep(kept)
        if found and self.journal is not None:
            self.journal.settled(None, found, time.time())

    def forget(self, results: list[RecordResult]) -> None:
        """Drop from the sync state the keys whose records a mirror sync deleted or found gone."""
        self.index.forget(str(r.key) for r in results if r.status in GONE_STATUSES)

    def _create(self, records: Sequence[PreparedRecord]) -> list[RecordResult]:
        return self.sender.send_recalled(records) if self.journal is not None else self.sender.send(records)

    def _create_again(self, decision: Decision) -> RecordResult:
        """Create the record of a key whose CRM record is gone (its update was refused)."""
        [result] = self._create([decision.record])
        return self._created(decision, result)

    def _created(self, decision: Decision, result: RecordResult) -> RecordResult:
        """The result of a create; a refused one is looked up, in case another writer holds its key."""
        if result.status is RecordStatus.REJECTED:
            result = self.updater.taken(decision, result)
        return keyed(result, decision.key)

    def _new_note(self, decision: Decision, result: RecordResult) -> bool:
        """False when an earlier try of the task noted this result of the record already."""
        if self.journal is None:
            return False
        note = self.journal.recall(str(decision.record.key))
        return note is None or (note.status, note.wolkvox_id) != (result.status.value, result.wolkvox_id)


def creates_record(decision: Decision) -> bool:
    """True for a decision to create its record."""
    return decision.result is None and decision.update_id is None


def keyed(result: RecordResult, key: str) -> RecordResult:
    return replace(result, key=key)
