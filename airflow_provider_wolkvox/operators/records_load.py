"""What the record-loading operators share: input forms, results file, failed-records XCom, the journal,
and when the task fails.
"""

from __future__ import annotations

import datetime
import json
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
from airflow_provider_wolkvox.sources import DEFAULT_ENCODING, open_text, read_records

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
    :param results_path: where to write one JSON line per record with its outcome. (templated)
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
        "results_path",
        "operation",
        "wolkvox_conn_id",
    )
    template_fields_renderers: ClassVar[dict[str, str]] = {"records": "json"}
    json_arguments = ("records",)
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
        max_failed_records: int = 0,
        failed_records_limit: int = 100,
        encoding: str = DEFAULT_ENCODING,
        on_quota_exhausted: str = "fail",
        quota_reserve: int = 0,
        max_wait: datetime.timedelta = DEFAULT_MAX_WAIT,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if (records is None) == (records_path is None):
            raise ValueError("give exactly one of records and records_path")
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
        return sequence_argument(self.records, "records")

    def file_records(self) -> Iterable[tuple[int, dict[str, Any]]]:
        """(line, record) of every record of ``records_path``, read afresh."""
        assert self.records_path is not None
        return read_records(self.records_path, encoding=self.encoding)

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
        with task_failure_semantics(), hook.client:
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
    ) -> tuple[Load, list[RecordResult], list[RecordResult]]:
        """Build the load and drain it: the load, the results kept and the failed ones listed.

        A spent quota that stops the load is noted in ``wait.stop`` when the task waits for it;
        without ``"wait"`` it is raised, or left in the load's ``stop_error``.
        """
        load = self.start(hook, journal, quota)
        # Left empty when the quota breaks the draining off: the task then defers, reporting nothing.
        kept: list[RecordResult] = []
        failed: list[RecordResult] = []
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
        failed: list[RecordResult],
    ) -> Any:
        """Log the summary, set the lineage and the outlets' counts, push the XComs, fail if too many
        records failed, and return the task's value."""
        summary = load.summary
        self.log.info("wolkvox load of module %r: %s", self.module, summary.as_dict())
        written = summary.created + summary.counts.get(RecordStatus.UPDATED, 0)
        self._lineage = LineageTarget(hook.client.base_url, load.operation, load.module, written)
        counts = {
            k: v for k, v in summary.as_dict().items() if k not in ("elapsed_seconds", "stopped_reason")
        }
        record_outlet_counts(self.outlets, context, self._lineage, counts)
        context["ti"].xcom_push(key="failed_records", value=[result.as_dict() for result in failed])
        if wait.waiting:
            context["ti"].xcom_push(key="quota_waits", value=wait.waits.waits)
        self._fail_if_too_many(load, failed, resumable=wait.resumable)
        if self.records_path is None:
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

    def _consume(self, load: Load, *, resumable: bool) -> tuple[list[RecordResult], list[RecordResult]]:
        """Drain the load: the results kept for in-memory input, each written to the results file.

        A load cut short after requests went out (a results file that fails, a task timeout) fails
        without task retries unless a journal lets the retry skip what was sent.
        """
        keep = self.records_path is None
        kept: list[RecordResult] = []
        failed: list[RecordResult] = []
        try:
            with _results_writer(self.results_path) as write:
                for result in load:
                    if keep:
                        kept.append(result)
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
        return kept, failed

    def _fail_if_too_many(self, load: Load, failed: list[RecordResult], *, resumable: bool) -> None:
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
