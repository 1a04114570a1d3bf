"""Four load tasks on one token: no pool, a pool of 2 slots, a pool of 1 slot, or one task alone.

Run from anywhere as a script (its directory must be first on ``sys.path`` for ``_harness``)::

    .venv/bin/python benchmarks/shared_token.py [--records 5000] [--latency 20] [--batch-size 100]

Each task of Airflow runs in its own process, with its own token gate (the client's in-process
limit of two requests in flight holds one task's threads only). Here each task is a fresh OS process
(``multiprocessing`` ``spawn``, one process per task) loading its partition of ``--records`` contacts
through its own ``WolkvoxClient`` and ``BulkLoad``, as a mapped ``WolkvoxInsertManyOperator`` task
does; an Airflow pool of N slots is stood for by running at most N of them at once. The rows:

- no pool: the four tasks at once, ``max_in_flight=2`` each (up to 8 requests for the CRM's 2);
- pool of 2 slots, ``max_in_flight=1``: two tasks at a time, one request each;
- pool of 1 slot, ``max_in_flight=2``: one task at a time, two requests;
- one task alone: the four partitions' records in one task, ``max_in_flight=2``.

Columns: records/s over the row's wall time (process starts included, as a task's start is part
of Airflow's too, though Airflow's own is longer), the refusals of a third request in flight
(403 simultaneous, counted by the fake; the clients retry them), the calls the tasks' summaries
count (answered, refusals apart) and the calls the fake charged to the token's quota.

This stands for a LocalExecutor scheduler run, which it does not measure: scheduling delays and
task start-up (seconds per task) come on top of every row, most in the rows that run tasks one
after another. The fake answers after ``--latency`` ms. Prints the table and, for each row, whether
the summaries' calls match the fake's charge (exit 1 if not).
"""

from __future__ import annotations

import argparse
import logging
import multiprocessing
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass

from _harness import MODULE, OPERATION, TOKEN, ServerProcess, contact, print_table

from airflow_provider_wolkvox.api import MSG_TOO_MANY_SIMULTANEOUS

TASKS = 4


@dataclass(frozen=True)
class Row:
    name: str
    slots: int  # tasks running at once
    max_in_flight: int
    tasks: int = TASKS


ROWS = (
    Row("no pool", TASKS, 2),
    Row("pool of 2 slots, max_in_flight=1", 2, 1),
    Row("pool of 1 slot, max_in_flight=2", 1, 2),
    Row("one task alone", 1, 2, tasks=1),
)


def run_task(url: str, first: int, count: int, batch_size: int, max_in_flight: int) -> tuple[int, int, int]:
    """One task: load contacts ``first`` to ``first + count - 1``; its created, calls and refused_busy."""
    from airflow_provider_wolkvox.client import WolkvoxClient
    from airflow_provider_wolkvox.loads import BulkLoad, LoadOptions

    # The clients' warnings of each refusal they retry: counted in the table instead.
    logging.getLogger("airflow_provider_wolkvox").setLevel(logging.ERROR)

    options = LoadOptions(batch_size=batch_size, max_in_flight=max_in_flight)
    with WolkvoxClient(url, TOKEN) as client:
        load = BulkLoad(client, OPERATION, MODULE, [contact(n) for n in range(first, first + count)], options)
        for _ in load:
            pass
    return load.summary.created, load.summary.calls, load.summary.refused_busy


def measure(server: ServerProcess, row: Row, records: int, batch_size: int) -> dict[str, object]:
    server.reset()
    each = records * TASKS // row.tasks
    spawn = multiprocessing.get_context("spawn")
    started = time.monotonic()
    with ProcessPoolExecutor(row.slots, mp_context=spawn, max_tasks_per_child=1) as pool:
        futures = [
            pool.submit(run_task, server.url, n * each, each, batch_size, row.max_in_flight)
            for n in range(row.tasks)
        ]
        outcomes = [future.result() for future in futures]
    seconds = time.monotonic() - started
    stats = server.stats()
    refusals = sum(r["count"] for r in stats["refusals"] if r["msg"] == MSG_TOO_MANY_SIMULTANEOUS)
    created = sum(outcome[0] for outcome in outcomes)
    return {
        "configuration": row.name,
        "records/s": f"{created / seconds:,.0f}",
        "seconds": f"{seconds:.1f}",
        "refusals (3rd request)": refusals,
        "calls answered (summaries)": sum(outcome[1] for outcome in outcomes),
        "refused_busy (summaries)": sum(outcome[2] for outcome in outcomes),
        "calls charged (fake)": stats["tokens"][0]["quota_used"],
        "stored": server.record_count(),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=5000, help="records per task (of 4)")
    parser.add_argument("--latency", type=float, default=20.0, help="ms the fake takes per request")
    parser.add_argument("--batch-size", type=int, default=100)
    args = parser.parse_args()
    print(
        f"{TASKS} load tasks x {args.records:,} records on one token, batches of {args.batch_size}, "
        f"fake latency {args.latency:g} ms; each task an OS process (multiprocessing), a pool of N "
        "slots stood for by N processes at once -- not a scheduler run"
    )
    rows = []
    with ServerProcess(latency=args.latency / 1000) as server:
        for row in ROWS:
            rows.append(measure(server, row, args.records, args.batch_size))
    print_table(list(rows[0]), [list(row.values()) for row in rows])
    ok = True
    for row in rows:
        matched = row["calls answered (summaries)"] == row["calls charged (fake)"]
        busy = row["refused_busy (summaries)"] == row["refusals (3rd request)"]
        complete = row["stored"] == TASKS * args.records
        ok = ok and matched and busy and complete
        print(
            f"{row['configuration']}: summaries' calls match the fake's charge: "
            f"{'yes' if matched else 'no'}; "
            f"refused_busy matches the refusals: {'yes' if busy else 'no'}; every record stored once: "
            f"{'yes' if complete else 'no'}"
        )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
