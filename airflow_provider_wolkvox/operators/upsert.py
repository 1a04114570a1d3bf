"""The sync operator: create, update or skip each record of a CRM module by a key field."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from airflow_provider_wolkvox import api
from airflow_provider_wolkvox.client import TokenInfo
from airflow_provider_wolkvox.exceptions import WolkvoxInputError
from airflow_provider_wolkvox.hooks.wolkvox import WolkvoxHook
from airflow_provider_wolkvox.loads import (
    DEFAULT_BATCH_SIZE,
    DEFAULT_MAX_DELETES,
    Journal,
    RecordResult,
    SyncLoad,
    SyncOptions,
)
from airflow_provider_wolkvox.operators.arguments import task_failure_semantics
from airflow_provider_wolkvox.operators.records_load import RecordsLoadOperator

if TYPE_CHECKING:
    from airflow.providers.common.compat.sdk import Context


class WolkvoxUpsertOperator(RecordsLoadOperator):
    """Sync records into a wolkvox CRM module by a key field: create absent keys, update present ones.

    Updates send only the fields whose values differ from the CRM's; a record the CRM already holds
    costs no write. With ``state_path``, a later run sends nothing for records unchanged since and
    looks up no key the state knows. Every record ends created, updated, unchanged, skipped (by the
    mode), rejected, ambiguous (its key matches several CRM records: nothing written), of unknown
    outcome or not sent; the task fails when more than ``max_failed_records`` were rejected,
    ambiguous, of unknown outcome or not sent, after every record was tried. The whole input is
    checked (every record with its key, no key twice) before the first request. A mirror sync then
    deletes the records of the tracked keys the input lacks (each ``deleted`` or ``already_absent``),
    within ``max_deletes``; a dry run writes nothing and returns the plan.

    :param module: the CRM module. (templated)
    :param key_field: the field naming a record in the input and in the CRM, e.g. ``"Email"``. (templated)
    :param records: a list of mappings, or a JSON array string. (templated)
    :param records_path: a ``.jsonl``/``.ndjson`` or ``.csv`` file, local or any ``ObjectStoragePath``.
        (templated)
    :param sql: a query whose rows are the records, its column names the field labels (or a ``.sql``
        file); run once, its rows checked into a local spool the sync reads (docs/operators.md,
        "SQL input"). (templated)
    :param sql_conn_id: the database Connection of ``sql`` (any with a ``DbApiHook``). (templated)
    :param sql_parameters: the parameters of ``sql``, in its driver's paramstyle. (templated)
    :param sql_fetch_size: rows fetched from the database at a time.
    :param state_path: the sync state file (local path or ``ObjectStoragePath`` URL), held by the
        task from before it is read until after it is written (a local one through a lock: see
        docs/syncs.md, "Running syncs safely"). With a ``state_path`` the operator runs one task
        instance at a time across DAG runs: ``max_active_tis_per_dag`` defaults to 1 (pass another
        value, here or in ``default_args``, to override it). (templated)
    :param mode: ``"upsert"``, ``"insert_only"`` (never update), ``"update_only"`` (never create) or
        ``"mirror"`` (as ``"upsert"``, then delete the records of the keys the sync state tracks that
        the input no longer holds; needs ``state_path``: see docs/syncs.md, "Mirror").
    :param lookup: ``"auto"``, ``"query"`` (one call per key) or ``"scan"`` (read the module).
    :param refresh: look every key up in the CRM, ignoring the sync state.
    :param results_path: one JSON line per record with its outcome. (templated)
    :param operation: the CRM operation; defaults to the Connection's extra. (templated)
    :param wolkvox_conn_id: the wolkvox Connection. (templated)
    :param batch_size: records per ``insertMany.php`` call of the creates.
    :param max_in_flight: requests in flight at once, 1 or 2.
    :param dry_run: make the look-ups only and write nothing (no create, update, delete, nor the
        state); return the plan: what the sync would do, the write calls that takes, the calls the
        dry run used and the quota left (docs/syncs.md, "Dry run").
    :param max_deletes: the most deletes a mirror sync may make: a count, or a fraction of the keys
        its state tracks (default 0.1, allowing at least 10). More, and the task fails before the
        sync's first call, without retries.
    :param max_failed_records: how many records may fail before the task fails.
    :param failed_records_limit: how many failed records the ``failed_records`` XCom lists at most.
    :param encoding: the text encoding of ``records_path``.
    :return: for ``records``, ``{key: wolkvox_id}`` of every key the CRM now holds; for
        ``records_path`` and ``sql``, a summary with the counts, the calls used and ``results_path``;
        with ``dry_run``, the plan's dict, whatever the input.
    """

    template_fields: Sequence[str] = (*RecordsLoadOperator.template_fields, "key_field", "state_path")

    def __init__(
        self,
        *,
        module: str,
        key_field: str,
        records: Sequence[Mapping[str, Any]] | str | None = None,
        records_path: str | None = None,
        state_path: str | None = None,
        mode: str = "upsert",
        lookup: str = "auto",
        refresh: bool = False,
        batch_size: int = DEFAULT_BATCH_SIZE,
        max_in_flight: int = api.MAX_IN_FLIGHT_PER_TOKEN,
        dry_run: bool = False,
        max_deletes: int | float = DEFAULT_MAX_DELETES,
        **kwargs: Any,
    ) -> None:
        if mode == "mirror" and state_path is None:
            raise WolkvoxInputError(
                "mode='mirror' needs a state_path: a mirror sync deletes only the records its sync state "
                "tracks, never one it does not know it wrote"
            )
        if state_path is not None and "max_active_tis_per_dag" not in {
            **(kwargs.get("default_args") or {}),
            **kwargs,
        }:
            kwargs["max_active_tis_per_dag"] = 1  # one sync at a time per state, across DAG runs
        super().__init__(module=module, records=records, records_path=records_path, **kwargs)
        self.key_field = key_field
        self.state_path = state_path
        self.mode = mode
        self.lookup = lookup
        self.refresh = refresh
        self.batch_size = batch_size
        self.max_in_flight = max_in_flight
        # Not ``self.dry_run``: that is BaseOperator's method (``airflow tasks test --dry-run``).
        self.sync_dry_run = dry_run
        self.max_deletes = max_deletes
        # Checked now, so that a DAG with a bad option fails to import rather than at run time.
        self._options()

    def _options(self) -> SyncOptions:
        return SyncOptions(
            key_field=self.key_field,
            mode=self.mode,
            lookup=self.lookup,
            refresh=self.refresh,
            batch_size=self.batch_size,
            max_in_flight=self.max_in_flight,
            dry_run=self.sync_dry_run,
            max_deletes=self.max_deletes,
        )

    def execute(self, context: Context) -> Any:
        if self.sync_dry_run:
            return self._dry_run()
        return super().execute(context)

    def _dry_run(self) -> dict[str, Any]:
        """The sync's look-ups and no write: the plan (``DryRunPlan.as_dict``), logged as a table."""
        hook = WolkvoxHook(self.wolkvox_conn_id)
        with task_failure_semantics(), self._sql_spooled(), hook.client:
            return self.start(hook, None, None).dry_run().as_dict()

    def start(self, hook: WolkvoxHook, journal: Journal | None, quota: TokenInfo | None) -> SyncLoad:
        if self.records is not None:
            records = self.in_memory_records()
            source: Any = lambda: enumerate(records)  # noqa: E731 - a fresh pass on each call
        else:
            at = self.source_position  # "line" of a file, "row" of SQL
            source = lambda: ((f"{at} {line}", record) for line, record in self.file_records())  # noqa: E731
        return hook.iter_upsert_many(
            self.module,
            source,
            operation=self.operation,
            state_path=self.state_path,
            journal=journal,
            options=self._options(),
        )

    def row_key_field(self) -> str | None:
        return self.key_field

    def returned(self, results: list[RecordResult]) -> dict[str, str]:
        # A mirror's deletes (not input records) name keys the CRM no longer holds.
        return {
            r.key: r.wolkvox_id
            for r in results
            if r.key is not None and r.wolkvox_id is not None and r.in_input
        }
