"""Import cost of the operator module, the price every DAG file that uses it pays at each parse.

Run from anywhere as a script (its directory must be first on ``sys.path`` for ``_harness``)::

    .venv/bin/python benchmarks/import_cost.py [--runs 9] [--breakdown 15]

A DAG file imports ``airflow.sdk`` anyway, so what an operator module adds is measured on top of
it: each run is a fresh interpreter that imports ``airflow.sdk`` first, then times the import of
the module alone. The same is done for the HTTP provider's operator, the baseline a user would
otherwise pick (``apache-airflow-providers-http`` must be installed beside this package). Runs of
the two alternate, so that drift in the machine's load hits both alike; the median of each is
compared.

Target: ours costs no more than the HTTP provider's and under 50 ms. ``--breakdown N`` also prints
the N costliest imports ours triggers (``python -X importtime``), to see what to defer.
Prints a table and ``target met: yes/no``; exits 1 if the target is missed.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile

from _harness import check, print_table

OURS = "airflow_provider_wolkvox.operators.insert"
BASELINE = "airflow.providers.http.operators.http"
TARGET_MS = 50.0
CHILD_TIMEOUT = 120
MARK = "--- airflow.sdk imported ---"

# In the child: import airflow.sdk, then time the module's import alone. It must not have come
# in with airflow.sdk, or the figure would be zero and mean nothing.
_TIMED_IMPORT = """
import importlib, sys, time
import airflow.sdk
assert sys.argv[1] not in sys.modules, sys.argv[1] + " was imported by airflow.sdk"
start = time.perf_counter()
importlib.import_module(sys.argv[1])
print((time.perf_counter() - start) * 1000)
"""

# In the child, under -X importtime: mark the point where the cost of interest starts.
_MARKED_IMPORT = f"""
import importlib, sys
import airflow.sdk
print({MARK!r}, file=sys.stderr, flush=True)
importlib.import_module(sys.argv[1])
"""


def child_environment(airflow_home: str) -> dict[str, str]:
    """This environment with a throw-away AIRFLOW_HOME: importing Airflow may write its config there.

    The children also run in that folder: ``python -c`` puts the working directory first on
    ``sys.path``, and the modules must come from the environment, not from wherever this is run.
    """
    env = {key: value for key, value in os.environ.items() if not key.startswith("AIRFLOW")}
    env["AIRFLOW_HOME"] = airflow_home
    return env


def time_import(module: str, env: dict[str, str]) -> float:
    """Milliseconds a fresh interpreter takes to import ``module`` once ``airflow.sdk`` is loaded."""
    result = subprocess.run(
        [sys.executable, "-c", _TIMED_IMPORT, module],
        capture_output=True,
        text=True,
        env=env,
        cwd=env["AIRFLOW_HOME"],
        timeout=CHILD_TIMEOUT,
    )
    if result.returncode != 0:
        raise SystemExit(f"importing {module} failed:\n{result.stderr[-2000:]}")
    return float(result.stdout.split()[-1])


def costliest_imports(module: str, env: dict[str, str], count: int) -> list[tuple[str, float, float]]:
    """The ``count`` costliest imports that ``module`` adds, as (name, self ms, cumulative ms)."""
    result = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", _MARKED_IMPORT, module],
        capture_output=True,
        text=True,
        env=env,
        cwd=env["AIRFLOW_HOME"],
        timeout=CHILD_TIMEOUT,
        check=True,
    )
    rows = []
    # Lines read "import time: self [us] | cumulative | imported package", indented by depth.
    for line in result.stderr.split(MARK, 1)[1].splitlines():
        if not line.startswith("import time:") or "imported package" in line:
            continue
        own, cumulative, name = (part.strip() for part in line.removeprefix("import time:").split("|"))
        rows.append((name, int(own) / 1000, int(cumulative) / 1000))
    return sorted(rows, key=lambda row: row[2], reverse=True)[:count]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=9, help="fresh interpreters per module (default 9)")
    parser.add_argument(
        "--breakdown", type=int, default=0, metavar="N", help="print the N costliest imports of ours"
    )
    args = parser.parse_args()
    if args.runs < 1:
        parser.error("--runs must be at least 1")

    with tempfile.TemporaryDirectory(prefix="import-cost-airflow-") as airflow_home:
        env = child_environment(airflow_home)
        times: dict[str, list[float]] = {OURS: [], BASELINE: []}
        for _ in range(args.runs):
            for module, runs in times.items():
                runs.append(time_import(module, env))
        breakdown = costliest_imports(OURS, env, args.breakdown) if args.breakdown else []

    print(f"Import time on top of airflow.sdk, {args.runs} fresh interpreters each (ms)\n")
    print_table(
        ["module", "median", "min", "max"],
        [
            [module, f"{statistics.median(runs):.1f}", f"{min(runs):.1f}", f"{max(runs):.1f}"]
            for module, runs in times.items()
        ],
    )
    if breakdown:
        print(f"\nCostliest imports under {OURS} (python -X importtime, one run, ms)\n")
        print_table(
            ["imported module", "self", "cumulative"], [[n, f"{s:.1f}", f"{c:.1f}"] for n, s, c in breakdown]
        )
    ours, baseline = statistics.median(times[OURS]), statistics.median(times[BASELINE])
    print()
    met = check(
        f"ours {ours:.1f} ms <= HTTP provider's {baseline:.1f} ms and < {TARGET_MS:g} ms",
        ours <= baseline and ours < TARGET_MS,
    )
    return 0 if met else 1


if __name__ == "__main__":
    sys.exit(main())
