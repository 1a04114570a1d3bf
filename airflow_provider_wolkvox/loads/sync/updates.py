"""A sync's updates: one ``update.php`` call per record, with only the fields that changed.

An update the CRM refuses (any 4xx) is looked up by its key: the record is gone (deleted in the CRM
since the sync state was written) → created again in ``upsert`` mode, skipped in ``update_only``;
the key now names another record → that one is updated; several → ambiguous; the same record →
the update itself was refused, with the CRM's reason.

A create the CRM refuses (any 4xx) may have met a key another writer created after the sync's
look-up (a unique field refuses the second record): the key is looked up once more and, when found,
updated (``upsert``) or skipped with its id (``insert_only``), never reported rejected. Every
look-up here sends the key's identity (``compare.key_text``), as the first one did.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from typing import Any

from airflow_provider_wolkvox import api
from airflow_provider_wolkvox.exceptions import WolkvoxBadRequestError, WolkvoxError, WolkvoxUncertainError
from airflow_provider_wolkvox.loads.compare import changed_fields
from airflow_provider_wolkvox.loads.results import RecordResult, RecordStatus
from airflow_provider_wolkvox.loads.sender import Sender
from airflow_provider_wolkvox.loads.sync.index import Known
from airflow_provider_wolkvox.loads.sync.lookup import look_up_key
from airflow_provider_wolkvox.loads.sync.plan import Decision, SyncOptions
from airflow_provider_wolkvox.loads.sync.state import field_hashes

log = logging.getLogger(__name__)


def changes(fields: Mapping[str, Any], holder: Mapping[str, Any], key_field: str) -> tuple[str, ...]:
    """The fields of a record to write to the CRM record ``holder`` that holds its key: those whose
    value differs, never the key itself (``holder`` holds it, maybe in another equivalent form)."""
    return tuple(name for name in changed_fields(fields, holder) if name != key_field)


def changed_by_hashes(fields: dict[str, Any], known: Known, key_field: str) -> tuple[str, ...]:
    """The fields whose value differs from the one last written, by the state's digests; never the
    key, which the record holds by its identity (a state may have digested another form of it)."""
    hashes = known.hashes or {}
    now = field_hashes(fields)
    return tuple(name for name, digest in now.items() if hashes.get(name) != digest and name != key_field)


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
        record = decision.record
        holders = self._holders(decision)
        if holders is None:
            return self._failed(decision, RecordStatus.REJECTED, refusal)
        ids = tuple(str(holder[api.ID_FIELD]) for holder in holders)
        if len(holders) > 1:
            return RecordResult(record.index, RecordStatus.AMBIGUOUS, key=decision.key, matches=ids)
        if not holders:
            if self.options.mode == "update_only":
                return RecordResult(record.index, RecordStatus.SKIPPED, key=decision.key)
            return self.create_again(decision)
        if ids[0] == decision.update_id:
            return self._failed(decision, RecordStatus.REJECTED, refusal)
        return self._update_holder(decision, holders[0])

    def taken(self, decision: Decision, refused: RecordResult) -> RecordResult:
        """What became of the record of a create the CRM refused (``refused``): when its key is held
        now (another writer created it after the look-up), that record updated (``upsert``) or
        left alone (``insert_only``); else the refusal. One ``query.php`` call."""
        if self.sender.stop_error is not None:
            return refused
        holders = self._holders(decision)
        if not holders:
            return refused
        ids = tuple(str(holder[api.ID_FIELD]) for holder in holders)
        log.info(
            "wolkvox refused creating key %r (%s) and the CRM now holds it (record %s): another writer "
            "created it after the look-up",
            decision.key,
            refused.msg,
            ", ".join(ids),
        )
        record = decision.record
        if len(holders) > 1:
            return RecordResult(record.index, RecordStatus.AMBIGUOUS, key=decision.key, matches=ids)
        if self.options.mode == "insert_only":
            return RecordResult(record.index, RecordStatus.SKIPPED, ids[0], key=decision.key)
        return self._update_holder(decision, holders[0])

    def _holders(self, decision: Decision) -> list[dict[str, Any]] | None:
        """The CRM records holding the decision's key, by its identity; None when the look-up failed."""
        sender = self.sender
        try:
            return look_up_key(
                sender.client, sender.operation, sender.module, self.options.key_field, decision.key
            )
        except WolkvoxError as error:
            if error.fail_fast:
                sender.stop(error)
            return None

    def _update_holder(self, decision: Decision, holder: dict[str, Any]) -> RecordResult:
        """Write the changed fields of the decision's record to ``holder``, the CRM record holding its key."""
        decision.update_id = str(holder[api.ID_FIELD])
        decision.fields = changes(decision.record.fields, holder, self.options.key_field)
        if not decision.fields:
            return RecordResult(
                decision.record.index, RecordStatus.UNCHANGED, decision.update_id, key=decision.key
            )
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
