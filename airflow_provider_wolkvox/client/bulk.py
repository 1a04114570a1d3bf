"""Bulk loads: batches (or single inserts) through the token gate, results in input order.

The input is read lazily: at most ``max_in_flight + 1`` chunks are held at once (the ones in flight
and the next one, prepared and encoded while the others travel), so a generator of a million
records is never in memory at once.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from itertools import islice
from typing import Any, Protocol

from airflow_provider_wolkvox import api
from airflow_provider_wolkvox.client.client import WolkvoxClient, encode_body
from airflow_provider_wolkvox.client.results import LoadSummary, RecordResult, RecordStatus
from airflow_provider_wolkvox.exceptions import (
    WolkvoxBadRequestError,
    WolkvoxError,
    WolkvoxInputError,
    WolkvoxOutcomeUnknownError,
)
from airflow_provider_wolkvox.fields import prepare_fields

log = logging.getLogger(__name__)

DEFAULT_BATCH_SIZE = 100
#: The vendor's other product takes 10,000 records per upload: the outer bound we accept.
MAX_BATCH_SIZE = 10_000
DEFAULT_PROGRESS_INTERVAL = 10.0
# Answers that refuse the request itself, not a record in it: splitting the batch cannot help.
_REQUEST_LEVEL_MESSAGES = frozenset({api.MSG_MISSING_PARAMETERS, api.MSG_UNKNOWN_API})
# 400 may refuse a record; the other 4xx (404, 405, 412, 416, 417, ...) refuse the request.
_RECORD_LEVEL_STATUS = 400
# Rounds of "look up, then re-send what is missing" for a record whose outcome was unknown.
_DEDUPE_ROUNDS = 3

Chunk = list[tuple[int, dict[str, Any]]]

#: A journal entry's status while its record is being sent.
SENDING = "sending"
# Noted outcomes that a later try sends again: nothing of these records is in the CRM.
_SEND_AGAIN = frozenset({RecordStatus.REJECTED.value, RecordStatus.NOT_SENT.value})
# Noted outcomes that a later try looks up rather than sends: they may be in the CRM.
_IN_DOUBT = frozenset({SENDING, RecordStatus.OUTCOME_UNKNOWN.value})


@dataclass(frozen=True)
class JournalEntry:
    """What a journal knows of one record: its content's fingerprint and its outcome so far."""

    fingerprint: str
    status: str  # a RecordStatus value, or SENDING
    wolkvox_id: str | None = None
    error: str | None = None
    msg: str | None = None


class LoadJournal(Protocol):
    """Where a load notes its progress, so that a retried task neither re-sends nor loses records.

    Chunks are numbered in input order and hold one entry per record; the fingerprint of a
    record's content keeps a changed record from being matched to an old entry. ``note`` is called
    from the sending threads and the iterating thread, so implementations must be thread-safe.
    """

    def recall(self, number: int) -> list[JournalEntry] | None:
        """The entries noted for chunk ``number`` by an earlier try, if any."""

    def note(self, number: int, entries: list[JournalEntry]) -> None:
        """Replace the entries of chunk ``number``."""


def check_load_options(batch_size: int, max_in_flight: int) -> None:
    """Reject out-of-range options before anything is read or sent."""
    if not isinstance(batch_size, int) or not 1 <= batch_size <= MAX_BATCH_SIZE:
        raise WolkvoxInputError(
            f"batch_size must be an integer from 1 to {MAX_BATCH_SIZE}, got {batch_size!r}"
        )
    if not isinstance(max_in_flight, int) or not 1 <= max_in_flight <= api.MAX_IN_FLIGHT_PER_TOKEN:
        raise WolkvoxInputError(
            f"max_in_flight must be 1 or {api.MAX_IN_FLIGHT_PER_TOKEN} (the CRM's limit per token), "
            f"got {max_in_flight!r}"
        )


class BulkLoad:
    """One bulk load; iterate it for a :class:`RecordResult` per input record, in input order.

    :param records: mappings of field label to value; a sequence is checked whole before the first
        request, any other iterable record by record as it is read (a bad record then raises
        ``WolkvoxInputError`` after the results of the records before it).
    :param batch_size: records per ``insertMany.php`` call (in single mode: per journal note).
    :param single: one ``insert.php`` call per record instead of batches.
    :param max_in_flight: requests in flight at once (1 or 2; the gate caps the process at 2).
    :param dedupe_field: a field unique per record; records whose outcome is unknown are looked up
        by it (one ``query.php`` call each) and re-sent only when absent.
    :param total: the number of records, for progress lines, when ``records`` has no length.
    :param journal: notes progress record by record; a load given the notes of an earlier try
        reuses the records it created, looks up those it left in doubt (sending, or of unknown
        outcome) and sends the rest; a record whose content changed is sent as new.
    """

    def __init__(
        self,
        client: WolkvoxClient,
        operation: str,
        module: str,
        records: Iterable[Mapping[str, Any]],
        *,
        batch_size: int = DEFAULT_BATCH_SIZE,
        single: bool = False,
        max_in_flight: int = api.MAX_IN_FLIGHT_PER_TOKEN,
        dedupe_field: str | None = None,
        total: int | None = None,
        progress_interval: float = DEFAULT_PROGRESS_INTERVAL,
        journal: LoadJournal | None = None,
    ) -> None:
        check_load_options(batch_size, max_in_flight)
        if isinstance(records, (str, bytes, Mapping)) or not isinstance(records, Iterable):
            raise WolkvoxInputError(f"records must be an iterable of mappings, got {type(records).__name__}")
        self.client = client
        self.operation = operation
        self.module = module
        self.batch_size = batch_size
        self.single = single
        self.max_in_flight = max_in_flight
        self.dedupe_field = dedupe_field
        self.progress_interval = progress_interval
        self.journal = journal
        self.summary = LoadSummary()
        #: The error that stopped the load (spent quota, refused token, CRM unavailable), if any.
        self.stop_error: WolkvoxError | None = None
        self._stop_lock = threading.Lock()
        if isinstance(records, Sequence):
            # In memory already: check everything before the first request.
            self._records: Iterable[dict[str, Any]] = [
                prepare_fields(fields, record=index) for index, fields in enumerate(records)
            ]
            self.total: int | None = len(records)
        else:
            self._records = (prepare_fields(fields, record=index) for index, fields in enumerate(records))
            self.total = total

    def __iter__(self) -> Iterator[RecordResult]:
        started = time.monotonic()
        calls_before = self.client.calls
        last_progress = started
        pending: deque[tuple[int, list[str], Future[list[RecordResult]]]] = deque()
        # Chunk tasks run in ``pool``; in single mode they spread their records over a record pool,
        # so that a chunk on its own (a small load, the last chunk) still fills every request slot.
        # The record pool is shut down last, after the chunk tasks that use it.
        record_pool = (
            ThreadPoolExecutor(self.max_in_flight, thread_name_prefix="wolkvox-record")
            if self.single
            else None
        )
        with (
            record_pool or contextlib.nullcontext(),
            ThreadPoolExecutor(self.max_in_flight, thread_name_prefix="wolkvox-load") as pool,
        ):
            try:
                try:
                    for number, chunk, body in self._chunks():
                        fingerprints = [_fingerprint(fields) for _, fields in chunk] if self.journal else []
                        future = self._submit(pool, record_pool, number, chunk, body, fingerprints)
                        pending.append((number, fingerprints, future))
                        # Keep one chunk prepared beyond those in flight, so the gate never idles.
                        while len(pending) > self.max_in_flight:
                            yield from self._settle(*pending.popleft())
                            if time.monotonic() - last_progress >= self.progress_interval:
                                last_progress = time.monotonic()
                                self._log_progress(started, calls_before)
                except WolkvoxInputError:
                    # A bad record stops the reading; the chunks in flight still report first.
                    while pending:
                        yield from self._settle(*pending.popleft())
                    raise
                while pending:
                    yield from self._settle(*pending.popleft())
            finally:
                for *_, future in pending:
                    future.cancel()
                self.summary.calls = self.client.calls - calls_before
                self.summary.elapsed_seconds = time.monotonic() - started
                if self.stop_error is not None:
                    self.summary.stopped_reason = str(self.stop_error)

    def _chunks(self) -> Iterator[tuple[int, Chunk, bytes]]:
        records = enumerate(self._records)
        number = 0
        while chunk := list(islice(records, self.batch_size)):
            # Encoded here, on the reading thread, while the requests in flight travel.
            yield number, chunk, b"" if self.single else self._encode(chunk)
            number += 1

    def _submit(
        self,
        pool: ThreadPoolExecutor,
        record_pool: ThreadPoolExecutor | None,
        number: int,
        chunk: Chunk,
        body: bytes,
        fingerprints: list[str],
    ) -> Future[list[RecordResult]]:
        if self.journal is None:
            return pool.submit(self._send, chunk, body, 1, record_pool)
        recalled = self.journal.recall(number) or []
        return pool.submit(
            self._send_journalled, self.journal, number, chunk, body, fingerprints, recalled, record_pool
        )

    def _send_journalled(
        self,
        journal: LoadJournal,
        number: int,
        chunk: Chunk,
        body: bytes,
        fingerprints: list[str],
        recalled: list[JournalEntry],
        record_pool: ThreadPoolExecutor | None,
    ) -> list[RecordResult]:
        """Send what no earlier try settled; reuse what one created; look up what one left in doubt."""
        known: dict[int, RecordResult] = {}
        in_doubt: Chunk = []
        to_send: Chunk = []
        entries: list[JournalEntry] = []
        for position, ((index, fields), fingerprint) in enumerate(zip(chunk, fingerprints, strict=True)):
            entry = recalled[position] if position < len(recalled) else None
            if entry is None or entry.fingerprint != fingerprint or entry.status in _SEND_AGAIN:
                to_send.append((index, fields))
            elif entry.status in _IN_DOUBT:
                in_doubt.append((index, fields))
            else:
                known[index] = RecordResult(
                    index, RecordStatus(entry.status), entry.wolkvox_id, entry.error, entry.msg
                )
                entries.append(entry)
                continue
            entries.append(JournalEntry(fingerprint, SENDING))
        # Noted just before the requests go out, so that only records really in flight are in doubt later.
        journal.note(number, entries)
        if len(to_send) == len(chunk):
            return self._send(chunk, body, 1, record_pool)
        if in_doubt:
            error = WolkvoxOutcomeUnknownError(
                "an earlier try of this load was sending these records when it stopped; "
                "they may or may not be in the CRM"
            )
            known.update(
                (result.index, result) for result in self._resolve_unknown(in_doubt, error, attempt=1)
            )
        if to_send:
            known.update((result.index, result) for result in self._send(to_send, b"", 1, record_pool))
        return [known[index] for index, _ in chunk]

    def _settle(
        self, number: int, fingerprints: list[str], future: Future[list[RecordResult]]
    ) -> Iterator[RecordResult]:
        results = future.result()
        if self.journal is not None:
            self.journal.note(
                number,
                [
                    JournalEntry(fingerprint, r.status.value, r.wolkvox_id, r.error, r.msg)
                    for fingerprint, r in zip(fingerprints, results, strict=True)
                ],
            )
        for result in results:
            self.summary.add(result)
            yield result

    def _send(
        self,
        chunk: Chunk,
        body: bytes = b"",
        attempt: int = 1,
        record_pool: ThreadPoolExecutor | None = None,
    ) -> list[RecordResult]:
        """Insert ``chunk`` (one call per record, or one batch) and say what became of each record.

        In single mode a chunk task passes the record pool, to send its records over every request
        slot. Sends again for records of unknown outcome run on record-pool threads, which must never
        wait on their own pool: they pass none and send one record after the other.
        """
        if not self.single:
            return self._send_batch(chunk, body, attempt)
        each: Callable[..., Iterator[RecordResult]] = map if record_pool is None else record_pool.map
        return list(each(lambda item: self._send_one(item[0], item[1], attempt), chunk))

    def _send_one(self, index: int, fields: dict[str, Any], attempt: int) -> RecordResult:
        if self.stop_error is not None:
            return _outcome(index, RecordStatus.NOT_SENT, self.stop_error)
        try:
            wolkvox_id = self.client.insert(self.operation, self.module, fields)
        except WolkvoxBadRequestError as error:
            return _outcome(index, RecordStatus.REJECTED, error)
        except WolkvoxOutcomeUnknownError as error:
            return self._resolve_unknown([(index, fields)], error, attempt)[0]
        except WolkvoxError as error:
            return self._stopped([(index, fields)], error)[0]
        return RecordResult(index, RecordStatus.CREATED, wolkvox_id)

    def _send_batch(self, chunk: Chunk, body: bytes, attempt: int) -> list[RecordResult]:
        outcome = self._try_batch(chunk, body, attempt)
        if isinstance(outcome, WolkvoxBadRequestError):
            return self._isolate(chunk, outcome, attempt)
        return outcome

    def _try_batch(
        self, chunk: Chunk, body: bytes, attempt: int
    ) -> list[RecordResult] | WolkvoxBadRequestError:
        """One ``insertMany`` call; a refusal of the batch for its records comes back as the error."""
        # Checked here, not once per chunk: the parts of a refused batch come back through here.
        if self.stop_error is not None:
            return _outcomes(chunk, RecordStatus.NOT_SENT, self.stop_error)
        try:
            ids = self.client.insert_batch(self.module, body or self._encode(chunk), len(chunk))
        except WolkvoxBadRequestError as error:
            if not _refuses_the_request(error):
                return error
            return self._stopped(chunk, error)
        except WolkvoxOutcomeUnknownError as error:
            return self._resolve_unknown(chunk, error, attempt)
        except WolkvoxError as error:
            return self._stopped(chunk, error)
        if ids is None:
            return _outcomes(chunk, RecordStatus.CREATED_ID_UNKNOWN)
        return [
            RecordResult(index, RecordStatus.CREATED, wolkvox_id)
            for (index, _), wolkvox_id in zip(chunk, ids, strict=True)
        ]

    def _isolate(
        self, chunk: Chunk, error: WolkvoxBadRequestError, attempt: int, dense: bool = False
    ) -> list[RecordResult]:
        """Create the good records of a batch refused for some of them; reject the bad ones.

        Halving finds a few bad records in about 2·log2(n) calls. Where bad records are dense (both
        halves refused twice running, e.g. a load run again into a module with a unique field), one
        call per record is cheaper than halving on, so the cost stays near n calls, never 2n.
        """
        if len(chunk) == 1:
            return [_outcome(chunk[0][0], RecordStatus.REJECTED, error)]
        log.info(
            "wolkvox refused a batch of %d records (%s); splitting it to isolate the rejected records, "
            "at the cost of extra calls",
            len(chunk),
            error.msg,
        )
        half = len(chunk) // 2
        parts = (chunk[:half], chunk[half:])
        outcomes = [self._try_batch(part, b"", attempt) for part in parts]
        both_refused = all(isinstance(outcome, WolkvoxBadRequestError) for outcome in outcomes)
        if both_refused and dense:
            return [result for item in chunk for result in self._send_batch([item], b"", attempt)]
        results: list[RecordResult] = []
        for part, outcome in zip(parts, outcomes, strict=True):
            if isinstance(outcome, WolkvoxBadRequestError):
                results += self._isolate(part, outcome, attempt, dense=both_refused)
            else:
                results += outcome
        return results

    def _resolve_unknown(self, chunk: Chunk, error: WolkvoxError, attempt: int) -> list[RecordResult]:
        """Settle records whose insert may or may not have happened: look each up, re-send the absent.

        Without ``dedupe_field``, after ``_DEDUPE_ROUNDS`` tries, or once the load has stopped, they
        stay "outcome unknown".
        """
        if self.dedupe_field is None or attempt >= _DEDUPE_ROUNDS or self.stop_error is not None:
            return _outcomes(chunk, RecordStatus.OUTCOME_UNKNOWN, error)
        settled: dict[int, RecordResult] = {}
        absent: Chunk = []
        unresolved: Chunk = []
        for index, fields in chunk:
            found = self._look_up(fields)
            if found is None:
                unresolved.append((index, fields))
            elif found:
                settled[index] = RecordResult(index, RecordStatus.CREATED, found[0])
            else:
                absent.append((index, fields))
        if unresolved:
            # A look-up that failed leaves the outcome as unknown as before: look again next round.
            settled.update((r.index, r) for r in self._resolve_unknown(unresolved, error, attempt + 1))
        if absent:
            log.info(
                "wolkvox: %d record(s) of unknown outcome are not in the CRM; sending them again", len(absent)
            )
            settled.update((result.index, result) for result in self._send(absent, b"", attempt + 1))
        return [settled[index] for index, _ in chunk]

    def _look_up(self, fields: dict[str, Any]) -> list[str] | None:
        """The ids of the records holding this record's dedupe value; None when it cannot be known."""
        assert self.dedupe_field is not None
        value = fields.get(self.dedupe_field)
        if value is None:
            return None
        try:
            matches = self.client.query(self.operation, self.module, self.dedupe_field, value)
        except WolkvoxError as error:
            if error.fail_fast and not isinstance(error, WolkvoxBadRequestError):
                self._stop(error)  # a refused token or spent quota refuses every call after it too
            else:
                log.warning("wolkvox: could not look up a record of unknown outcome: %s", error)
            return None
        return [str(match["wolkvox_id"]) for match in matches if match.get("wolkvox_id")]

    def _encode(self, chunk: Chunk) -> bytes:
        return encode_body(
            {"operation": self.operation, "module": self.module, "fields": [f for _, f in chunk]}
        )

    def _stopped(self, chunk: Chunk, error: WolkvoxError) -> list[RecordResult]:
        """Stop the load for ``error``; the records of ``chunk`` are not sent."""
        self._stop(error)
        return _outcomes(chunk, RecordStatus.NOT_SENT, error)

    def _stop(self, error: WolkvoxError) -> None:
        with self._stop_lock:  # both sending threads may hit the same refusal
            if self.stop_error is not None:
                return
            self.stop_error = error
        log.error("wolkvox load stopped: %s; the remaining records are not sent", error)

    @property
    def calls_needed(self) -> int | None:
        """API calls the load needs when nothing fails, if the record count is known."""
        if self.total is None:
            return None
        return self.total if self.single else -(-self.total // self.batch_size)

    def _log_progress(self, started: float, calls_before: int) -> None:
        done = self.summary.total
        rate = done / max(time.monotonic() - started, 1e-9)
        of_total = f"/{self.total}" if self.total is not None else ""
        log.info(
            "wolkvox load: %d%s records done (%.0f records/s), %d failed, %d API calls",
            done,
            of_total,
            rate,
            self.summary.failed,
            self.client.calls - calls_before,
        )


def _outcome(index: int, status: RecordStatus, error: WolkvoxError | None = None) -> RecordResult:
    if error is None:
        return RecordResult(index, status)
    # An unknown outcome keeps the whole explanation; a refusal, the server's own words.
    msg = str(error) if status is RecordStatus.OUTCOME_UNKNOWN else error.msg or str(error)
    return RecordResult(index, status, error=error.error, msg=msg, cause=error)


def _outcomes(chunk: Chunk, status: RecordStatus, error: WolkvoxError | None = None) -> list[RecordResult]:
    return [_outcome(index, status, error) for index, _ in chunk]


def _fingerprint(fields: dict[str, Any]) -> str:
    """A short digest of a record's content, to recognise it in a later try's journal."""
    return hashlib.blake2b(encode_body(fields), digest_size=8).hexdigest()


def _refuses_the_request(error: WolkvoxBadRequestError) -> bool:
    """True when a 4xx refuses the request itself rather than a record in it."""
    if error.status_code is not None and error.status_code != _RECORD_LEVEL_STATUS:
        return True
    return (error.msg or "").strip().upper() in _REQUEST_LEVEL_MESSAGES
