"""Sending records: one request per batch (or per record), noted in the journal, its outcome read.

A batch refused for its records is split until the bad records stand alone; records whose request
left without an answer are settled (see ``settle.py``) and the absent ones sent again; a refusal
no retry can fix (spent quota, refused token, a refused request) stops every later request.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import defaultdict
from collections.abc import Mapping, Sequence
from typing import Any

from airflow_provider_wolkvox.client.client import WolkvoxClient
from airflow_provider_wolkvox.exceptions import (
    WolkvoxBadRequestError,
    WolkvoxError,
    WolkvoxOutcomeUnknownError,
    WolkvoxUnreadableIdError,
)
from airflow_provider_wolkvox.fields import prepare_record
from airflow_provider_wolkvox.loads.isolation import isolate, refuses_the_request
from airflow_provider_wolkvox.loads.journal import IN_DOUBT, SEND_AGAIN, Journal
from airflow_provider_wolkvox.loads.options import LoadOptions
from airflow_provider_wolkvox.loads.records import ContentKeys, PreparedRecord, batch_body
from airflow_provider_wolkvox.loads.results import RecordResult, RecordStatus
from airflow_provider_wolkvox.loads.settle import Settler

log = logging.getLogger(__name__)

# Rounds of "settle, then send again what is absent" for records whose answers keep getting lost.
SETTLE_ROUNDS = 3


class Sender:
    """Sends the records of one load and says what became of each; shared by the load's threads.

    :param journal: notes each request before it goes out and its outcome after.
    """

    def __init__(
        self,
        client: WolkvoxClient,
        operation: str,
        module: str,
        options: LoadOptions,
        journal: Journal | None = None,
    ) -> None:
        self.client = client
        self.operation = operation
        self.module = module
        self.options = options
        self.journal = journal
        self.settler = (
            Settler(client, operation, module, options.dedupe_field) if options.dedupe_field else None
        )
        #: The refusal that stopped sending (spent quota, refused token, CRM unavailable), if any.
        self.stop_error: WolkvoxError | None = None
        self._stop_lock = threading.Lock()
        #: Records an earlier try created, taken from the journal without a call.
        self.reused = 0

    def send(
        self, records: Sequence[PreparedRecord], attempt: int = 1, body: bytes | None = None
    ) -> list[RecordResult]:
        """Insert ``records``; one result each, in their order.

        :param body: their ``insertMany.php`` body, when already encoded (see ``records.batch_body``).
        """
        if self.options.single:
            return [result for record in records for result in self._outcome([record], attempt)]
        return self._outcome(records, attempt, body)

    def send_recalled(self, records: Sequence[PreparedRecord]) -> list[RecordResult]:
        """Insert records of a journalled load: what an earlier try created is reused, what it left in
        doubt is settled, the rest is sent. One result each, in their order."""
        assert self.journal is not None
        known: dict[int, RecordResult] = {}
        in_doubt: defaultdict[tuple[float, float], list[PreparedRecord]] = defaultdict(list)
        to_send: list[PreparedRecord] = []
        for record in records:
            note = self.journal.recall(str(record.key))
            if note is None or note.status in SEND_AGAIN:
                to_send.append(record)
            elif note.status in IN_DOUBT:
                # Whether an answer came is not noted: the CRM may have been busy with it till the timeout.
                in_doubt[note.sent_at, note.sent_at + self.client.timeout].append(record)
            else:
                known[record.index] = note.result(record.index)
        if known:
            with self._stop_lock:
                self.reused += len(known)
        for (sent_at, until), group in in_doubt.items():
            known.update((r.index, r) for r in self.settle(group, sent_at, until))
        if to_send:
            known.update((r.index, r) for r in self.send(to_send))
        return [known[record.index] for record in records]

    def settle(self, records: Sequence[PreparedRecord], sent_at: float, until: float) -> list[RecordResult]:
        """Settle records an earlier try left in doubt (its request was sent at ``sent_at``)."""
        error = WolkvoxOutcomeUnknownError(
            "an earlier try of this task sent these records and never learned their outcome (the "
            "answer was lost, or the try stopped while sending): they may or may not be in the CRM. "
            "Set dedupe_field to have them looked up, or clear the task's state store to send them again"
        )
        direct, absent = self._settled(records, error, sent_at, until, attempt=1)
        self._note(None, records, direct, sent_at)
        return self._merge(direct, self.send(absent, 2) if absent else [])

    def _outcome(
        self, records: Sequence[PreparedRecord], attempt: int, body: bytes | None = None
    ) -> list[RecordResult]:
        outcome = self._request(records, attempt, body)
        return (
            self._isolate(records, outcome, attempt)
            if isinstance(outcome, WolkvoxBadRequestError)
            else outcome
        )

    def _isolate(
        self, records: Sequence[PreparedRecord], error: WolkvoxBadRequestError, attempt: int
    ) -> list[RecordResult]:
        """Create the good records of a batch refused for some of them; reject the bad ones."""
        return isolate(records, error, lambda part: self._request(part, attempt))

    def _request(
        self, records: Sequence[PreparedRecord], attempt: int, body: bytes | None = None
    ) -> list[RecordResult] | WolkvoxBadRequestError:
        """One call for ``records``; a batch of several refused for its records comes back as the error."""
        if self.stop_error is not None:
            return _results(records, RecordStatus.NOT_SENT, self.stop_error)
        number, sent_at = self.journal.sending(_keys(records)) if self.journal else (None, time.time())
        absent: list[PreparedRecord] = []
        refusal: WolkvoxBadRequestError | None = None
        try:
            ids = self._call(records, body)
        except WolkvoxBadRequestError as error:
            if refuses_the_request(error):
                direct = self._stop_and_skip(records, error)
            else:
                direct = _results(records, RecordStatus.REJECTED, error)
                refusal = error if len(records) > 1 else None
        except WolkvoxOutcomeUnknownError as error:
            until = max(time.time(), error.busy_until or 0.0)
            direct, absent = self._settled(records, error, sent_at, until, attempt)
        except WolkvoxUnreadableIdError as error:
            direct = self._found_or_id_unknown(records, error, sent_at)
        except WolkvoxError as error:
            direct = self._stop_and_skip(records, error)
        else:
            direct = self._created(records, ids, sent_at)
        self._note(number, records, direct, sent_at)
        if refusal is not None:
            return refusal
        if absent:
            log.info(
                "wolkvox: %d record(s) of unknown outcome are not in the CRM; sending them again", len(absent)
            )
            return self._merge(direct, self.send(absent, attempt + 1))
        return direct

    def _call(self, records: Sequence[PreparedRecord], body: bytes | None) -> list[str] | None:
        if self.options.single:
            return [self.client.insert(self.operation, self.module, records[0].fields)]
        body = body or batch_body(self.operation, self.module, records)
        return self.client.insert_batch(self.module, body, len(records))

    def _created(
        self, records: Sequence[PreparedRecord], ids: list[str] | None, sent_at: float
    ) -> list[RecordResult]:
        if ids is None:
            return _results(records, RecordStatus.CREATED_ID_UNKNOWN)
        if self.settler is not None:
            self.settler.remember(records[0], ids[0], sent_at, time.time())
        return [RecordResult(r.index, RecordStatus.CREATED, i) for r, i in zip(records, ids, strict=True)]

    def _found_or_id_unknown(
        self, records: Sequence[PreparedRecord], error: WolkvoxUnreadableIdError, sent_at: float
    ) -> list[RecordResult]:
        """Records the CRM created with an unreadable id: looked up by ``dedupe_field`` when there is
        one, never sent again."""
        found: dict[int, str] = {}
        if self.settler is not None and self.stop_error is None:
            try:
                found = self.settler.settle(records, sent_at, time.time()).found
            except WolkvoxError as refusal:
                self.stop(refusal)
        return [
            RecordResult(r.index, RecordStatus.CREATED, found[r.index])
            if r.index in found
            else _result(r, RecordStatus.CREATED_ID_UNKNOWN, error)
            for r in records
        ]

    def _settled(
        self,
        records: Sequence[PreparedRecord],
        error: WolkvoxError,
        sent_at: float,
        until: float,
        attempt: int,
    ) -> tuple[list[RecordResult], list[PreparedRecord]]:
        """Records of unknown outcome as found (created), absent (to send again) or still unknown."""
        if self.settler is None or attempt >= SETTLE_ROUNDS or self.stop_error is not None:
            return _results(records, RecordStatus.OUTCOME_UNKNOWN, error), []
        try:
            settlement = self.settler.settle(records, sent_at, until)
        except WolkvoxError as refusal:  # a spent quota or refused token refuses every call after it
            self.stop(refusal)
            return _results(records, RecordStatus.OUTCOME_UNKNOWN, error), []
        absent = {record.index for record in settlement.absent}
        direct = [
            RecordResult(r.index, RecordStatus.CREATED, settlement.found[r.index])
            if r.index in settlement.found
            else _result(
                r, RecordStatus.NOT_SENT if r.index in absent else RecordStatus.OUTCOME_UNKNOWN, error
            )
            for r in records
        ]
        return direct, settlement.absent

    def _note(
        self,
        number: int | None,
        records: Sequence[PreparedRecord],
        results: list[RecordResult],
        sent_at: float,
    ) -> None:
        if self.journal is not None:
            self.journal.settled(number, zip(_keys(records), results, strict=True), sent_at)

    @staticmethod
    def _merge(direct: list[RecordResult], again: list[RecordResult]) -> list[RecordResult]:
        """``direct`` with the results of the records sent again in place of theirs."""
        resent = {result.index: result for result in again}
        return [resent.get(result.index, result) for result in direct]

    def _stop_and_skip(self, records: Sequence[PreparedRecord], error: WolkvoxError) -> list[RecordResult]:
        self.stop(error)
        return _results(records, RecordStatus.NOT_SENT, error)

    def stop(self, error: WolkvoxError) -> None:
        """Send nothing more: ``error`` refuses every later call too (spent quota, refused token)."""
        with self._stop_lock:  # both sending threads may meet the same refusal
            if self.stop_error is None:
                self.stop_error = error


def insert_one(
    client: WolkvoxClient,
    operation: str,
    module: str,
    fields: Mapping[str, Any],
    *,
    dedupe_field: str | None = None,
    journal: Journal | None = None,
) -> str:
    """Create one record; return its ``wolkvox_id`` (see ``WolkvoxHook.insert``).

    :raises WolkvoxError: the record was refused, or not created for sure: its outcome is unknown,
        or it was created with an unreadable id (``WolkvoxUnreadableIdError``).
    """
    prepared, body = prepare_record(fields)
    options = LoadOptions(single=True, max_in_flight=1, dedupe_field=dedupe_field)
    sender = Sender(client, operation, module, options, journal)
    record = PreparedRecord(0, prepared, body)
    if journal is None:
        [result] = sender.send([record])
    else:
        [result] = sender.send_recalled([ContentKeys(module).assign(record)])
    if result.wolkvox_id is None:
        raise result.cause or WolkvoxUnreadableIdError(
            f"wolkvox insert.php (module {module!r}): an earlier try created the record, but its id "
            "was unreadable; it is not created again"
        )
    return result.wolkvox_id


def _result(record: PreparedRecord, status: RecordStatus, error: WolkvoxError | None = None) -> RecordResult:
    if error is None:
        return RecordResult(record.index, status)
    # An unknown outcome keeps the whole explanation; a refusal, the server's own words.
    msg = str(error) if status is RecordStatus.OUTCOME_UNKNOWN else error.msg or str(error)
    return RecordResult(record.index, status, error=error.error, msg=msg, cause=error)


def _results(
    records: Sequence[PreparedRecord], status: RecordStatus, error: WolkvoxError | None = None
) -> list[RecordResult]:
    return [_result(record, status, error) for record in records]


def _keys(records: Sequence[PreparedRecord]) -> list[str]:
    """The content keys of records of a journalled load (every such record has one)."""
    return [str(record.key) for record in records]
