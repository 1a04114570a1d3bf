"""The lines a person reads in a load's task log: what it starts on, and how it ended, in words.

The progress lines in between are the engines' (``loads/progress.py``); a sync's start line is its
plan, which the sync engine logs.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from airflow_provider_wolkvox.loads import LoadSummary, RecordStatus, SyncLoad

if TYPE_CHECKING:
    from airflow_provider_wolkvox.loads import Journal
    from airflow_provider_wolkvox.operators.results_file import ResultLines

#: The states of an earlier try's records a start line names, with how it names them.
_EARLIER = (
    (("created", "created_id_unknown"), "created by an earlier try, not sent again"),
    (("sending", "outcome_unknown"), "left in doubt by an earlier try, settled before anything is sent"),
    (("rejected", "not_sent"), "rejected or not sent by an earlier try, sent again"),
)
#: A sync's states besides an insert's, named in its end line when any record ended in them.
_SYNC_STATES = (
    RecordStatus.UPDATED,
    RecordStatus.UNCHANGED,
    RecordStatus.SKIPPED,
    RecordStatus.AMBIGUOUS,
    RecordStatus.DELETED,
    RecordStatus.ALREADY_ABSENT,
)


def source_text(records: Any, records_path: str | None, sql_conn_id: str | None) -> str:
    """Where the records come from, as a start line names it."""
    if records is not None:
        return "the records given to the task"
    if records_path is not None:
        return f"file {records_path!r}"
    return f"a SQL query on Connection {sql_conn_id!r}"


def work_of(load: Any) -> str:
    """``"sync"`` or ``"load"``, as the lines name the work."""
    return "sync" if isinstance(load, SyncLoad) else "load"


def start_line(
    load: Any, source: str, journal: Journal | None, lines: ResultLines | None, results_path: str | None
) -> str:
    """The line a bulk load starts with: what it loads from where, how, and what an earlier try did.

    e.g. ``wolkvox load of module 'contacts' from file 'c.jsonl': 100,000 records, in batches of 100,
    2 requests in flight, results to 'r.jsonl'; try 2: 31,000 records created by an earlier try, not
    sent again``.
    """
    options = load.options
    total = getattr(load, "total", None)
    parts = [f"{total:,} records" if total is not None else "records counted as they are read"]
    parts.append("one request per record" if options.single else f"in batches of {options.batch_size}")
    parts.append(f"{options.max_in_flight} request{'s' if options.max_in_flight > 1 else ''} in flight")
    parts.append(f"results to {results_path!r}" if results_path else "no results file")
    line = f"wolkvox load of module {load.module!r} from {source}: {', '.join(parts)}"
    earlier = journal.earlier() if journal is not None else {}
    said = [
        f"{count:,} records {words}"
        for states, words in _EARLIER
        if (count := sum(earlier.get(state, 0) for state in states))
    ]
    if said:
        # A try resumed after a quota wait reads the notes of its own runs before the wait.
        try_number = lines.try_number if lines is not None else 1
        when = f"try {try_number}" if try_number > 1 else "resumed"
        line += f"; {when}: {', '.join(said)}"
    return line


def end_line(work: str, module: str, summary: LoadSummary, results_path: str | None) -> str:
    """The line a load or sync ends with, in words, naming the results file.

    e.g. ``wolkvox load of module 'contacts' finished in 12.3 s: 99,990 created, 5 rejected,
    0 of unknown outcome, 5 not sent; 1,000 API calls, 12 requests refused as busy (retried, not
    charged); results in 'r.jsonl'``.
    """
    counts = summary.counts
    id_unknown = counts.get(RecordStatus.CREATED_ID_UNKNOWN, 0)
    created = f"{summary.created:,} created" + (
        f" ({id_unknown:,} of them without a known id)" if id_unknown else ""
    )
    words = [created]
    words += [
        f"{counts[state]:,} {state.value.replace('_', ' ')}" for state in _SYNC_STATES if counts.get(state)
    ]
    words += [
        f"{counts.get(RecordStatus.REJECTED, 0):,} rejected",
        f"{counts.get(RecordStatus.OUTCOME_UNKNOWN, 0):,} of unknown outcome",
        f"{counts.get(RecordStatus.NOT_SENT, 0):,} not sent",
    ]
    calls = f"{summary.calls:,} API call{'' if summary.calls == 1 else 's'}"
    if summary.refused_busy:
        calls += f", {summary.refused_busy:,} requests refused as busy (retried)"
    where = f"results in {results_path!r}" if results_path else "no results file (results_path not set)"
    line = (
        f"wolkvox {work} of module {module!r} finished in {summary.elapsed_seconds:.1f} s: "
        f"{', '.join(words)}; {calls}; {where}"
    )
    if summary.stopped_reason:
        line += f"; stopped early: {summary.stopped_reason}"
    return line


def counts_text(summary: LoadSummary) -> str:
    """The non-zero counts by state, e.g. ``5 created, 2 rejected``."""
    return ", ".join(f"{count} {status.value}" for status, count in summary.counts.items() if count)
