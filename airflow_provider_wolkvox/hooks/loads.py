"""The hook's bulk-load and sync methods: thin front doors to the engines of the client layer."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from airflow_provider_wolkvox import api
from airflow_provider_wolkvox.client import BulkLoad, InsertManyResult, RecordResult, TokenInfo
from airflow_provider_wolkvox.client.journal import Journal
from airflow_provider_wolkvox.client.options import (
    DEFAULT_BATCH_SIZE,
    DEFAULT_PROGRESS_INTERVAL,
    LoadOptions,
    settle_reserve,
)
from airflow_provider_wolkvox.client.records import check_module, check_records_argument
from airflow_provider_wolkvox.client.results import UpsertResult
from airflow_provider_wolkvox.client.sync import SyncOptions, UpsertLoad
from airflow_provider_wolkvox.client.sync.engine import Source
from airflow_provider_wolkvox.exceptions import WolkvoxInputError, WolkvoxQuotaExceededError

log = logging.getLogger(__name__)

if TYPE_CHECKING:
    from airflow_provider_wolkvox.client import WolkvoxClient


class LoadMethods:
    """Mixed into :class:`~airflow_provider_wolkvox.hooks.wolkvox.WolkvoxHook`: loads and syncs."""

    if TYPE_CHECKING:  # provided by WolkvoxHook

        @property
        def client(self) -> WolkvoxClient: ...

        @property
        def log(self) -> Any: ...

        def operation_for(self, operation: str | None = None) -> str: ...

    def iter_insert_many(
        self,
        module: str,
        records: Iterable[Mapping[str, Any]],
        *,
        operation: str | None = None,
        batch_size: int = DEFAULT_BATCH_SIZE,
        single: bool = False,
        max_in_flight: int = api.MAX_IN_FLIGHT_PER_TOKEN,
        dedupe_field: str | None = None,
        total: int | None = None,
        quota_check: bool = False,
        progress_interval: float = DEFAULT_PROGRESS_INTERVAL,
        journal: Journal | None = None,
    ) -> BulkLoad:
        """A bulk load to iterate: one result per record, in input order, as records settle.

        Same parameters as :meth:`insert_many`; use this form to stream results (e.g. to a file)
        instead of holding them all. ``journal`` notes progress so that a later try of the task
        recognises the records this one created (see :mod:`airflow_provider_wolkvox.client.journal`).
        """
        options = LoadOptions(batch_size, single, max_in_flight, dedupe_field, progress_interval)
        return self.bulk_load(
            module,
            records,
            options,
            operation=operation,
            total=total,
            quota_check=quota_check,
            journal=journal,
        )

    def bulk_load(
        self,
        module: str,
        records: Iterable[Mapping[str, Any]],
        options: LoadOptions,
        *,
        operation: str | None = None,
        total: int | None = None,
        quota_check: bool = False,
        journal: Journal | None = None,
    ) -> BulkLoad:
        """:meth:`iter_insert_many` with its options as one :class:`LoadOptions` (for the operators)."""
        operation = self.operation_for(operation)
        load = BulkLoad(
            self.client, operation, check_module(module), records, options, total=total, journal=journal
        )
        if quota_check:
            check_quota(load, self.client.token_info(operation))
        return load

    def insert_many(
        self,
        module: str,
        records: Iterable[Mapping[str, Any]],
        *,
        operation: str | None = None,
        batch_size: int = DEFAULT_BATCH_SIZE,
        single: bool = False,
        max_in_flight: int = api.MAX_IN_FLIGHT_PER_TOKEN,
        dedupe_field: str | None = None,
        total: int | None = None,
        quota_check: bool = False,
        progress_interval: float = DEFAULT_PROGRESS_INTERVAL,
    ) -> InsertManyResult:
        """Create many records of ``module``; every input record gets a result, in input order.

        :param records: mappings of field label → value; any iterable, read lazily.
        :param batch_size: records per ``insertMany.php`` call (1 to 10,000).
        :param single: one ``insert.php`` call per record, for modules where batches are not wanted.
        :param max_in_flight: requests in flight at once, 1 or 2 (the CRM's limit per token).
        :param dedupe_field: a field unique per record: records whose request got no answer are
            looked up by it and re-sent only when absent (one or two calls per lost request).
        :param total: the number of records when ``records`` has no length (progress, quota check).
        :param quota_check: read the token's quota first and fail before inserting anything when
            the calls needed exceed the calls left today.
        :param progress_interval: seconds between progress lines in the log.
        :raises WolkvoxInputError: a bad record; for a lazy input found mid-load, the error's
            ``results`` holds the results of every record before it.
        """
        load = self.iter_insert_many(
            module,
            records,
            operation=operation,
            batch_size=batch_size,
            single=single,
            max_in_flight=max_in_flight,
            dedupe_field=dedupe_field,
            total=total,
            quota_check=quota_check,
            progress_interval=progress_interval,
        )
        results: list[RecordResult] = []
        try:
            results.extend(load)
        except WolkvoxInputError as error:
            error.results = results
            raise
        return InsertManyResult(results, load.summary)

    def iter_upsert_many(
        self,
        module: str,
        records: Iterable[Mapping[str, Any]],
        *,
        key_field: str,
        mode: str = "upsert",
        operation: str | None = None,
        lookup: str = "auto",
        refresh: bool = False,
        state_path: str | None = None,
        batch_size: int = DEFAULT_BATCH_SIZE,
        max_in_flight: int = api.MAX_IN_FLIGHT_PER_TOKEN,
        progress_interval: float = DEFAULT_PROGRESS_INTERVAL,
        journal: Journal | None = None,
    ) -> UpsertLoad:
        """A sync to iterate: a result per record, in input order. Same parameters as :meth:`upsert_many`."""
        options = SyncOptions(key_field, mode, lookup, refresh, batch_size, max_in_flight, progress_interval)
        check_records_argument(records)
        held = records if isinstance(records, Sequence) else list(records)  # read twice: held in memory
        return self.sync_load(
            module,
            lambda: enumerate(held),
            options,
            operation=operation,
            state_path=state_path,
            journal=journal,
        )

    def sync_load(
        self,
        module: str,
        source: Source,
        options: SyncOptions,
        *,
        operation: str | None = None,
        state_path: str | None = None,
        journal: Journal | None = None,
    ) -> UpsertLoad:
        """:meth:`iter_upsert_many` over a :data:`~airflow_provider_wolkvox.client.sync.engine.Source`
        with its options as one :class:`SyncOptions` (for the operators)."""
        return UpsertLoad(
            self.client,
            self.operation_for(operation),
            check_module(module),
            source,
            options,
            state_path=state_path,
            journal=journal,
        )

    def upsert_many(
        self,
        module: str,
        records: Iterable[Mapping[str, Any]],
        *,
        key_field: str,
        mode: str = "upsert",
        operation: str | None = None,
        lookup: str = "auto",
        refresh: bool = False,
        state_path: str | None = None,
        batch_size: int = DEFAULT_BATCH_SIZE,
        max_in_flight: int = api.MAX_IN_FLIGHT_PER_TOKEN,
        progress_interval: float = DEFAULT_PROGRESS_INTERVAL,
    ) -> UpsertResult:
        """Create, update or skip each record of ``module`` by ``key_field``; one result each, in input order.

        :param key_field: the field naming a record in the input and in the CRM; every record needs
            one, and no two records of the input the same.
        :param mode: ``"upsert"`` (create absent keys, update present ones), ``"insert_only"``
            (create absent keys, skip present ones), ``"update_only"`` (update present keys, skip
            absent ones: never create).
        :param lookup: how to learn which keys exist: ``"query"`` (one ``query.php`` call per key),
            ``"scan"`` (read the module by creation date, about one call per 1,000 records) or
            ``"auto"`` (the cheaper; see docs/syncs.md).
        :param refresh: look every key up in the CRM, ignoring the sync state (records edited in the
            CRM since the last run are then brought back to the input's values).
        :param state_path: a sync state file (local path or ``ObjectStoragePath`` URL): keys known
            there cost no look-up, and unchanged records no call; written whole at the end.
        :param batch_size: records per ``insertMany.php`` call of the creates.
        :param max_in_flight: requests in flight at once, 1 or 2.
        :raises WolkvoxInputError: a bad record, a record without its key or a key given twice,
            before anything is sent.
        """
        load = self.iter_upsert_many(
            module,
            records,
            key_field=key_field,
            mode=mode,
            operation=operation,
            lookup=lookup,
            refresh=refresh,
            state_path=state_path,
            batch_size=batch_size,
            max_in_flight=max_in_flight,
            progress_interval=progress_interval,
        )
        return UpsertResult(list(load), load.summary, load.plan)


def check_quota(load: BulkLoad, info: TokenInfo, *, reserve: int = 0) -> None:
    """Refuse a load that today's quota cannot cover, before anything is sent.

    The load's calls, plus the calls kept for settling lost answers (with a dedupe field) and the
    ``reserve`` left to the token's other users, must fit in the calls left today.

    :raises WolkvoxQuotaExceededError: the quota is short; says by how much and when it restarts.
    """
    needed = load.calls_needed
    if needed is None:
        raise WolkvoxInputError("quota_check needs the number of records: pass total= for this input")
    settling = settle_reserve(needed) if load.options.dedupe_field else 0
    if needed + settling + reserve > info.calls_left:
        restart = "" if info.hours_to_reset is None else f"; the count restarts in {info.hours_to_reset:g} h"
        raise WolkvoxQuotaExceededError(
            f"wolkvox quota check: loading {load.total} records needs {needed} calls, plus {settling} kept "
            f"for settling lost answers and {reserve} for the token's other users, but only "
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
