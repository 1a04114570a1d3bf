"""Four mapped load tasks on one token under a real LocalExecutor scheduler: no pool, a pool of 2
slots, a pool of 1 slot, or one task alone.

Run from anywhere as a script (its directory must be first on ``sys.path`` for ``_harness``)::

    .venv/bin/python benchmarks/shared_token.py [--records 5000] [--latency 20] [--repeat 1]

It starts the end-to-end tests' scheduler stack (``tests/example_dags/airflow_runs.SchedulerStack``:
api-server, LocalExecutor scheduler, dag-processor and triggerer on a sqlite DB in a temporary home,
about half a minute) with the DAGs of ``benchmarks/dags/wolkvox_shared_token.py``, makes their
pools through the REST API, and triggers each DAG once per repeat, one after another, against one
fake CRM (``--latency`` ms per request); each repeat starts one configuration later, so that none
always runs first on a cold stack. Each task of Airflow runs in its own process with its own
client, so the client's gate of two requests in flight holds one task's threads only. The rows:

- no pool: the four mapped tasks at once, ``max_in_flight=2`` each (up to 8 requests for the CRM's 2);
- pool of 2 slots, ``max_in_flight=1``: two tasks at a time, one request each;
- pool of 1 slot, ``max_in_flight=2``: one task at a time, two requests;
- one task alone: the four partitions' records in one task, ``max_in_flight=2``.

Columns, a row per DAG run in the order run: records/s over the DAG run (its start to its end, as
the REST API reports them: task scheduling and start-up included), the DAG run's and the load tasks'
seconds (the first task's start to the last one's end), the refusals of a third request in flight
(403 simultaneous, counted by the fake; the clients retry them), the calls and ``refused_busy`` the
tasks' summaries count (their XComs) and the calls the fake charged to the token's quota. Exit 1
unless every run succeeded, the summaries match the fake's counts and every record is stored once.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
from pathlib import Path
from typing import Any

from _harness import OPERATION, TOKEN, ServerProcess, contact, print_table
from dags.wolkvox_shared_token import BATCH_SIZE, FOLDER_VARIABLE, MODULE, SHARINGS, TASKS, Sharing

from airflow_provider_wolkvox.api import MSG_TOO_MANY_SIMULTANEOUS
from airflow_provider_wolkvox.testing import CONN_ENV_VAR

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(1, str(REPO_ROOT))  # the tests' scheduler stack, imported below

from tests.example_dags.airflow_runs import RUN_TIMEOUT, SchedulerStack, api_time  # noqa: E402

DAG_FILE = REPO_ROOT / "benchmarks" / "dags" / "wolkvox_shared_token.py"
#: Columns of a row kept for the checks, not shown.
HIDDEN = ("created", "rate", "expected", "duplicates")
#: The slowest rate a DAG run is given time for, in records/s, beyond the stack's usual bound.
SLOWEST_RATE = 500


def write_partitions(folder: Path, records: int) -> None:
    """``part-N.jsonl``: the N-th task's ``records`` contacts; ``all.jsonl``: every task's."""
    with (folder / "all.jsonl").open("w", encoding="utf-8") as every:
        for task in range(TASKS):
            with (folder / f"part-{task}.jsonl").open("w", encoding="utf-8") as part:
                for number in range(task * records, (task + 1) * records):
                    line = json.dumps(contact(number), ensure_ascii=False) + "\n"
                    part.write(line)
                    every.write(line)


def seconds_between(start: str, end: str) -> float:
    return (api_time(end) - api_time(start)).total_seconds()


def measure(
    stack: SchedulerStack, server: ServerProcess, sharing: Sharing, run_id: str, records: int
) -> dict[str, Any]:
    """One DAG run of ``sharing``, loading ``records`` records in all: its row."""
    server.reset()
    dag_id = sharing.dag_id
    stack.trigger(dag_id, run_id, {})
    state = stack.wait_for_end(dag_id, run_id, timeout=RUN_TIMEOUT + records / SLOWEST_RATE)
    if state != "success":
        raise RuntimeError(f"{dag_id} ended {state}:\n{stack.task_logs(dag_id, run_id)}")
    run = stack.dag_run(dag_id, run_id)
    instances = stack.task_instances(dag_id, run_id)
    summaries = [stack.xcom(dag_id, run_id, "load", map_index=i["map_index"]) for i in instances]
    created = sum(summary["created"] for summary in summaries)
    run_seconds = seconds_between(run["start_date"], run["end_date"])
    load_seconds = seconds_between(
        min(i["start_date"] for i in instances), max(i["end_date"] for i in instances)
    )
    stats = server.stats()
    return {
        "run": run_id.rsplit("-", 1)[-1],
        "configuration": sharing.name,
        "records/s": f"{created / run_seconds:,.0f}",
        "DAG run s": f"{run_seconds:.1f}",
        "load tasks s": f"{load_seconds:.1f}",
        "refusals (3rd request)": sum(
            r["count"] for r in stats["refusals"] if r["msg"] == MSG_TOO_MANY_SIMULTANEOUS
        ),
        "calls answered (summaries)": sum(summary["calls"] for summary in summaries),
        "refused_busy (summaries)": sum(summary["refused_busy"] for summary in summaries),
        "calls charged (fake)": stats["tokens"][0]["quota_used"],
        "stored": server.record_count(MODULE),
        "created": created,
        "rate": created / run_seconds,
        "expected": records,
        "duplicates": server.duplicates("Email", MODULE),
    }


def medians(rows: list[dict[str, Any]]) -> list[list[str]]:
    """Per configuration: the median, lowest and highest records/s of its runs, and median refusals."""
    table = []
    for sharing in SHARINGS:
        runs = [row for row in rows if row["configuration"] == sharing.name]
        rates = sorted(row["rate"] for row in runs)
        refusals = statistics.median(row["refusals (3rd request)"] for row in runs)
        rate = statistics.median(rates)
        table.append([sharing.name, f"{rate:,.0f}", f"{rates[0]:,.0f}", f"{rates[-1]:,.0f}", f"{refusals:g}"])
    return table


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=5000, help="records per task (of 4)")
    parser.add_argument("--latency", type=float, default=20.0, help="ms the fake takes per request")
    parser.add_argument("--repeat", type=int, default=1, help="DAG runs of each configuration")
    args = parser.parse_args()
    print(
        f"{TASKS} mapped load tasks x {args.records:,} records on one token, batches of {BATCH_SIZE}, "
        f"fake latency {args.latency:g} ms, {args.repeat} run(s) of each configuration, under a "
        "LocalExecutor scheduler (starting it takes about half a minute)"
    )
    rows = []
    with (
        ServerProcess(latency=args.latency / 1000) as server,
        tempfile.TemporaryDirectory(prefix="wolkvox-shared-token-") as scratch,
    ):
        folder, home = Path(scratch, "records"), Path(scratch, "airflow")
        folder.mkdir()
        write_partitions(folder, args.records)
        connection = {"conn_type": "wolkvox", "host": server.url, "password": TOKEN}
        env = {
            CONN_ENV_VAR: json.dumps({**connection, "extra": {"operation": OPERATION}}),
            FOLDER_VARIABLE: str(folder),
        }
        with SchedulerStack(home, [DAG_FILE], env) as stack:
            for sharing in SHARINGS:
                if sharing.pool is not None:
                    stack.create_pool(sharing.pool, sharing.pool_slots)
            for repeat in range(args.repeat):
                for sharing in SHARINGS[repeat % len(SHARINGS) :] + SHARINGS[: repeat % len(SHARINGS)]:
                    run_id = f"{sharing.dag_id}-{repeat + 1}"
                    rows.append(measure(stack, server, sharing, run_id, TASKS * args.records))
    shown = [{k: v for k, v in row.items() if k not in HIDDEN} for row in rows]
    print_table(list(shown[0]), [list(row.values()) for row in shown])
    if args.repeat > 1:
        print(f"\nrecords/s over the {args.repeat} runs of each configuration:")
        print_table(["configuration", "median", "lowest", "highest", "refusals (median)"], medians(rows))
    ok = True
    for row in rows:
        matched = row["calls answered (summaries)"] == row["calls charged (fake)"]
        busy = row["refused_busy (summaries)"] == row["refusals (3rd request)"]
        complete = row["stored"] == row["created"] == row["expected"] and row["duplicates"] == 0
        ok = ok and matched and busy and complete
        print(
            f"run {row['run']}, {row['configuration']}: summaries' calls match the fake's charge: "
            f"{'yes' if matched else 'no'}; refused_busy matches the refusals: {'yes' if busy else 'no'}; "
            f"every record stored once: {'yes' if complete else 'no'}"
        )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
