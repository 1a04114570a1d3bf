"""SQL input: memory of a sync whose records come from a SQL query, at 100,000 and 1,000,000 rows.

Run from anywhere as a script (its directory must be first on ``sys.path`` for ``_harness``)::

    .venv/bin/python benchmarks/sql_source.py [--rows 100000 1000000] [--fetch-size 5000]

A SQLite file holds ``max(--rows)`` contacts; for each size ``N`` a sync state of the same ``N`` keys,
all unchanged, is written beforehand. Then, in a fresh child process per size, the operator's own
path runs: ``WolkvoxUpsertOperator(sql=..., sql_conn_id=..., state_path=...)`` executed as a task
would, against the fake CRM (a child process): the query (``WHERE id <= :n``) runs once, its rows
are fetched ``--fetch-size`` at a time, checked and spooled to a local file, and the sync reads the
spool twice (its check pass against the state, then its decisions): every row is known unchanged,
so no call is needed. Printed per size: seconds, rows/s, the calls the sync used, and the child's
peak RSS (``VmHWM``).

Targets: every row unchanged with 0 calls; peak RSS < 200 MB at each size (flat memory).
Exits 1 if one is missed.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import sqlite3
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from _harness import (
    MODULE,
    OPERATION,
    TOKEN,
    ServerProcess,
    check,
    contact,
    peak_rss_mb,
    print_table,
    provider_logs,
    run_in_child,
    time_limit,
    verdict,
)

from airflow_provider_wolkvox.loads.sync.state import StateHeader, field_hashes, write_state
from airflow_provider_wolkvox.state_file import StateFile
from airflow_provider_wolkvox.testing import CONN_ENV_VAR

KEY = "Email"
MEMORY_LIMIT_MB = 200.0
CHILD_TIMEOUT = 1800.0
SQL_CONN_ID = "benchmark_db"
SQL = 'SELECT name AS "Nombre", email AS "Email", city AS "Ciudad" FROM contacts WHERE id < :n ORDER BY id'


def make_database(path: Path, rows: int) -> None:
    """A SQLite file of ``rows`` contacts: row ``id`` = ``n`` holds ``contact(n)``."""
    with contextlib.closing(sqlite3.connect(path)) as db, db:
        db.execute("CREATE TABLE contacts (id INTEGER PRIMARY KEY, name TEXT, email TEXT, city TEXT)")
        db.executemany(
            "INSERT INTO contacts VALUES (?, ?, ?, ?)",
            ((n, *contact(n).values()) for n in range(rows)),
        )


def make_state(path: Path, keys: int) -> None:
    """A sync state of ``contact(0)`` to ``contact(keys - 1)``, as a sync that wrote them leaves it."""
    rows = ((contact(n)[KEY], f"{n:024x}", field_hashes(contact(n))) for n in range(keys))
    write_state(StateFile(str(path)), StateHeader(OPERATION, MODULE, KEY, keys), rows)


class _TaskInstance:
    """Stands for ``context["ti"]``: the XComs are dropped."""

    try_number = 1

    def xcom_push(self, key: str, value: Any) -> None:
        pass


def sql_sync(url: str, database: str, state: str, rows: int, fetch_size: int) -> dict[str, Any]:
    """In a fresh child: the upsert operator's sync of the first ``rows`` rows of the query."""
    os.environ[f"AIRFLOW_CONN_{SQL_CONN_ID.upper()}"] = json.dumps({"conn_type": "sqlite", "host": database})
    os.environ[CONN_ENV_VAR] = json.dumps(
        {"conn_type": "wolkvox", "host": url, "password": TOKEN, "extra": {"operation": OPERATION}}
    )
    from airflow_provider_wolkvox.operators.upsert import WolkvoxUpsertOperator

    for name in ("airflow", "airflow.task", "airflow_provider_wolkvox"):
        logging.getLogger(name).setLevel(logging.ERROR)
    operator = WolkvoxUpsertOperator(
        task_id="sql_sync",
        module=MODULE,
        key_field=KEY,
        sql=SQL,
        sql_conn_id=SQL_CONN_ID,
        sql_parameters={"n": rows},
        sql_fetch_size=fetch_size,
        state_path=state,
    )
    started = time.perf_counter()
    summary = operator.execute({"ti": _TaskInstance()})  # type: ignore[arg-type]
    return {
        "seconds": time.perf_counter() - started,
        "summary": summary,
        "peak": peak_rss_mb(),
    }


def memory(server: ServerProcess, args: argparse.Namespace, folder: Path) -> bool:
    database = folder / "warehouse.sqlite"
    started = time.perf_counter()
    make_database(database, max(args.rows))
    print(f"made a SQLite file of {max(args.rows):,} rows in {time.perf_counter() - started:.1f} s")
    table, peaks, complete = [], [], True
    for rows in sorted(args.rows):
        state = folder / f"state-{rows}.jsonl"
        make_state(state, rows)
        figures = run_in_child(
            sql_sync, server.url, str(database), str(state), rows, args.fetch_size, timeout=CHILD_TIMEOUT
        )
        summary = figures["summary"]
        complete = complete and summary["unchanged"] == rows and summary["calls"] == 0
        peaks.append(figures["peak"])
        table.append(
            (
                f"{rows:,}",
                f"{figures['seconds']:.1f}",
                f"{rows / figures['seconds']:,.0f}",
                summary["unchanged"],
                summary["calls"],
                f"{figures['peak']:.1f}",
            )
        )
    print(
        f"\nA sync from a SQL query (SQLite, {args.fetch_size} rows per fetch) against a state of the same"
        " keys, all unchanged, the operator's path in a fresh child process"
    )
    print_table(("rows", "seconds", "rows/s", "unchanged", "calls", "peak RSS (VmHWM) MB"), table)
    return all(
        [
            check("every row was found unchanged with no call", complete),
            *(
                check(
                    f"peak RSS {peak:.1f} MB at {rows:,} rows (< {MEMORY_LIMIT_MB:.0f} MB)",
                    peak < MEMORY_LIMIT_MB,
                )
                for rows, peak in zip(sorted(args.rows), peaks, strict=True)
            ),
        ]
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--fetch-size", type=int, default=5_000)
    parser.add_argument("--time-limit", type=float, default=3600.0, help="seconds for the whole run")
    parser.add_argument("--verbose", action="store_true", help="show the provider's log lines")
    args = parser.parse_args()
    provider_logs(args.verbose)
    if not args.verbose:  # the children's task log lines (Airflow's own logging) would break up the table
        os.environ["AIRFLOW__LOGGING__LOGGING_LEVEL"] = "ERROR"

    def measure() -> bool:
        with (
            time_limit(args.time_limit),
            tempfile.TemporaryDirectory(prefix="wolkvox-sql-bench-") as folder,
            ServerProcess() as server,
        ):
            return memory(server, args, Path(folder))

    return verdict(measure)


if __name__ == "__main__":
    sys.exit(main())
