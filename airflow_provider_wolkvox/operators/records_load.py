"""What the record-loading operators share: input forms, results file, failed-records XCom, the journal,
and when the task fails.
"""

from __future__ import annotations

import datetime
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, ClassVar, NoReturn, Protocol

from airflow.providers.common.compat.sdk import AirflowFailException, BaseOperator

from airflow_provider_wolkvox.client import TokenInfo
from airflow_provider_wolkvox.exceptions import WolkvoxError, WolkvoxInputError, WolkvoxQuotaExceededError
from airflow_provider_wolkvox.hooks.wolkvox import WolkvoxHook
from airflow_provider_wolkvox.loads import Journal, LoadSummary, RecordResult, RecordStatus
from airflow_provider_wolkvox.operators.arguments import (
    RendersJsonArguments,
    check_input_form,
    sequence_argument,
    task_failure_semantics,
)
from airflow_provider_wolkvox.operators.checkpoint import task_state_journal
from airflow_provider_wolkvox.operators.lineage import LineageTarget, operator_lineage, record_outlet_counts
from airflow_provider_wolkvox.operators.quota import (
    DEFAULT_MAX_WAIT,
    ON_QUOTA_EXHAUSTED,
    QuotaWait,
    date_time_trigger,
    now,
    restart_time,
)
from airflow_provider_wolkvox.operators.report import counts_text, end_line, source_text, start_line, work_of
from airflow_provider_wolkvox.operators.results_file import ResultLines, named, results_file
from airflow_provider_wolkvox.sources import DEFAULT_ENCODING, read_records
from airflow_provider_wolkvox.sql_source import DEFAULT_FETCH_SIZE, Spool, check_fetch_size, spooled_query

if TYPE_CHECKING:
    from airflow.providers.common.compat.sdk import Context


class Load(Protocol):
    """A bulk load or a sync, as the operators drive it."""

    operation: str
    module: str
    summary: LoadSummary

    @property
    def calls_to_finish(self) -> int: ...

    @property
    def stop_error(self) -> WolkvoxError | None: ...

    def __iter__(self) -> Iterator[RecordResult]: ...


class WolkvoxLineage:
    """OpenLineage support of the operators: ``execute`` sets ``_lineage``."""

    _lineage: LineageTarget | None = None

    def get_openlineage_facets_on_complete(self, task_instance: Any) -> Any:
        return operator_lineage(self._lineage)


class RecordsLoadOperator(RendersJsonArguments, WolkvoxLineage, BaseOperator):
    """The base of the operators that load records; subclasses say how (:meth:`start`) and what they return.

    :param module: the CRM module. (templated)
    :param records: a list of mappings (field label → value), or a JSON array string. (templated)
    :param records_path: a ``.jsonl``/``.ndjson`` or ``.csv`` file, local or any URL Airflow's
        ``ObjectStoragePath`` reads (``s3://``, ``gs://``, ...); streamed, never held whole. (templated)
    :param sql: a query whose rows are the records, its column names the field labels (or a
        ``.sql`` file); run once, its rows spooled to a local file while they are checked. (templated)
    :param sql_conn_id: the database Connection of ``sql`` (any with a ``DbApiHook``). (templated)
    :param sql_parameters: the parameters of ``sql``, in its driver's paramstyle. (templated)
    :param sql_fetch_size: rows fetched from the database at a time.
    :param results_path: where each try appends one JSON line per record: outcome, position, key, try.
        (templated)
    :param operation: the CRM operation; defaults to the Connection's extra. (templated)
    :param wolkvox_conn_id: the wolkvox Connection. (templated)
    :param max_failed_records: how many records may fail before the task fails.
    :param failed_records_limit: how many failed records the ``failed_records`` XCom lists at most.
    :param encoding: the text encoding of ``records_path`` (e.g. ``"latin-1"`` for some exports).
    :param on_quota_exhausted: ``"fail"``: a spent quota fails the task; ``"wait"``: the task defers
        until the quota restarts (no worker slot held), then goes on where it stopped.
    :param quota_reserve: calls of the day's quota to leave to the token's other users: the load
        stops (and, with ``"wait"``, waits) when only these are left. Reading the quota costs one call.
    :param max_wait: the longest one try of the task may wait for the quota, from its first wait.
    """

    template_fields: Sequence[str] = (
        "module",
        "records",
        "records_path",
        "sql",
        "sql_conn_id",
        "sql_parameters",
        "results_path",
        "operation",
        "wolkvox_conn_id",
    )
    template_ext: Sequence[str] = (".sql",)
    template_fields_renderers: ClassVar[dict[str, str]] = {"records": "json", "sql": "sql"}
    json_arguments = ("records",)
    ui_color = "#e8f0fe"
    _lines: ResultLines | None = None  # the results lines of the current run, set by ``_load``

    def __init__(
        self,
        *,
        module: str,
        records: Sequence[Mapping[str, Any]] | str | None = None,
        records_path: str | None = None,
        sql: str | None = None,
        sql_conn_id: str | None = None,
        sql_parameters: Mapping[str, Any] | Sequence[Any] | None = None,
        sql_fetch_size: int = DEFAULT_FETCH_SIZE,
        results_path: str | None = None,
        operation: str | None = None,
        wolkvox_conn_id: str = WolkvoxHook.default_conn_name,
        max_failed_records: int = 0,
        failed_records_limit: int = 100,
        encoding: str = DEFAULT_ENCODING,
        on_quota_exhausted: str = "fail",
        quota_reserve: int = 0,
        max_wait: datetime.timedelta = DEFAULT_MAX_WAIT,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        check_input_form(records, records_path, sql, sql_conn_id, sql_parameters)
        if on_quota_exhausted not in ON_QUOTA_EXHAUSTED:
            raise WolkvoxInputError(
                f"on_quota_exhausted must be 'fail' or 'wait', got {on_quota_exhausted!r}"
            )
        if type(quota_reserve) is not int or quota_reserve < 0:
            raise WolkvoxInputError(
                f"quota_reserve must be a number of calls (0 or more), got {quota_reserve!r}"
            )
        if not isinstance(max_wait, datetime.timedelta) or max_wait <= datetime.timedelta(0):
            raise WolkvoxInputError(f"max_wait must be a positive timedelta, got {max_wait!r}")
        self.on_quota_exhausted = on_quota_exhausted
        self.quota_reserve = quota_reserve
        self.max_wait = max_wait
        self.module = module
        self.records = records
        self.records_path = records_path
        self.sql = sql
        self.sql_conn_id = sql_conn_id
        self.sql_parameters = sql_parameters
        self.sql_fetch_size = check_fetch_size(sql_fetch_size)
        self.spool: Spool | None = None  # the rows of ``sql``, checked, while the load runs
        self.results_path = results_path
        self.operation = operation
        self.wolkvox_conn_id = wolkvox_conn_id
        self.max_failed_records = max_failed_records
        self.failed_records_limit = failed_records_limit
        self.encoding = encoding

    def start(self, hook: WolkvoxHook, journal: Journal | None, quota: TokenInfo | None) -> Load:
        """The load to run, built from this task's arguments and checked (nothing sent yet).

        :param quota: the token's quota figures, when the task read them already.
        """
        raise NotImplementedError

    def returned(self, results: list[RecordResult]) -> Any:
        """The XCom return value of in-memory input, from every record's result."""
        raise NotImplementedError

    def in_memory_records(self) -> Sequence[Mapping[str, Any]]:
        records = sequence_argument(self.records, "records")
        return records if self._lines is None else self._lines.hold(records)

    def results_key_field(self) -> str | None:
        """The field of a record's key in results lines, when results carry none (a sync's do)."""
        return None

    def _tracked(self, pairs: Iterable[tuple[int, Any]]) -> Iterable[tuple[int, Any]]:
        """``(position, record)`` pairs as read (a file's lines, the spool's rows), noted for results."""
        return pairs if self._lines is None else self._lines.track(pairs)

    @property
    def source_position(self) -> str:
        """What names a record's place in the input: ``index``, ``line`` (a file) or ``row`` (SQL)."""
        return "index" if self.records is not None else "line" if self.records_path is not None else "row"

    def file_records(self) -> Iterable[tuple[int, dict[str, Any]]]:
        """(line, record) of every record of ``records_path``, or (row, record) of ``sql``, read afresh."""
        if self.spool is not None:
            return self._tracked(read_records(self.spool.path))
        assert self.records_path is not None
        return self._tracked(read_records(self.records_path, encoding=self.encoding))

    def row_key_field(self) -> str | None:  # a sync's key: every SQL row must give it; errors name it
        return None

    @contextmanager
    def _sql_spooled(self) -> Iterator[None]:
        """With ``sql``: its rows, checked, in a local spool for the load to read; removed afterwards."""
        if self.sql is None:
            yield
            return
        assert self.sql_conn_id is not None
        key_field, size = self.row_key_field(), self.sql_fetch_size
        with spooled_query(
            self.sql_conn_id, self.sql, self.sql_parameters, key_field=key_field, fetch_size=size
        ) as spool:
            self.spool = spool
            try:
                yield
            finally:
                self.spool = None

    def execute(self, context: Context) -> Any:
        return self._load(context)

    def resume_after_quota(self, context: Context, event: Any = None, carried: Any = None) -> Any:
        """Runs the load again after a quota wait: the journal skips what the earlier runs created."""
        return self._load(context, carried or {})

    def _load(self, context: Context, carried: dict[str, Any] | None = None) -> Any:
        """One run of the load: the quota guard, the load itself, a quota wait if it stopped on the
        quota, then the report.

        :param carried: what a quota wait's deferral carried to this run (None on the first run).
        """
        hook = WolkvoxHook(self.wolkvox_conn_id)
        wait = QuotaWait.of(context, carried, waiting=self.on_quota_exhausted == "wait")
        self._lines = ResultLines(self.source_position, context["ti"].try_number, self.results_key_field())
        with task_failure_semantics(), self._sql_spooled(), hook.client:
            journal = task_state_journal(context, self.log, fallback=wait.memory)
            quota = self._guard_quota(hook, wait)
            load, kept, failed = self._run(hook, journal, quota, wait)
        # Past the ``with``: the client's session is closed before the wait is logged and the task defers.
        if wait.stop is not None:
            self._wait_for_quota(wait, load)
        return self._report(context, hook, wait, load, kept, failed)

    def _guard_quota(self, hook: WolkvoxHook, wait: QuotaWait) -> TokenInfo | None:
        """The token's quota figures, read (one call) when the task waits for the quota or keeps a
        reserve, with the client's calls limited to what the reserve leaves; None when not read.

        With ``"wait"``, a quota spent before the load begins defers at once.
        """
        if not (wait.waiting or self.quota_reserve):
            return None
        read_at = now()
        try:
            quota = hook.token_info(operation=self.operation)
        except WolkvoxQuotaExceededError:  # spent before the load began: when it restarts is unknown
            if not wait.waiting:
                raise
            self._wait_for_quota(wait, None)
        wait.restarts_at = restart_time(quota, read_at)
        hook.client.limit_calls(max(quota.calls_left - self.quota_reserve, 0), reserve=self.quota_reserve)
        return quota

    def _run(
        self, hook: WolkvoxHook, journal: Journal | None, quota: TokenInfo | None, wait: QuotaWait
    ) -> tuple[Load, list[RecordResult], list[dict[str, Any]]]:
        """Build the load and drain it: the load, the results kept and the failed ones' results lines.

        A spent quota that stops the load is noted in ``wait.stop`` when the task waits for it;
        without ``"wait"`` it is raised, or left in the load's ``stop_error``.
        """
        source = source_text(self.records, self.records_path, self.sql_conn_id)
        if self.records is None:  # checking a large file or query takes seconds: say so first
            self.log.info("wolkvox module %r: checking the records of %s before sending", self.module, source)
        load = self.start(hook, journal, quota)
        if work_of(load) == "load":  # a sync's start line is its plan, logged by the sync
            self.log.info("%s", start_line(load, source, journal, self._lines, self.results_path))
        # Left empty when the quota breaks the draining off: the task then defers, reporting nothing.
        kept: list[RecordResult] = []
        failed: list[dict[str, Any]] = []
        try:
            kept, failed = self._consume(load, resumable=wait.resumable)
        except WolkvoxQuotaExceededError as error:  # a sync's look-ups met the quota
            if not wait.waiting:
                raise
            wait.stop = error
        if wait.waiting and isinstance(load.stop_error, WolkvoxQuotaExceededError):
            wait.stop = load.stop_error
        return load, kept, failed

    def _report(
        self,
        context: Context,
        hook: WolkvoxHook,
        wait: QuotaWait,
        load: Load,
        kept: list[RecordResult],
        failed: list[dict[str, Any]],
    ) -> Any:
        """Log the summary, set the lineage and the outlets' counts, push the XComs, fail if too many
        records failed, and return the task's value."""
        summary = load.summary
        self.log.info("%s", end_line(work_of(load), self.module, summary, self.results_path))
        written = summary.created + summary.counts.get(RecordStatus.UPDATED, 0)
        self._lineage = LineageTarget(hook.client.base_url, load.operation, load.module, written)
        counts = {
            k: v for k, v in summary.as_dict().items() if k not in ("elapsed_seconds", "stopped_reason")
        }
        record_outlet_counts(self.outlets, context, self._lineage, counts)
        context["ti"].xcom_push(key="failed_records", value=failed)
        if wait.waiting:
            context["ti"].xcom_push(key="quota_waits", value=wait.waits.waits)
        self._fail_if_too_many(load, failed, resumable=wait.resumable)
        if self.records is not None:
            return self.returned(kept)
        return {**summary.as_dict(), "results_path": self.results_path}

    def _wait_for_quota(self, wait: QuotaWait, load: Load | None) -> NoReturn:
        """Defer until the quota restarts, or fail when that is past ``max_wait`` from this try's first
        wait. ``load`` is None when the quota was spent before it began."""
        at = now()
        resume_at = wait.resume_at(at)
        if load is None:
            done, calls_left = None, None
            progress = "the quota was spent before this run of the load began"
        else:
            summary = load.summary
            done = summary.total - summary.counts.get(RecordStatus.NOT_SENT, 0)
            calls_left = load.calls_to_finish
            progress = f"{done} records done, about {calls_left} calls left to make"
        first = wait.first_at(at)
        if resume_at - first > self.max_wait:
            raise AirflowFailException(
                f"wolkvox load of module {self.module!r}: the quota is spent and restarts at "
                f"{resume_at.isoformat(timespec='seconds')}, past max_wait ({self.max_wait}) from the first "
                f"wait at {first.isoformat(timespec='seconds')}; {progress}"
            )
        wait.note(at, resume_at, done, calls_left)
        self.log.info(
            "wolkvox load of module %r: %s; today's quota is spent (or down to the reserve of %d); "
            "waiting until %s, %d s from now, for it to restart",
            self.module,
            progress,
            self.quota_reserve,
            resume_at.isoformat(timespec="seconds"),
            round((resume_at - at).total_seconds()),
        )
        self.defer(
            trigger=date_time_trigger(resume_at),
            method_name="resume_after_quota",
            kwargs=wait.deferral_kwargs(),
        )

    def _consume(self, load: Load, *, resumable: bool) -> tuple[list[RecordResult], list[dict[str, Any]]]:
        """Drain the load: the results kept for in-memory input, the failed ones' results lines (at most
        ``failed_records_limit``), every results line written to the results file.

        A load cut short after requests went out (a results file that fails, a task timeout) fails
        without task retries unless a journal lets the retry skip what was sent.
        """
        keep = self.records is not None
        lines = self._lines or ResultLines(self.source_position, 1, self.results_key_field())
        kept: list[RecordResult] = []
        failed: list[dict[str, Any]] = []
        try:
            with results_file(self.results_path, lines.try_number) as write:
                for result in load:
                    if keep:
                        kept.append(result)
                    line = lines.line(result)
                    if result.failed and len(failed) < self.failed_records_limit:
                        failed.append(line)
                    write(line)
        except BaseException as error:
            if resumable or load.summary.calls == 0 or isinstance(error, AirflowFailException):
                raise
            raise AirflowFailException(
                f"wolkvox load of module {self.module!r} broke off after {load.summary.calls} API calls "
                f"({type(error).__name__}: {error}); records may have been created, and without a task "
                "state store a retry would send them again, so the task fails without retries"
            ) from error
        return kept, failed

    def _fail_if_too_many(self, load: Load, failed: list[dict[str, Any]], *, resumable: bool) -> None:
        summary = load.summary
        if summary.failed <= self.max_failed_records:
            return
        message = (
            f"wolkvox load of module {self.module!r}: {summary.failed} of {summary.total} records failed "
            f"(allowed: {self.max_failed_records}); {counts_text(summary)}. "
            + "; ".join(f"{named(f)}: {f['status']} {f.get('msg') or ''}".strip() for f in failed[:5])
        )
        stop = load.stop_error
        # A task retry re-sends the whole input: safe only while nothing may be in the CRM, or with a
        # journal that lets the retry skip what this try settled.
        untouched = summary.created + summary.counts[RecordStatus.OUTCOME_UNKNOWN] == 0
        if stop is not None and not stop.fail_fast and (resumable or untouched):
            raise WolkvoxError(f"{message}. Stopped by: {stop}") from stop
        raise AirflowFailException(message)
