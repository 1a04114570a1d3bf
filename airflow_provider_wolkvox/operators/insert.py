"""Operators that insert wolkvox CRM records: task semantics only (templating, XCom, fail-fast).

Everything about HTTP, retries and batching lives in the hook and the client below it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, ClassVar

from airflow.providers.common.compat.sdk import BaseOperator

from airflow_provider_wolkvox import api
from airflow_provider_wolkvox.client import TokenInfo
from airflow_provider_wolkvox.hooks.wolkvox import WolkvoxHook
from airflow_provider_wolkvox.loads import DEFAULT_BATCH_SIZE, BulkLoad, Journal, LoadOptions, RecordResult
from airflow_provider_wolkvox.operators.arguments import (
    RendersJsonArguments,
    mapping_argument,
    task_failure_semantics,
)
from airflow_provider_wolkvox.operators.checkpoint import task_state_journal
from airflow_provider_wolkvox.operators.lineage import LineageTarget, record_outlet_counts
from airflow_provider_wolkvox.operators.records_load import RecordsLoadOperator, WolkvoxLineage
from airflow_provider_wolkvox.sources import check_records_file

if TYPE_CHECKING:
    from airflow.providers.common.compat.sdk import Context


class WolkvoxInsertOperator(RendersJsonArguments, WolkvoxLineage, BaseOperator):
    """Create one record in a wolkvox CRM module and return its ``wolkvox_id`` (XCom ``return_value``).

    :param module: the CRM module, e.g. ``"contacts"``. (templated)
    :param fields: field label → value, as a mapping or a JSON object string; values may be
        ``datetime``, ``date`` or ``Decimal`` (see :mod:`airflow_provider_wolkvox.fields`). (templated)
    :param operation: the CRM operation; defaults to the Connection's extra ``operation``. (templated)
    :param wolkvox_conn_id: the wolkvox Connection. (templated)
    :param dedupe_field: a field unique per record; when the answer to the insert is lost, the
        record is looked up by it and sent again only if absent (one extra call, once the request's
        timeout has passed since it was sent).

    Where Airflow has a task state store (3.3+), a retry or clear of the task returns the id an
    earlier try created instead of creating the record again.
    """

    template_fields: Sequence[str] = ("module", "fields", "operation", "wolkvox_conn_id")
    template_fields_renderers: ClassVar[dict[str, str]] = {"fields": "json"}
    json_arguments = ("fields",)
    ui_color = "#e8f0fe"

    def __init__(
        self,
        *,
        module: str,
        fields: Mapping[str, Any] | str,
        operation: str | None = None,
        wolkvox_conn_id: str = WolkvoxHook.default_conn_name,
        dedupe_field: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.module = module
        self.fields = fields
        self.operation = operation
        self.wolkvox_conn_id = wolkvox_conn_id
        self.dedupe_field = dedupe_field

    def execute(self, context: Context) -> str:
        hook = WolkvoxHook(self.wolkvox_conn_id)
        with task_failure_semantics(), hook.client:
            fields = mapping_argument(self.fields, "fields")
            operation = hook.operation_for(self.operation)
            wolkvox_id = hook.insert(
                self.module,
                fields,
                operation=operation,
                dedupe_field=self.dedupe_field,
                journal=task_state_journal(context, self.log),
            )
        # Field values are personal data: the log names the record, not its content.
        self.log.info(
            "Created wolkvox record %s in module %r of operation %r", wolkvox_id, self.module, operation
        )
        self._lineage = LineageTarget(hook.client.base_url, operation, self.module, 1)
        counts = {"total": 1, "created": 1, "calls": hook.client.calls}
        record_outlet_counts(self.outlets, context, self._lineage, counts)
        return wolkvox_id


class WolkvoxInsertManyOperator(RecordsLoadOperator):
    """Create many records of one wolkvox CRM module in few API calls; report every record.

    Give the records in memory (``records``), as a file (``records_path``) or as the rows of a SQL
    query (``sql``, on the database Connection ``sql_conn_id``). Every record
    ends created (with its id), rejected (with the server's reason), of unknown outcome, or not
    sent; the task fails when more than ``max_failed_records`` did not end created, after every
    record was tried. The whole input is checked before the first request.

    :param module: the CRM module. (templated)
    :param records: a list of mappings (field label → value), or a JSON array string. (templated)
    :param records_path: a ``.jsonl``/``.ndjson`` or ``.csv`` file, local or any URL Airflow's
        ``ObjectStoragePath`` reads (``s3://``, ``gs://``, ...); streamed, never held whole. (templated)
    :param sql: a query whose rows are the records, its column names the field labels (or a ``.sql``
        file); run once, its rows checked into a local spool the load reads (docs/operators.md,
        "SQL input"). (templated)
    :param sql_conn_id: the database Connection of ``sql`` (any with a ``DbApiHook``). (templated)
    :param sql_parameters: the parameters of ``sql``, in its driver's paramstyle. (templated)
    :param sql_fetch_size: rows fetched from the database at a time.
    :param results_path: where to write one JSON line per record with its outcome. (templated)
    :param operation: the CRM operation; defaults to the Connection's extra. (templated)
    :param wolkvox_conn_id: the wolkvox Connection. (templated)
    :param batch_size: records per ``insertMany.php`` call.
    :param single: one ``insert.php`` call per record instead of batches.
    :param max_in_flight: requests in flight at once, 1 or 2 (the CRM's limit per token).
    :param dedupe_field: a field unique per record, used to settle records of unknown outcome.
    :param max_failed_records: how many records may fail before the task fails.
    :param quota_check: fail before sending anything when today's quota (less ``quota_reserve``)
        cannot cover the load; with ``on_quota_exhausted="wait"`` the load waits instead.
    :param failed_records_limit: how many failed records the ``failed_records`` XCom lists at most.
    :param encoding: the text encoding of ``records_path`` (e.g. ``"latin-1"`` for some exports).
    :return: for ``records``, the ids in input order (None where none); for ``records_path`` and
        ``sql``, a summary with the counts and ``results_path``.
    """

    def __init__(
        self,
        *,
        module: str,
        records: Sequence[Mapping[str, Any]] | str | None = None,
        records_path: str | None = None,
        batch_size: int = DEFAULT_BATCH_SIZE,
        single: bool = False,
        max_in_flight: int = api.MAX_IN_FLIGHT_PER_TOKEN,
        dedupe_field: str | None = None,
        quota_check: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(module=module, records=records, records_path=records_path, **kwargs)
        self.load_options = LoadOptions(
            batch_size=batch_size, single=single, max_in_flight=max_in_flight, dedupe_field=dedupe_field
        )
        self.quota_check = quota_check

    def start(self, hook: WolkvoxHook, journal: Journal | None, quota: TokenInfo | None) -> BulkLoad:
        if self.records is not None:
            records: Iterable[Mapping[str, Any]] = self.in_memory_records()
            total = None
        else:  # a file, or the rows of ``sql`` spooled (checked as they were)
            total = (
                self.spool.rows
                if self.spool
                else check_records_file(self.records_path or "", encoding=self.encoding)
            )
            records = (record for _, record in self.file_records())
        load = hook.iter_insert_many(
            self.module,
            records,
            operation=self.operation,
            total=total,
            journal=journal,
            options=self.load_options,
        )
        # Waiting for the quota, a load sends what today's quota allows: there is nothing to refuse.
        if self.quota_check and self.on_quota_exhausted == "fail":
            load.check_quota(quota or hook.token_info(operation=self.operation), reserve=self.quota_reserve)
        return load

    def results_key_field(self) -> str | None:
        return self.load_options.dedupe_field

    def returned(self, results: list[RecordResult]) -> list[str | None]:
        return [result.wolkvox_id for result in results]
