"""The sync operator: create, update or skip each record of a CRM module by a key field."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from airflow_provider_wolkvox import api
from airflow_provider_wolkvox.client import TokenInfo
from airflow_provider_wolkvox.hooks.wolkvox import WolkvoxHook
from airflow_provider_wolkvox.loads import DEFAULT_BATCH_SIZE, Journal, RecordResult, SyncLoad, SyncOptions
from airflow_provider_wolkvox.operators.records_load import RecordsLoadOperator


class WolkvoxUpsertOperator(RecordsLoadOperator):
    """Sync records into a wolkvox CRM module by a key field: create absent keys, update present ones.

    Updates send only the fields whose values differ from the CRM's; a record the CRM already holds
    costs no write. With ``state_path``, a later run sends nothing for records unchanged since and
    looks up no key the state knows. Every record ends created, updated, unchanged, skipped (by the
    mode), rejected, ambiguous (its key matches several CRM records: nothing written), of unknown
    outcome or not sent; the task fails when more than ``max_failed_records`` were rejected,
    ambiguous, of unknown outcome or not sent, after every record was tried. The whole input is
    checked (every record with its key, no key twice) before the first request.

    :param module: the CRM module. (templated)
    :param key_field: the field naming a record in the input and in the CRM, e.g. ``"Email"``. (templated)
    :param records: a list of mappings, or a JSON array string. (templated)
    :param records_path: a ``.jsonl``/``.ndjson`` or ``.csv`` file, local or any ``ObjectStoragePath``.
        (templated)
    :param state_path: the sync state file (local path or ``ObjectStoragePath`` URL), held by the
        task from before it is read until after it is written (a local one through a lock: see
        docs/syncs.md, "Running syncs safely"). With a ``state_path`` the operator runs one task
        instance at a time across DAG runs: ``max_active_tis_per_dag`` defaults to 1 (pass another
        value, here or in ``default_args``, to override it). (templated)
    :param mode: ``"upsert"``, ``"insert_only"`` (never update) or ``"update_only"`` (never create).
    :param lookup: ``"auto"``, ``"query"`` (one call per key) or ``"scan"`` (read the module).
    :param refresh: look every key up in the CRM, ignoring the sync state.
    :param results_path: one JSON line per record with its outcome. (templated)
    :param operation: the CRM operation; defaults to the Connection's extra. (templated)
    :param wolkvox_conn_id: the wolkvox Connection. (templated)
    :param batch_size: records per ``insertMany.php`` call of the creates.
    :param max_in_flight: requests in flight at once, 1 or 2.
    :param max_failed_records: how many records may fail before the task fails.
    :param failed_records_limit: how many failed records the ``failed_records`` XCom lists at most.
    :param encoding: the text encoding of ``records_path``.
    :return: for ``records``, ``{key: wolkvox_id}`` of every key the CRM now holds; for
        ``records_path``, a summary with the counts, the calls used and ``results_path``.
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
        **kwargs: Any,
    ) -> None:
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
        )

    def start(self, hook: WolkvoxHook, journal: Journal | None, quota: TokenInfo | None) -> SyncLoad:
        if self.records_path is None:
            records = self.in_memory_records()
            source: Any = lambda: enumerate(records)  # noqa: E731 - a fresh pass on each call
        else:
            source = lambda: ((f"line {line}", record) for line, record in self.file_records())  # noqa: E731
        return hook.iter_upsert_many(
            self.module,
            source,
            operation=self.operation,
            state_path=self.state_path,
            journal=journal,
            options=self._options(),
        )

    def returned(self, results: list[RecordResult]) -> dict[str, str]:
        return {r.key: r.wolkvox_id for r in results if r.key is not None and r.wolkvox_id is not None}
