"""A child process of the shared-token test: one ``WolkvoxHook().insert_many`` of numbered contacts.

``python -m tests.hook_load FIRST COUNT BATCH_SIZE RESULTS_PATH`` loads ``contacts(COUNT, FIRST)``
through the default Connection (``AIRFLOW_CONN_WOLKVOX_DEFAULT``) once a line arrives on stdin, so
that the test can start every process's load at the same moment, and writes one JSON line per
record result to RESULTS_PATH. It creates :func:`ready_path` when only the line is missing.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from airflow_provider_wolkvox.hooks.wolkvox import WolkvoxHook
from tests.example_dags.records import MODULE, contacts


def ready_path(results_path: Path) -> Path:
    """The file a child creates once it is ready to load."""
    return results_path.with_suffix(".ready")


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m tests.hook_load")
    for name in ("first", "count", "batch_size"):
        parser.add_argument(name, type=int)
    parser.add_argument("results_path", type=Path)
    args = parser.parse_args()
    records = contacts(args.count, args.first)
    hook = WolkvoxHook()
    hook.operation_for()  # reads the Connection now, not after the start signal
    ready_path(args.results_path).touch()
    sys.stdin.readline()
    outcome = hook.insert_many(MODULE, records, batch_size=args.batch_size)
    with args.results_path.open("w", encoding="utf-8") as handle:
        handle.writelines(json.dumps(result.as_dict()) + "\n" for result in outcome.results)


if __name__ == "__main__":
    main()
