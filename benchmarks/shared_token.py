"""Four mapped load tasks on one token under a real LocalExecutor scheduler: no pool, a pool of 2
slots, a pool of 1 slot, or one task alone.

Run from anywhere as a script (its directory must be first on ``sys.path`` for ``_harness``)::

    .venv/bin/python benchmarks/shared_token.py [--records 5000] [--latency 20]

It starts the end-to-end tests' scheduler stack (``tests/example_dags/airflow_runs.SchedulerStack``:
api-server, LocalExecutor scheduler, dag-processor and triggerer on a sqlite DB in a temporary home)
with the DAGs of ``benchmarks/dags/wolkvox_shared_token.py``, makes the pools through the REST API,
and triggers each DAG once, one after another, against one fake CRM (``--latency`` ms per request).
Each task of Airflow runs in its own process with its own client, so the client's gate of two
requests in flight holds one task's threads only. The rows:

- no pool: the four mapped tasks at once, ``max_in_flight=2`` each (up to 8 requests for the CRM's 2);
- pool of 2 slots, ``max_in_flight=1``: two tasks at a time, one request each;
- pool of 1 slot, ``max_in_flight=2``: one task at a time, two requests;
- one task alone: the four partitions' records in one task, ``max_in_flight=2``.

Columns: records/s over the DAG run (its start to its end, as the REST API reports them: task
scheduling and start-up included), the DAG run's and the load tasks' seconds (the first task's start
to the last one's end), the refusals of a third request in flight (403 simultaneous, counted by the
fake; the clients retry them), the calls and ``refused_busy`` the tasks' summaries count (their
XComs) and the calls the fake charged to the token's quota. Exit 1 unless every run succeeded, the
summaries match the fake's counts and every record is stored once.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path
from typing import Any

from _harness import OPERATION, TOKEN, ServerProcess, contact, print_table

from airflow_provider_wolkvox.api import MSG_TOO_MANY_SIMULTANEOUS
from airflow_provider_wolkvox.testing import CONN_ENV_VAR

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(1, str(REPO_ROOT))  # the tests' scheduler stack, imported below

from tests.example_dags.airflow_runs import SchedulerStack, api_time  # noqa: E402

DAG_FILE = REPO_ROOT / "benchmarks" / "dags" / "wolkvox_shared_token.py"
FOLDER_VARIABLE = "WOLKVOX_SHARED_TOKEN_DIR"
TASKS = 4
#: DAG id, the row's name; the pools the DAGs name, and their slots.
ROWS = (
    ("wolkvox_share_no_pool", "no pool, max_in_flight=2"),
    ("wolkvox_share_pool_2", "pool of 2 slots, max_in_flight=1"),
    ("wolkvox_share_pool_1", "pool of 1 slot, max_in_flight=2"),
    ("wolkvox_share_alone", "one task alone, max_in_flight=2"),
)
POOLS = {"wolkvox_share_2": 2, "wolkvox_share_1": 1}


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


def measure(stack: SchedulerStack, server: ServerProcess, dag_id: str, name: str) -> dict[str, Any]:
    server.reset()
    run_id = f"{dag_id}-benchmark"
    stack.trigger(dag_id, run_id, {})
    state = stack.wait_for_end(dag_id, run_id)
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
        "configuration": name,
        "records/s": f"{created / run_seconds:,.0f}",
        "DAG run s": f"{run_seconds:.1f}",
        "load tasks s": f"{load_seconds:.1f}",
        "refusals (3rd request)": sum(
            r["count"] for r in stats["refusals"] if r["msg"] == MSG_TOO_MANY_SIMULTANEOUS
        ),
        "calls answered (summaries)": sum(summary["calls"] for summary in summaries),
        "refused_busy (summaries)": sum(summary["refused_busy"] for summary in summaries),
        "calls charged (fake)": stats["tokens"][0]["quota_used"],
        "stored": server.record_count(),
        "created": created,
        "duplicates": server.duplicates("Email"),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=5000, help="records per task (of 4)")
    parser.add_argument("--latency", type=float, default=20.0, help="ms the fake takes per request")
    args = parser.parse_args()
    print(
        f"{TASKS} mapped load tasks x {args.records:,} records on one token, batches of 100, fake "
        f"latency {args.latency:g} ms, under a LocalExecutor scheduler (starting it takes a minute)"
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
            for pool, slots in POOLS.items():
                answer = stack.rest("POST", "/pools", json={"name": pool, "slots": slots})
                answer.raise_for_status()
            for dag_id, name in ROWS:
                rows.append(measure(stack, server, dag_id, name))
    shown = [{k: v for k, v in row.items() if k not in ("created", "duplicates")} for row in rows]
    print_table(list(shown[0]), [list(row.values()) for row in shown])
    ok = True
    for row in rows:
        matched = row["calls answered (summaries)"] == row["calls charged (fake)"]
        busy = row["refused_busy (summaries)"] == row["refusals (3rd request)"]
        complete = row["stored"] == row["created"] == TASKS * args.records and row["duplicates"] == 0
        ok = ok and matched and busy and complete
        print(
            f"{row['configuration']}: summaries' calls match the fake's charge: "
            f"{'yes' if matched else 'no'}; refused_busy matches the refusals: {'yes' if busy else 'no'}; "
            f"every record stored once: {'yes' if complete else 'no'}"
        )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
