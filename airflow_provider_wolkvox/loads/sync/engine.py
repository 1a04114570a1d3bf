"""A sync: create, update or skip each record by its key, spending calls only on what changed.

In three passes over the input: the first checks every record (each with its key, no key twice)
and compares it with the sync state; then the keys the state does not know are looked up (per key,
or by a scan of the module); the last pass decides each record (create, update the fields that
differ, leave unchanged, skip by the mode, ambiguous) and writes (``writes.py``), creates in
``insertMany.php`` batches, updates one ``update.php`` call each, ``max_in_flight`` at a time; a
mirror sync then deletes the records of the tracked keys the input lacks (``deletes.py``), after
checking their number against ``max_deletes`` before its first call. A dry run (:meth:`SyncLoad.dry_run`)
stops short of the writes and counts them (``dry_run.py``). The sync state, when kept, is held by
the sync from before it is read until after it is written, at the end, over the state as it is then
(``state.py``).
"""

from __future__ import annotations

import logging
import time
import weakref
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from typing import Any

from airflow_provider_wolkvox import api
from airflow_provider_wolkvox.client.client import WolkvoxClient
from airflow_provider_wolkvox.exceptions import WolkvoxInputError, WolkvoxStateWriteError
from airflow_provider_wolkvox.fields import encode_fields, prepare_record
from airflow_provider_wolkvox.loads.bulk import GROUP_SPAN
from airflow_provider_wolkvox.loads.compare import key_text, key_value
from airflow_provider_wolkvox.loads.journal import Journal
from airflow_provider_wolkvox.loads.pipeline import ordered
from airflow_provider_wolkvox.loads.progress import Progress
from airflow_provider_wolkvox.loads.records import ContentKeys, PreparedRecord, check_records_argument, groups
from airflow_provider_wolkvox.loads.results import LoadSummary, RecordResult, RecordStatus
from airflow_provider_wolkvox.loads.sender import Sender
from airflow_provider_wolkvox.loads.sync.deletes import delete_calls, guard_deletes
from airflow_provider_wolkvox.loads.sync.dry_run import DryRunPlan
from airflow_provider_wolkvox.loads.sync.index import SyncIndex
from airflow_provider_wolkvox.loads.sync.lookup import look_up_keys, scan_module
from airflow_provider_wolkvox.loads.sync.plan import Decision, SyncOptions, SyncPlan
from airflow_provider_wolkvox.loads.sync.state import (
    StateHeader,
    StateStorage,
    missing_state_warning,
    read_state,
    write_failure,
    write_state,
)
from airflow_provider_wolkvox.loads.sync.updates import changed_by_hashes, changes
from airflow_provider_wolkvox.loads.sync.writes import Writer, creates_record, keyed

log = logging.getLogger(__name__)

#: Labels a record in errors: its index, or its file line ("line 7").
Label = int | str
#: A fresh pass over the input each call: (label, fields) of every record.
Source = Callable[[], Iterable[tuple[Label, Mapping[str, Any]]]]
# Results a sync reuses from an earlier try of the task: nothing more to write for these (a record
# found unchanged or skipped is noted with its id, so that a clear does not look it up again).
_DONE = frozenset(
    {
        RecordStatus.CREATED.value,
        RecordStatus.CREATED_ID_UNKNOWN.value,
        RecordStatus.UPDATED.value,
        RecordStatus.UNCHANGED.value,
        RecordStatus.SKIPPED.value,
    }
)


def sync_source(records: Iterable[Mapping[str, Any]]) -> Source:
    """A :data:`Source` over in-memory records (an iterator is read once and held: a sync reads twice)."""
    check_records_argument(records)
    held = records if isinstance(records, Sequence) else list(records)
    return lambda: enumerate(held)


class SyncLoad:
    """One sync; iterate it for a :class:`RecordResult` per input record, in input order.

    The input is checked and compared with the sync state when the load is made (nothing is sent
    then); look-ups and writes happen during the iteration.

    :param records: a fresh pass over the input on each call (see :data:`Source`).
    :param state: where the sync state lives, held by this sync from now until the end of the
        iteration (or :meth:`close`), read first and written at the end (see ``state.py``).
    :param journal: where this sync notes its writes, and finds an earlier try's.
    :raises WolkvoxInputError: a bad record, a record without its key, a key given twice, a bad state
        file, a mirror sync without a state.
    :raises WolkvoxStateLockedError: another sync holds the state for longer than the storage waits.
    :raises WolkvoxDeleteGuardError: a mirror sync (not a dry run) would delete more than ``max_deletes``.
    """

    def __init__(
        self,
        client: WolkvoxClient,
        operation: str,
        module: str,
        records: Source,
        options: SyncOptions,
        *,
        state: StateStorage | None = None,
        journal: Journal | None = None,
    ) -> None:
        if options.mode == "mirror" and state is None:
            raise WolkvoxInputError(
                "mode='mirror' needs a state_path: a mirror sync deletes only the records its sync state "
                "tracks, never one it does not know it wrote"
            )
        self.client = client
        self.operation = operation
        self.module = module
        self.options = options
        self.state = state
        self.journal = journal
        self.sender = Sender(client, operation, module, options.load_options, journal)
        self.summary = LoadSummary.of_sync()
        self._records = records
        self._index = SyncIndex()
        self._writer = Writer(self.sender, options, self._index, journal)
        # Removed at the end of the iteration, or when a sync that never ran is collected.
        self._close_index = weakref.finalize(self, self._index.close)
        self._header = StateHeader(operation, module, options.key_field)
        # The state is held from before it is read until after it is written, or the sync dropped.
        self._owner = ExitStack()
        self._stored: StateHeader | None = None
        self._release_state = weakref.finalize(self, self._owner.close)
        try:
            self._read_state()
            self.plan = SyncPlan(module_size=None if self._stored is None else self._stored.module_size)
            self._check_input()
            self.plan.choose(options.lookup)
            self._delete_limit = guard_deletes(self.module, options, self.plan, self._index)
        except BaseException:
            self._release_state()
            raise
        if state is not None and self._stored is None and not options.refresh and self.plan.to_look_up:
            log.warning("%s", missing_state_warning(state.name, self.plan))
        log.info(
            "%s",
            self.plan.describe(module, options.key_field, mode=options.mode, batch_size=options.batch_size),
        )

    @property
    def calls_to_finish(self) -> int:
        """About how many API calls finishing the sync takes: one per record not written yet (creates
        batch, so fewer), or, before any look-up, the look-ups the plan counts."""
        return self.summary.counts[RecordStatus.NOT_SENT] or self.plan.lookup_calls

    @property
    def stop_error(self) -> Any:
        """The refusal that stopped the sync (spent quota, refused token, CRM unavailable), if any."""
        return self.sender.stop_error

    def __iter__(self) -> Iterator[RecordResult]:
        options = self.options
        if options.dry_run:
            self.close()
            raise WolkvoxInputError("a sync with dry_run=True writes nothing: call its dry_run() instead")
        progress = Progress(
            "sync",
            self.summary,
            self.client,
            self.plan.records,
            options.progress_interval,
            module=self.module,
        )
        started = progress.started
        writer, ahead = self._writer, options.max_in_flight
        recalled = 0  # results an earlier try wrote (by the journal): left out of the rate
        try:
            self._look_up()
            deletes = self._index.doom() if options.mode == "mirror" else 0
            progress.total = (progress.total or 0) + deletes
            with ThreadPoolExecutor(ahead, thread_name_prefix="wolkvox-sync") as pool:
                for group, results in ordered(pool, writer.write, self._grouped(), ahead=ahead):
                    writer.keep(group, results)
                    recalled += sum(decision.recalled for decision in group)
                    progress.reused = recalled + self.sender.reused
                    yield from self._counted(results, progress)
                if deletes:
                    batches = self._index.doomed(options.batch_size)
                    for results in ordered(pool, writer.delete, batches, ahead=ahead):
                        writer.forget(results)
                        yield from self._counted(results, progress)
            self._write_state()
        finally:
            progress.count_calls()
            self.summary.elapsed_seconds = time.monotonic() - started
            if self.stop_error is not None:
                self.summary.stopped_reason = str(self.stop_error)
            self._close_index()
            self._release_state()

    def close(self) -> None:
        """Drop a sync that will not be iterated: release its state and its working index."""
        self._release_state()
        self._close_index()

    def dry_run(self) -> DryRunPlan:
        """Every look-up the sync needs and no write (nor the state, nor a journal note): what the sync
        would write and what that costs in calls, and what the dry run spent (its look-ups, and one
        call reading the token's quota). The sync is done with afterwards (its state released)."""
        options = self.options
        plan = DryRunPlan(self.module, options.key_field, options.mode, options.batch_size)
        calls_before = self.client.calls
        try:
            self._look_up()
            plan.lookup = self.plan.lookup
            for group in self._grouped():
                plan.count(group)
            if options.mode == "mirror":
                plan.delete = self._index.doom()
                plan.delete_calls = delete_calls(self._index.doomed_ids(), options.batch_size)
                plan.max_deletes = self._delete_limit
                plan.exceeds_max_deletes = self.plan.to_delete > self._delete_limit
            plan.quota_left = self.client.token_info(self.operation).calls_left
        finally:
            plan.calls_used = self.client.calls - calls_before
            self.close()
        log.info("%s", plan.table())
        return plan

    # The sync state

    def _read_state(self) -> None:
        """Hold the state and read it into the index (its header into ``_stored``: None when none)."""
        if self.state is not None:
            self._owner.enter_context(self.state.owned())
            self._stored, rows = read_state(self.state, self._header, refresh=self.options.refresh)
            self._index.load_state(rows)

    def _write_state(self) -> None:
        """Write this run's entries over the state as it is now (see ``state.py``).

        :raises WolkvoxStateWriteError: saying that the CRM writes succeeded and the state is behind.
        """
        if self.state is None:
            return
        stored, size = self._stored, self._header.module_size
        unchanged = stored is not None and not self._index.changed() and size in (None, stored.module_size)
        if unchanged and not self.options.refresh:  # refresh rewrites it, as a rebuild
            return  # nothing new to note: the state stays as it is
        try:
            write_state(self.state, self._header, self._index.state_entries())
        except Exception as error:
            counts = {status.value: count for status, count in self.summary.counts.items()}
            relearn = self.plan.lookup_calls + self.plan.changed
            raise WolkvoxStateWriteError(write_failure(self.state.name, error, counts, relearn)) from error

    # The first pass

    def _check_input(self) -> None:
        key_field, plan = self.options.key_field, self.plan
        keys = ContentKeys(self.module)
        for position, (label, fields) in enumerate(self._records()):
            record, key = self._prepared(position, label, fields)
            done = self._written_earlier(record, keys) is not None
            known = None if self.options.refresh or done else self._index.known(key)
            if known is not None and known.hashes is None and self.options.mode != "insert_only":
                known = None  # its values are not known: look it up (insert_only needs only its id)
            look_up = known is None and not done
            earlier = self._index.add_input(key, str(label), look_up=look_up)
            if earlier is not None:
                raise WolkvoxInputError(
                    f"{_name(earlier)} and {_name(label)} have the same key {key_field}="
                    f"{record.fields[key_field]!r}: a sync writes each key once; merge or drop one",
                    record=label,
                    field=key_field,
                )
            plan.records += 1
            if done:
                plan.done += 1
            elif known is None:
                plan.to_look_up += 1
            else:
                plan.known += 1
                if self.options.mode != "insert_only":  # which never updates
                    plan.changed += bool(changed_by_hashes(record.fields, known, key_field))

    def _prepared(self, position: int, label: Label, fields: Mapping[str, Any]) -> tuple[PreparedRecord, str]:
        key_field = self.options.key_field
        prepared, body = prepare_record(fields, record=label)
        key = key_text(prepared.get(key_field))
        if key is None:
            raise WolkvoxInputError(
                f"{_name(label)}: no value for the key field {key_field!r}", record=label, field=key_field
            )
        written = key_value(prepared[key_field])
        if written != prepared[key_field]:  # the key is written as it is looked up: by its identity
            prepared = {**prepared, key_field: written}
            body = encode_fields(prepared, record=label)
        return PreparedRecord(position, prepared, body), key

    # Looking up

    def _look_up(self) -> None:
        plan, options = self.plan, self.options
        args = (self.client, self.operation, self.module, options.key_field, self._index)
        progress = Progress(
            "sync",
            self.summary,
            self.client,
            plan.to_look_up,
            options.progress_interval,
            module=self.module,
            unit="keys looked up",
        )
        if plan.lookup == "scan":
            size, whole = scan_module(*args)
            self._header = StateHeader(self.operation, self.module, options.key_field, size)
            if not whole:  # the keys not seen may be in what could not be read
                look_up_keys(*args, in_flight=options.max_in_flight, unfound_only=True, progress=progress)
        elif plan.lookup == "query":
            look_up_keys(*args, in_flight=options.max_in_flight, progress=progress)

    # The last pass

    def _grouped(self) -> Iterator[list[Decision]]:
        """The decisions in the groups they are written in: each holds one batch of creates at most,
        so that creates cost ceil(n / batch) calls where they are not sparse."""
        return groups(self._decisions(), creates_record, self.options.batch_size, GROUP_SPAN)

    def _counted(self, results: list[RecordResult], progress: Progress) -> Iterator[RecordResult]:
        for result in results:
            self.summary.add(result)
            yield result
        progress.tick()

    def _decisions(self) -> Iterator[Decision]:
        keys = ContentKeys(self.module)
        for position, (label, fields) in enumerate(self._records()):
            record, key = self._prepared(position, label, fields)
            written = self._written_earlier(record, keys)
            if written is None:
                yield self._decide(record, key)
            else:
                yield Decision(record, key, keyed(written, key), recalled=True)

    def _written_earlier(self, record: PreparedRecord, keys: ContentKeys) -> RecordResult | None:
        """What an earlier try of the task wrote for ``record`` (by its journal), if it wrote it."""
        if self.journal is None:
            return None
        keys.assign(record)
        note = self.journal.recall(str(record.key))
        return note.result(record.index) if note is not None and note.status in _DONE else None

    def _decide(self, record: PreparedRecord, key: str) -> Decision:
        mode = self.options.mode
        if self._index.looks_up(key):
            holders = self._index.holders(key)
            if len(holders) > 1:
                ids = tuple(str(holder[api.ID_FIELD]) for holder in holders)
                return Decision(
                    record, key, RecordResult(record.index, RecordStatus.AMBIGUOUS, key=key, matches=ids)
                )
            if not holders:
                if mode == "update_only":
                    return Decision(record, key, RecordResult(record.index, RecordStatus.SKIPPED, key=key))
                return Decision(record, key)
            wolkvox_id = str(holders[0][api.ID_FIELD])
            changed = changes(record.fields, holders[0], self.options.key_field)
        else:
            known = self._index.known(key)
            if known is None:
                raise AssertionError(f"key {key!r} is neither looked up nor known from the state")
            wolkvox_id = known.wolkvox_id
            changed = changed_by_hashes(record.fields, known, self.options.key_field)
        if mode == "insert_only":
            return Decision(
                record, key, RecordResult(record.index, RecordStatus.SKIPPED, wolkvox_id, key=key)
            )
        if not changed:
            return Decision(
                record, key, RecordResult(record.index, RecordStatus.UNCHANGED, wolkvox_id, key=key)
            )
        return Decision(record, key, update_id=wolkvox_id, fields=changed)


def _name(label: Label | str) -> str:
    return f"record {label}" if isinstance(label, int) or str(label).isdigit() else str(label)
