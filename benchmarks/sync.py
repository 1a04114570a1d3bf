"""Sync: the calls a nightly sync spends, by scenario, beside a naive look-up + write per record; memory.

Run from anywhere as a script (its directory must be first on ``sys.path`` for ``_harness``)::

    .venv/bin/python benchmarks/sync.py [--module-records 50000] [--input-records 10000]
        [--memory-keys 100000 1000000]

The fake CRM (a child process) holds a module of ``--module-records`` contacts created over the past
60 days. The input holds ``--input-records`` records keyed on Email: 90 % of them already in the CRM
(1 % of those with a changed value) and 10 % new keys. Scenarios, one after the other on one state
file:

- first run, no sync state: the keys are learned by a scan of the module;
- re-run, nothing changed, the state kept;
- re-run with 1 % of the records changed, the state kept.

Each prints the calls by endpoint, the outcomes, and the naive cost: a look-up and a write for
every record (2 calls each). Targets: first run <= 1.2 x ceil(M / 1000) + ceil(new / 100) + changed
calls; nothing changed <= 5 calls; 1 % changed <= 1.1 x changed + 5 calls.

Partitions: ``--partitions`` mapped tasks (child processes, started together) sync disjoint new
keys into one state file, then run again unchanged. Targets: every key in the state and stored
once (0 lost, 0 duplicates), the unchanged re-runs make no call.

Memory: in a fresh child process per size, a sync of ``N`` records against a state of the same
``N`` keys, all unchanged (no call at all): the child's peak RSS (``VmHWM``). Target < 300 MB at
1,000,000 keys. Prints the tables and one ``target met: yes/no`` line per target; exits 1 if one is missed.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
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

from airflow_provider_wolkvox import api
from airflow_provider_wolkvox.client import WolkvoxClient
from airflow_provider_wolkvox.loads.sync import SyncLoad, SyncOptions, SyncSource
from airflow_provider_wolkvox.loads.sync.state import StateHeader, field_hashes, read_state, write_state
from airflow_provider_wolkvox.sources import read_records
from airflow_provider_wolkvox.state_file import StateFile

KEY = "Email"
PATHS = (api.QUERY_PATH, api.QUERY_DATES_PATH, api.INSERT_MANY_PATH, api.UPDATE_PATH)
MEMORY_LIMIT_MB = 300.0
MEMORY_TIMEOUT = 1800.0


def scenario_input(args: argparse.Namespace, changed_share: float) -> tuple[list[dict[str, Any]], int]:
    """The input: 90 % present keys (``changed_share`` of them changed), 10 % new; and how many changed."""
    present = args.input_records * 9 // 10
    changed = round(present * changed_share)
    records = [contact(n) for n in range(present)]
    for n in range(changed):
        records[n * (present // max(changed, 1))]["Ciudad"] = "Cali"
    records += [contact(args.module_records + n) for n in range(args.input_records - present)]
    return records, changed


def sync_of(client: WolkvoxClient, source: SyncSource, state: str) -> SyncLoad:
    """The benchmark's sync: contacts keyed on Email, with the state file at ``state``."""
    return SyncLoad(client, OPERATION, MODULE, source, SyncOptions(key_field=KEY), state=StateFile(state))


def run_sync(server: ServerProcess, records: list[dict[str, Any]], state: str) -> dict[str, Any]:
    calls_before = {path: server.calls(path) for path in PATHS}
    with WolkvoxClient(server.url, TOKEN) as client:
        started = time.perf_counter()
        load = sync_of(client, lambda: enumerate(records), state)
        outcomes = Counter(result.status.value for result in load)
        seconds = time.perf_counter() - started
    return {
        "calls": {path.rsplit("/", 1)[-1]: server.calls(path) - calls_before[path] for path in PATHS},
        "outcomes": dict(outcomes),
        "seconds": seconds,
        "lookup": load.plan.lookup,
    }


def scenarios(server: ServerProcess, args: argparse.Namespace) -> bool:
    server.seed(args.module_records, days=60)
    state = str(Path(tempfile.mkdtemp(prefix="wolkvox-sync-bench-")) / "contacts.sync-state.jsonl")
    first_input, first_changed = scenario_input(args, 0.01)
    new = args.input_records - args.input_records * 9 // 10
    runs = [("first run, no state", run_sync(server, first_input, state), first_changed)]
    runs.append(("re-run, nothing changed", run_sync(server, first_input, state), 0))
    changed_input = [dict(record) for record in first_input]
    changed = args.input_records // 100
    for n in range(changed):
        changed_input[n * (len(changed_input) // changed)]["Nombre"] = f"Cambiado {n}"
    runs.append(("re-run, 1 % changed", run_sync(server, changed_input, state), changed))

    print(
        f"\nSync of {args.input_records} records keyed on {KEY} into a module of {args.module_records} "
        f"(created over 60 days), one state file across the runs"
    )
    print_table(
        (
            "scenario",
            "look-up",
            *(path.rsplit("/", 1)[-1] for path in PATHS),
            "calls",
            "naive calls",
            "seconds",
            "outcomes",
        ),
        (
            (
                name,
                run["lookup"],
                *run["calls"].values(),
                sum(run["calls"].values()),
                2 * args.input_records,
                f"{run['seconds']:.1f}",
                ", ".join(f"{count} {status}" for status, count in sorted(run["outcomes"].items())),
            )
            for name, run, _ in runs
        ),
    )
    totals = [sum(run["calls"].values()) for _, run, _ in runs]
    first_target = 1.2 * -(-args.module_records // api.QUERY_DATES_LIMIT) + -(-new // 100) + first_changed
    return all(
        [
            check(f"first run: {totals[0]} calls <= {first_target:.0f}", totals[0] <= first_target),
            check(f"re-run, nothing changed: {totals[1]} calls <= 5", totals[1] <= 5),
            check(
                f"re-run, {changed} changed: {totals[2]} calls <= {1.1 * changed + 5:.0f}",
                totals[2] <= 1.1 * changed + 5,
            ),
            check(
                "every record ended created, updated or unchanged",
                all(set(run["outcomes"]) <= {"created", "updated", "unchanged"} for _, run, _ in runs),
            ),
        ]
    )


def unchanged_sync(url: str, folder: str, keys: int) -> dict[str, float]:
    """In a fresh child: a sync of ``keys`` records, every one known unchanged from the state."""
    input_path, state_path = Path(folder, f"input-{keys}.jsonl"), Path(folder, f"state-{keys}.jsonl")
    with input_path.open("w", encoding="utf-8") as out:
        for n in range(keys):
            out.write(json.dumps(contact(n), ensure_ascii=False) + "\n")
    rows = ((contact(n)[KEY], f"{n:024x}", field_hashes(contact(n))) for n in range(keys))
    write_state(StateFile(str(state_path)), StateHeader(OPERATION, MODULE, KEY, keys), rows)
    started = time.perf_counter()
    with WolkvoxClient(url, TOKEN) as client:
        load = sync_of(client, lambda: read_records(str(input_path)), str(state_path))
        unchanged = sum(result.status.value == "unchanged" for result in load)
        calls = client.calls
    return {
        "seconds": time.perf_counter() - started,
        "unchanged": unchanged,
        "calls": calls,
        "peak": peak_rss_mb(),
    }


def partition_sync(url: str, state: str, first: int, count: int) -> dict[str, Any]:
    """In a fresh child, as one mapped task: a sync of the new keys ``first`` to ``first + count``."""
    records = [contact(n) for n in range(first, first + count)]
    with WolkvoxClient(url, TOKEN) as client:
        load = sync_of(client, lambda: enumerate(records), state)
        outcomes = Counter(result.status.value for result in load)
        return {"calls": client.calls, "outcomes": dict(outcomes)}


def partitions(server: ServerProcess, args: argparse.Namespace) -> bool:
    server.reset()
    state = str(Path(tempfile.mkdtemp(prefix="wolkvox-sync-partitions-")) / "contacts.sync-state.jsonl")
    size = args.input_records // args.partitions
    rounds = []

    def one(partition: int) -> dict[str, Any]:
        return run_in_child(partition_sync, server.url, state, partition * size, size, timeout=600)

    for name in ("first run, new keys", "re-run, nothing changed"):
        with ThreadPoolExecutor(args.partitions) as pool:
            runs = list(pool.map(one, range(args.partitions)))
        rounds.append((name, runs))
    kept = {row[0] for row in read_state(StateFile(state), StateHeader(OPERATION, MODULE, KEY))[1]}
    keys = {str(contact(n)[KEY]) for n in range(size * args.partitions)}
    print(f"\n{args.partitions} partitions of {size} new keys each, started together, into one state file")
    print_table(
        ("round", *(f"partition {n} calls" for n in range(args.partitions)), "calls", "outcomes"),
        (
            (
                name,
                *(run["calls"] for run in runs),
                sum(run["calls"] for run in runs),
                ", ".join(f"{count} {status}" for status, count in sorted(_outcomes(runs).items())),
            )
            for name, runs in rounds
        ),
    )
    lost, duplicates = len(keys - kept), server.duplicates(KEY)
    return all(
        [
            check(f"every key in the state: {lost} lost of {len(keys)}", lost == 0),
            check(f"every key stored once: {duplicates} duplicates", duplicates == 0),
            check(
                f"unchanged re-runs: {sum(run['calls'] for run in rounds[1][1])} calls (0)",
                sum(run["calls"] for run in rounds[1][1]) == 0,
            ),
        ]
    )


def _outcomes(runs: list[dict[str, Any]]) -> Counter[str]:
    return sum((Counter(run["outcomes"]) for run in runs), Counter())


def memory(server: ServerProcess, args: argparse.Namespace) -> bool:
    rows, peaks, complete = [], [], True
    with tempfile.TemporaryDirectory(prefix="wolkvox-sync-memory-") as folder:
        for keys in sorted(args.memory_keys):
            figures = run_in_child(unchanged_sync, server.url, folder, keys, timeout=MEMORY_TIMEOUT)
            complete = complete and figures["unchanged"] == keys and figures["calls"] == 0
            peaks.append(figures["peak"])
            rows.append(
                (
                    keys,
                    f"{figures['seconds']:.1f}",
                    f"{keys / figures['seconds']:.0f}",
                    figures["calls"],
                    f"{figures['peak']:.1f}",
                )
            )
    print("\nA sync of N records against a state of the same N keys, all unchanged, in a fresh child process")
    print_table(("keys", "seconds", "records/s", "calls", "peak RSS (VmHWM) MB"), rows)
    largest = max(args.memory_keys)
    return all(
        [
            check("every record was found unchanged with no call", complete),
            check(
                f"peak RSS {peaks[-1]:.1f} MB at {largest} keys (< {MEMORY_LIMIT_MB:.0f} MB)",
                peaks[-1] < MEMORY_LIMIT_MB,
            ),
        ]
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--module-records", type=int, default=50_000)
    parser.add_argument("--input-records", type=int, default=10_000)
    parser.add_argument("--partitions", type=int, default=4)
    parser.add_argument("--memory-keys", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--time-limit", type=float, default=3600.0, help="seconds for the whole run")
    parser.add_argument("--verbose", action="store_true", help="show the provider's log lines (the plans)")
    args = parser.parse_args()
    provider_logs(args.verbose)

    def measure() -> bool:
        with time_limit(args.time_limit), ServerProcess() as server:
            met = scenarios(server, args)
            met = partitions(server, args) and met
            return memory(server, args) and met

    return verdict(measure)


if __name__ == "__main__":
    sys.exit(main())
