"""A sync's updates: one ``update.php`` call per record, with only the fields that changed.

An update the CRM refuses (any 4xx) is looked up by its key: the record is gone (deleted in the CRM
since the sync state was written) → created again in ``upsert`` mode, skipped in ``update_only``;
the key now names another record → that one is updated; several → ambiguous; the same record →
the update itself was refused, with the CRM's reason.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from airflow_provider_wolkvox import api
from airflow_provider_wolkvox.exceptions import WolkvoxBadRequestError, WolkvoxError, WolkvoxUncertainError
from airflow_provider_wolkvox.loads.compare import changed_fields, key_holders
from airflow_provider_wolkvox.loads.results import RecordResult, RecordStatus
from airflow_provider_wolkvox.loads.sender import Sender
from airflow_provider_wolkvox.loads.sync.plan import Decision, SyncOptions


class Updater:
    """Updates records for a sync, through the sync's sender (its client, journal and stop state).

    :param create_again: creates the record of a decision whose CRM record is gone.
    """

    def __init__(
        self, sender: Sender, options: SyncOptions, create_again: Callable[[Decision], RecordResult]
    ) -> None:
        self.sender = sender
        self.options = options
        self.create_again = create_again

    def update(self, decision: Decision, *, after_refusal: bool = False) -> RecordResult:
        sender, record = self.sender, decision.record
        assert decision.update_id is not None
        if sender.stop_error is not None:
            return self._failed(decision, RecordStatus.NOT_SENT, sender.stop_error)
        fields = {name: record.fields[name] for name in decision.fields}
        try:
            sender.client.update(sender.operation, sender.module, decision.update_id, fields)
        except WolkvoxBadRequestError as refusal:
            if after_refusal:
                return self._failed(decision, RecordStatus.REJECTED, refusal)
            return self._refused(decision, refusal)
        except WolkvoxUncertainError as error:  # retried already: it may or may not have been applied
            return self._failed(decision, RecordStatus.OUTCOME_UNKNOWN, error)
        except WolkvoxError as error:  # a spent quota, a refused token: nothing more goes out
            sender.stop(error)
            return self._failed(decision, RecordStatus.NOT_SENT, error)
        result = RecordResult(
            record.index, RecordStatus.UPDATED, decision.update_id, key=decision.key, fields=decision.fields
        )
        if sender.journal is not None:
            sender.journal.settled(None, [(str(record.key), result)], time.time())
        return result

    def _refused(self, decision: Decision, refusal: WolkvoxBadRequestError) -> RecordResult:
        sender, key_field, record = self.sender, self.options.key_field, decision.record
        try:
            matches = sender.client.query(
                sender.operation, sender.module, key_field, record.fields[key_field]
            )
        except WolkvoxError as error:
            if error.fail_fast:
                sender.stop(error)
            return self._failed(decision, RecordStatus.REJECTED, refusal)
        holders = key_holders(matches, key_field, decision.key)
        ids = tuple(str(holder[api.ID_FIELD]) for holder in holders)
        if len(holders) > 1:
            return RecordResult(record.index, RecordStatus.AMBIGUOUS, key=decision.key, matches=ids)
        if not holders:
            if self.options.mode == "update_only":
                return RecordResult(record.index, RecordStatus.SKIPPED, key=decision.key)
            return self.create_again(decision)
        if ids[0] == decision.update_id:
            return self._failed(decision, RecordStatus.REJECTED, refusal)
        decision.update_id = ids[0]
        decision.fields = changed_fields(record.fields, holders[0])
        if not decision.fields:
            return RecordResult(record.index, RecordStatus.UNCHANGED, ids[0], key=decision.key)
        return self.update(decision, after_refusal=True)

    @staticmethod
    def _failed(decision: Decision, status: RecordStatus, error: WolkvoxError) -> RecordResult:
        return RecordResult(
            decision.record.index,
            status,
            error=error.error,
            msg=error.msg or str(error),
            cause=error,
            key=decision.key,
        )
