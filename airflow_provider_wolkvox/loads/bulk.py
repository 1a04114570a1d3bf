"""Bulk loads: the input in requests of ``batch_size`` records (or one each), results in input order.

The input is read lazily through an ordered pipeline of ``max_in_flight`` threads: at most
``max_in_flight + 1`` requests' worth of records are held at once (with a journal, groups that
may also carry records an earlier try settled, up to ``GROUP_SPAN`` requests' worth each), so a
generator of a million records is never in memory at once. With a journal, each record is first
looked up by its content key: created by an earlier try → its result is reused and nothing is
sent; left in doubt → settled; otherwise sent.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from airflow_provider_wolkvox.client import TokenInfo, WolkvoxClient
from airflow_provider_wolkvox.exceptions import WolkvoxError, WolkvoxInputError, WolkvoxQuotaExceededError
from airflow_provider_wolkvox.loads.journal import SEND_AGAIN, Journal
from airflow_provider_wolkvox.loads.options import LoadOptions, settle_reserve
from airflow_provider_wolkvox.loads.pipeline import ordered
from airflow_provider_wolkvox.loads.progress import Progress
from airflow_provider_wolkvox.loads.records import (
    ContentKeys,
    PreparedRecord,
    batch_body,
    check_records_argument,
    chunks,
    groups,
    prepare_records,
)
from airflow_provider_wolkvox.loads.results import LoadSummary, RecordResult, RecordStatus
from airflow_provider_wolkvox.loads.sender import Sender

log = logging.getLogger(__name__)

#: A group of records (see ``records.groups``) holds at most this many requests' worth.
GROUP_SPAN = 10
#: Records to settle together, and their encoded request body when it was built in advance.
Request = tuple[list[PreparedRecord], bytes | None]


class BulkLoad:
    """One bulk load; iterate it for a :class:`RecordResult` per input record, in input order.

    :param records: mappings of field label to value; a sequence is checked (and encoded) whole
        before the first request, any other iterable record by record as it is read (a bad record
        then raises ``WolkvoxInputError`` after the results of the records before it).
    :param options: how to send (batch size, single mode, requests in flight, dedupe field).
    :param total: the number of records, for progress lines, when ``records`` has no length.
    :param journal: where this load notes each request and outcome, and finds an earlier try's.
    """

    def __init__(
        self,
        client: WolkvoxClient,
        operation: str,
        module: str,
        records: Iterable[Mapping[str, Any]],
        options: LoadOptions | None = None,
        *,
        total: int | None = None,
        journal: Journal | None = None,
    ) -> None:
        check_records_argument(records)
        self.client = client
        self.operation = operation
        self.module = module
        self.options = options or LoadOptions()
        self.journal = journal
        self.sender = Sender(client, operation, module, self.options, journal)
        self.summary = LoadSummary()
        # A journal names records by their own JSON; other loads encode a batch at a time.
        encode_each = journal is not None or self.options.single
        prepared = prepare_records(records, encode=encode_each)
        if journal is not None:
            prepared = map(ContentKeys(module).assign, prepared)
        self._requests: Iterable[Request] = (
            self._journalled_requests(prepared, journal)
            if journal is not None
            else self._batches(prepared, encode_each)
        )
        if isinstance(records, Sequence):
            # In memory already: check and encode everything before the first request.
            self._requests = list(self._requests)
            self.total: int | None = len(records)
        else:
            self.total = total

    @property
    def stop_error(self) -> WolkvoxError | None:
        """The refusal that stopped the load (spent quota, refused token, CRM unavailable), if any."""
        return self.sender.stop_error

    @property
    def calls_to_finish(self) -> int:
        """API calls the records not sent yet need, when nothing fails."""
        return self.options.calls_needed(self.summary.counts[RecordStatus.NOT_SENT])

    @property
    def calls_needed(self) -> int | None:
        """API calls the load needs when nothing fails, if the record count is known."""
        return None if self.total is None else self.options.calls_needed(self.total)

    def check_quota(self, info: TokenInfo, *, reserve: int = 0) -> None:
        """Refuse this load when today's quota cannot cover it, before anything is sent.

        Its calls, plus the calls kept for settling lost answers (with a dedupe field) and the
        ``reserve`` left to the token's other users, must fit in the calls left today.

        :raises WolkvoxQuotaExceededError: the quota is short; says by how much and when it restarts.
        """
        needed = self.calls_needed
        if needed is None:
            raise WolkvoxInputError("quota_check needs the number of records: pass total= for this input")
        settling = settle_reserve(needed) if self.options.dedupe_field else 0
        if needed + settling + reserve > info.calls_left:
            restart = (
                "" if info.hours_to_reset is None else f"; the count restarts in {info.hours_to_reset:g} h"
            )
            raise WolkvoxQuotaExceededError(
                f"wolkvox quota check: loading {self.total} records needs {needed} calls, plus {settling} "
                f"kept for settling lost answers and {reserve} for the token's other users, but only "
                f"{info.calls_left} of {info.token_limit} are left today{restart}; nothing was sent"
            )
        log.info(
            "wolkvox quota check: %d calls needed (plus %d kept for settling lost answers, %d reserved), "
            "%d left today",
            needed,
            settling,
            reserve,
            info.calls_left,
        )

    def __iter__(self) -> Iterator[RecordResult]:
        options = self.options
        progress = Progress(
            "load", self.summary, self.client, self.total, options.progress_interval, module=self.module
        )
        started = progress.started
        try:
            with ThreadPoolExecutor(options.max_in_flight, thread_name_prefix="wolkvox-load") as pool:
                for results in ordered(pool, self._send_request, self._requests, ahead=options.max_in_flight):
                    for result in results:
                        self.summary.add(result)
                        yield result
                    progress.reused = self.sender.reused
                    progress.tick()
        finally:
            progress.count_calls()
            self.summary.elapsed_seconds = time.monotonic() - started
            if self.stop_error is not None:
                self.summary.stopped_reason = str(self.stop_error)
                log.error(
                    "wolkvox load stopped: %s; %d records were not sent",
                    self.stop_error,
                    self.summary.counts[RecordStatus.NOT_SENT],
                )

    def _batches(self, records: Iterable[PreparedRecord], encoded: bool) -> Iterator[Request]:
        """The input a request at a time, each batch encoded as it is read (an unencodable record
        raises ``WolkvoxInputError`` naming it, before its request)."""
        for group in chunks(records, self.options.records_per_request):
            yield group, None if encoded else batch_body(self.operation, self.module, group)

    def _journalled_requests(self, records: Iterable[PreparedRecord], journal: Journal) -> Iterator[Request]:
        """The input in groups holding one request's worth of records to send.

        Records an earlier try settled ride along in the group of the next records to send, so a
        later try sends ``ceil(left / batch_size)`` requests however the records left are spread.
        """

        def to_send(record: PreparedRecord) -> bool:
            note = journal.recall(str(record.key))
            return note is None or note.status in SEND_AGAIN

        for group in groups(records, to_send, self.options.records_per_request, GROUP_SPAN):
            yield group, None

    def _send_request(self, request: Request) -> list[RecordResult]:
        """The results of one request's worth of records: sent, or recalled from the journal."""
        records, body = request
        return (
            self.sender.send(records, body=body)
            if self.journal is None
            else self.sender.send_recalled(records)
        )
