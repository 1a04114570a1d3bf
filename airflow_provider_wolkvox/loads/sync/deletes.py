"""A mirror sync's deletes: the records of the keys its state tracks that the input no longer holds.

Only tracked keys are ever deleted: a key enters the sync state when a sync of it created, updated,
found (unchanged) or skipped its record, and the id deleted is the one the state holds for it. The
records go ``batch_size`` ids per ``delete.php`` call; a batch the CRM refuses is split until the
refused ids stand alone (``isolation.py``), as a load's creates are. A single id refused (any 4xx that
names no problem with the request itself) is looked up by its key, one ``query.php`` call: when no
record holding the key has that id, the record is gone already (deleted in the CRM since the last
run, or by a try whose answer was lost) and reported ``already_absent``; when it is there, the
delete is ``rejected`` with the CRM's reason. The CRM's text for an id that does not exist is not
public, so it is not relied on. Deleted and already-absent keys leave the sync state; the others
stay tracked, to be tried again by the next run.

Before its first call a mirror sync compares the keys to delete with ``max_deletes``
(:meth:`SyncOptions.delete_limit`): more, and it stops (:func:`delete_guard_error`).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from airflow_provider_wolkvox import api
from airflow_provider_wolkvox.exceptions import (
    WolkvoxBadRequestError,
    WolkvoxDeleteGuardError,
    WolkvoxError,
    WolkvoxUncertainError,
)
from airflow_provider_wolkvox.loads.isolation import isolate, refuses_the_request
from airflow_provider_wolkvox.loads.results import NOT_IN_INPUT, RecordResult, RecordStatus
from airflow_provider_wolkvox.loads.sender import Sender
from airflow_provider_wolkvox.loads.sync.index import SyncIndex
from airflow_provider_wolkvox.loads.sync.lookup import look_up_key
from airflow_provider_wolkvox.loads.sync.plan import MIN_DELETES_ALLOWED, SyncOptions, SyncPlan

log = logging.getLogger(__name__)

#: One record to delete: its wolkvox_id and the tracked keys naming it (one, but for a record whose
#: key the state learned twice).
Doomed = tuple[str, tuple[str, ...]]


class Deleter:
    """Deletes records for a mirror sync, through the sync's sender (its client and stop state)."""

    def __init__(self, sender: Sender, key_field: str) -> None:
        self.sender = sender
        self.key_field = key_field

    def delete(self, batch: Sequence[Doomed]) -> list[RecordResult]:
        """Delete the records of ``batch`` in one call, isolating refused ids; one result per key."""
        outcome = self._request(batch)
        if isinstance(outcome, WolkvoxBadRequestError):
            return isolate(batch, outcome, self._request, what="deletes")
        return outcome

    def _request(self, batch: Sequence[Doomed]) -> list[RecordResult] | WolkvoxBadRequestError:
        """One ``delete.php`` call; a batch of several refused for its ids comes back as the error."""
        sender = self.sender
        if sender.stop_error is not None:
            return _results(batch, RecordStatus.NOT_SENT, sender.stop_error)
        try:
            sender.client.delete(sender.operation, sender.module, [wolkvox_id for wolkvox_id, _ in batch])
        except WolkvoxBadRequestError as refusal:
            if refuses_the_request(refusal):
                sender.stop(refusal)
                return _results(batch, RecordStatus.NOT_SENT, refusal)
            return refusal if len(batch) > 1 else self._refused(batch[0], refusal)
        except WolkvoxUncertainError as error:  # retried already: it may or may not have been applied
            return _results(batch, RecordStatus.OUTCOME_UNKNOWN, error)
        except WolkvoxError as error:  # a spent quota, a refused token: nothing more goes out
            sender.stop(error)
            return _results(batch, RecordStatus.NOT_SENT, error)
        return _results(batch, RecordStatus.DELETED)

    def _refused(self, doomed: Doomed, refusal: WolkvoxBadRequestError) -> list[RecordResult]:
        """A delete of one id refused: ``already_absent`` when no record holding its key has the id
        (by a ``query.php`` look-up of each of its keys), else ``rejected`` with the CRM's reason."""
        sender = self.sender
        wolkvox_id, keys = doomed
        try:
            holders = {
                str(holder[api.ID_FIELD])
                for key in keys
                for holder in look_up_key(sender.client, sender.operation, sender.module, self.key_field, key)
            }
        except WolkvoxError as error:
            if error.fail_fast:
                sender.stop(error)
            return _results([doomed], RecordStatus.REJECTED, refusal)
        if wolkvox_id in holders:
            return _results([doomed], RecordStatus.REJECTED, refusal)
        log.info(
            "wolkvox: the record %s of key %s is not in the CRM any more (deleted since the last run): "
            "already absent, forgotten by the sync state",
            wolkvox_id,
            ", ".join(repr(key) for key in keys),
        )
        return _results([doomed], RecordStatus.ALREADY_ABSENT)


def guard_deletes(module: str, options: SyncOptions, plan: SyncPlan, index: SyncIndex) -> int:
    """The deletes ``max_deletes`` allows a mirror sync (0 for another mode), its plan's ``tracked``
    and ``to_delete`` counted.

    :raises WolkvoxDeleteGuardError: the input lacks more tracked keys than that, unless a dry run.
    """
    if options.mode != "mirror":
        return 0
    plan.tracked, plan.to_delete = index.tracked(), index.tracked_absent()
    allowed = options.delete_limit(plan.tracked)
    if plan.to_delete > allowed and not options.dry_run:
        raise delete_guard_error(module, options, plan, allowed)
    return allowed


def delete_guard_error(
    module: str, options: SyncOptions, plan: SyncPlan, allowed: int
) -> WolkvoxDeleteGuardError:
    """The error of a mirror sync whose input lacks more tracked keys than ``max_deletes`` allows,
    with the plan's counts."""
    share = 100 * plan.to_delete / max(plan.tracked, 1)
    limit = options.max_deletes
    rule = (
        f"{limit * 100:g} % of the tracked keys, at least {MIN_DELETES_ALLOWED}"
        if isinstance(limit, float)
        else "a count"
    )
    message = (
        f"wolkvox mirror sync of module {module!r} by {options.key_field!r} stopped before its first "
        f"call, nothing written: {plan.to_delete:,} of the {plan.tracked:,} keys its state tracks "
        f"({share:.1f} %) are absent from the input, more than max_deletes={limit!r} allows "
        f"({allowed:,}: {rule}). The input has {plan.records:,} records: {plan.known:,} known from the "
        f"state ({plan.changed:,} changed), {plan.to_look_up:,} to look up. A source cut short (a "
        "failed export, a query that lost a join) looks like this: check it. If these deletes are "
        "meant, run with a higher max_deletes (a count, or a fraction up to 1.0); a dry run "
        "(dry_run=True) lists what the sync would write"
    )
    return WolkvoxDeleteGuardError(message, deletes=plan.to_delete, allowed=allowed, tracked=plan.tracked)


def delete_calls(ids: int, batch_size: int) -> int:
    """``delete.php`` calls the deletes of ``ids`` records take when the CRM refuses none."""
    return -(-ids // batch_size)


def _results(
    batch: Sequence[Doomed], status: RecordStatus, error: WolkvoxError | None = None
) -> list[RecordResult]:
    msg = None if error is None else error.msg or str(error)
    return [
        RecordResult(
            NOT_IN_INPUT,
            status,
            wolkvox_id,
            error=None if error is None else error.error,
            msg=msg,
            cause=error,
            key=key,
        )
        for wolkvox_id, keys in batch
        for key in keys
    ]
