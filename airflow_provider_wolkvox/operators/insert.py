"""Operators that insert wolkvox CRM records: task semantics only (templating, XCom, fail-fast).

Everything about HTTP, retries and batching lives in the hook and the client below it.
"""

from __future__ import annotations

import ast
import json
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, ClassVar

from airflow.providers.common.compat.sdk import AirflowFailException, BaseOperator

from airflow_provider_wolkvox import api
from airflow_provider_wolkvox.client import LoadSummary, RecordResult, RecordStatus
from airflow_provider_wolkvox.client.bulk import BulkLoad
from airflow_provider_wolkvox.client.options import DEFAULT_BATCH_SIZE, LoadOptions
from airflow_provider_wolkvox.exceptions import WolkvoxError, WolkvoxInputError
from airflow_provider_wolkvox.hooks.wolkvox import WolkvoxHook
from airflow_provider_wolkvox.operators.checkpoint import task_state_journal
from airflow_provider_wolkvox.operators.lineage import LineageTarget, operator_lineage
from airflow_provider_wolkvox.sources import DEFAULT_ENCODING, check_records_file, open_text, read_records

if TYPE_CHECKING:
    from airflow.providers.common.compat.sdk import Context


class _WolkvoxLineage:
    """OpenLineage support shared by the insert operators: ``execute`` sets ``_lineage``."""

    _lineage: LineageTarget | None = None

    def get_openlineage_facets_on_complete(self, task_instance: Any) -> Any:
        return operator_lineage(self._lineage)


class WolkvoxInsertOperator(_WolkvoxLineage, BaseOperator):
    """Create one record in a wolkvox CRM module and return its ``wolkvox_id`` (XCom ``return_value``).

    :param module: the CRM module, e.g. ``"contacts"``. (templated)
    :param fields: field label → value, as a mapping or a JSON object string; values may be
        ``datetime``, ``date`` or ``Decimal`` (see :mod:`airflow_provider_wolkvox.fields`). (templated)
    :param operation: the CRM operation; defaults to the Connection's extra ``operation``. (templated)
    :param wolkvox_conn_id: the wolkvox Connection. (templated)
    :param dedupe_field: a field unique per record; when the answer to the insert is lost, the
        record is looked up by it and sent again only if absent (one extra call).
    """

    template_fields: Sequence[str] = ("module", "fields", "operation", "wolkvox_conn_id")
    template_fields_renderers: ClassVar[dict[str, str]] = {"fields": "json"}
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
            wolkvox_id = hook.insert(self.module, fields, operation=operation, dedupe_field=self.dedupe_field)
        # Field values are personal data: the log names the record, not its content.
        self.log.info(
            "Created wolkvox record %s in module %r of operation %r", wolkvox_id, self.module, operation
        )
        self._lineage = LineageTarget(hook.client.base_url, operation, self.module, 1)
        return wolkvox_id


class WolkvoxInsertManyOperator(_WolkvoxLineage, BaseOperator):
    """Create many records of one wolkvox CRM module in few API calls; report every record.

    Give the records either in memory (``records``) or as a file (``records_path``). Every record
    ends created (with its id), rejected (with the server's reason), of unknown outcome, or not
    sent; the task fails when more than ``max_failed_records`` did not end created, after every
    record was tried. The whole input is checked before the first request.

    :param module: the CRM module. (templated)
    :param records: a list of mappings (field label → value), or a JSON array string. (templated)
    :param records_path: a ``.jsonl``/``.ndjson`` or ``.csv`` file, local or any URL Airflow's
        ``ObjectStoragePath`` reads (``s3://``, ``gs://``, ...); streamed, never held whole. (templated)
    :param results_path: where to write one JSON line per record with its outcome. (templated)
    :param operation: the CRM operation; defaults to the Connection's extra. (templated)
    :param wolkvox_conn_id: the wolkvox Connection. (templated)
    :param batch_size: records per ``insertMany.php`` call.
    :param single: one ``insert.php`` call per record instead of batches.
    :param max_in_flight: requests in flight at once, 1 or 2 (the CRM's limit per token).
    :param dedupe_field: a field unique per record, used to settle records of unknown outcome.
    :param max_failed_records: how many records may fail before the task fails.
    :param quota_check: fail before sending anything when today's quota cannot cover the load.
    :param failed_records_limit: how many failed records the ``failed_records`` XCom lists at most.
    :param encoding: the text encoding of ``records_path`` (e.g. ``"latin-1"`` for some exports).
    :return: for ``records``, the ids in input order (None where none); for ``records_path``, a
        summary with the counts and ``results_path``.
    """

    template_fields: Sequence[str] = (
        "module",
        "records",
        "records_path",
        "results_path",
        "operation",
        "wolkvox_conn_id",
    )
    template_fields_renderers: ClassVar[dict[str, str]] = {"records": "json"}
    ui_color = "#e8f0fe"

    def __init__(
        self,
        *,
        module: str,
        records: Sequence[Mapping[str, Any]] | str | None = None,
        records_path: str | None = None,
        results_path: str | None = None,
        operation: str | None = None,
        wolkvox_conn_id: str = WolkvoxHook.default_conn_name,
        batch_size: int = DEFAULT_BATCH_SIZE,
        single: bool = False,
        max_in_flight: int = api.MAX_IN_FLIGHT_PER_TOKEN,
        dedupe_field: str | None = None,
        max_failed_records: int = 0,
        quota_check: bool = False,
        failed_records_limit: int = 100,
        encoding: str = DEFAULT_ENCODING,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if (records is None) == (records_path is None):
            raise ValueError("give exactly one of records and records_path")
        self.load_options = LoadOptions(batch_size, single, max_in_flight, dedupe_field)
        self.module = module
        self.records = records
        self.records_path = records_path
        self.results_path = results_path
        self.operation = operation
        self.wolkvox_conn_id = wolkvox_conn_id
        self.max_failed_records = max_failed_records
        self.quota_check = quota_check
        self.failed_records_limit = failed_records_limit
        self.encoding = encoding

    def execute(self, context: Context) -> list[str | None] | dict[str, Any]:
        hook = WolkvoxHook(self.wolkvox_conn_id)
        with task_failure_semantics(), hook.client:
            if self.records_path is None:
                records: Iterable[Mapping[str, Any]] = sequence_argument(self.records, "records")
                total = None
            else:
                total = check_records_file(self.records_path, encoding=self.encoding)
                records = (record for _, record in read_records(self.records_path, encoding=self.encoding))
            journal = task_state_journal(context, self.log)
            load = hook.bulk_load(
                self.module,
                records,
                self.load_options,
                operation=self.operation,
                total=total,
                quota_check=self.quota_check,
                journal=journal,
            )
            ids, failed = self._consume(load, resumable=journal is not None)
        summary = load.summary
        self.log.info("wolkvox load of module %r: %s", self.module, summary.as_dict())
        self._lineage = LineageTarget(hook.client.base_url, load.operation, load.module, summary.created)
        context["ti"].xcom_push(key="failed_records", value=[result.as_dict() for result in failed])
        self._fail_if_too_many(load, failed, resumable=journal is not None)
        if self.records_path is None:
            return ids
        return {**summary.as_dict(), "results_path": self.results_path}

    def _consume(self, load: BulkLoad, *, resumable: bool) -> tuple[list[str | None], list[RecordResult]]:
        """Drain the load: ids in memory (for in-memory input), results to the results file.

        A load cut short after requests went out (a results file that fails, a task timeout) fails
        without task retries unless a journal lets the retry skip what was sent.
        """
        keep_ids = self.records_path is None
        ids: list[str | None] = []
        failed: list[RecordResult] = []
        try:
            with _results_writer(self.results_path) as write:
                for result in load:
                    if keep_ids:
                        ids.append(result.wolkvox_id)
                    if result.failed and len(failed) < self.failed_records_limit:
                        failed.append(result)
                    write(result)
        except BaseException as error:
            if resumable or load.summary.calls == 0 or isinstance(error, AirflowFailException):
                raise
            raise AirflowFailException(
                f"wolkvox load of module {self.module!r} broke off after {load.summary.calls} API calls "
                f"({type(error).__name__}: {error}); records may have been created, and without a task "
                "state store a retry would send them again, so the task fails without retries"
            ) from error
        return ids, failed

    def _fail_if_too_many(self, load: BulkLoad, failed: list[RecordResult], *, resumable: bool) -> None:
        summary = load.summary
        if summary.failed <= self.max_failed_records:
            return
        message = (
            f"wolkvox load of module {self.module!r}: {summary.failed} of {summary.total} records failed "
            f"(allowed: {self.max_failed_records}); {_counts_text(summary)}. "
            + "; ".join(f"record {r.index}: {r.status.value} {r.msg or ''}".strip() for r in failed[:5])
        )
        stop = load.stop_error
        # A task retry re-sends the whole input: safe only while nothing may be in the CRM, or with a
        # journal that lets the retry skip what this try settled.
        untouched = summary.created + summary.counts[RecordStatus.OUTCOME_UNKNOWN] == 0
        if stop is not None and not stop.fail_fast and (resumable or untouched):
            raise WolkvoxError(f"{message}. Stopped by: {stop}") from stop
        raise AirflowFailException(message)


@contextmanager
def task_failure_semantics() -> Iterator[None]:
    """Fail without task retries on errors a retry cannot fix; let the others reach Airflow's retries."""
    try:
        yield
    except WolkvoxError as error:
        if error.fail_fast:
            raise AirflowFailException(str(error)) from error
        raise


def sequence_argument(value: Any, name: str) -> Sequence[Mapping[str, Any]]:
    """A list-of-mappings argument given as a list or as a string (JSON array, or a rendered list)."""
    parsed = _parse_text(value, name) if isinstance(value, str) else value
    if isinstance(parsed, Mapping) or not isinstance(parsed, Sequence):
        raise WolkvoxInputError(
            f"{name} must be a list of mappings or a JSON array string, got {type(parsed).__name__}"
        )
    return parsed


def mapping_argument(value: Any, name: str) -> Mapping[str, Any]:
    """A mapping argument given as a mapping or as a string (JSON, or a rendered Python dict)."""
    parsed = _parse_text(value, name) if isinstance(value, str) else value
    if not isinstance(parsed, Mapping):
        raise WolkvoxInputError(
            f"{name} must be a mapping or a JSON object string, got {type(parsed).__name__}"
        )
    return parsed


def _parse_text(text: str, name: str) -> Any:
    # Without render_template_as_native_obj a rendered dict arrives as its Python repr, not JSON.
    try:
        return json.loads(text)
    except ValueError:
        pass
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        raise WolkvoxInputError(
            f"{name} is a string that is not JSON; pass a mapping, or render the template with | tojson"
        ) from None


def _counts_text(summary: LoadSummary) -> str:
    return ", ".join(f"{count} {status.value}" for status, count in summary.counts.items() if count)


@contextmanager
def _results_writer(path: str | None) -> Iterator[Any]:
    """A function writing one JSON line per result to ``path``; a no-op without a path."""
    if path is None:
        yield lambda result: None
        return
    with open_text(path, "w") as handle:
        yield lambda result: handle.write(json.dumps(result.as_dict()) + "\n")
