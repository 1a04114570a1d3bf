"""`make demo`: run the example DAGs with a real Airflow against the embedded fake wolkvox CRM.

It points a throw-away Airflow (sqlite DB under ``.airflow/demo``, this folder as the dags folder,
no Airflow example DAGs) at a ``FakeWolkvoxServer`` on loopback, runs every example DAG with
``dag.test()``, and prints a short report: each DAG and task with its state and return value, the
calls each DAG made, and the records now in the fake CRM. Everything Airflow writes (its own logs,
the task logs, warnings) goes to a log file whose path the report names. It exits non-zero if any
task failed. The tests reuse :func:`run_dag`.
"""

from __future__ import annotations

import os
import shutil
import sys
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from importlib.metadata import version
from pathlib import Path
from typing import Any, TextIO

DAGS_FOLDER = Path(__file__).resolve().parent
DEMO_HOME = DAGS_FOLDER.parent / ".airflow" / "demo"
SHOWN_RECORDS = 5
SHOWN_VALUE_CHARS = 100
DEMO_TOKEN = "demo-token"
# Airflow masks the values of a Connection's extras in its logs, and warns about any shorter than 5
# characters that it cannot mask: the operation's name is long enough.
DEMO_OPERATION = "demo_operation"
EXAMPLE_DAG_IDS = (
    "example_wolkvox_insert",
    "example_wolkvox_mapped_insert",
    "example_wolkvox_bulk_load",
    "example_wolkvox_chunked_load",
)
SYNC_DAG_ID = "example_wolkvox_sync"


def configure_airflow(home: Path) -> None:
    """Point Airflow at ``home`` and the example DAGs; must run before Airflow is imported."""
    home.mkdir(parents=True, exist_ok=True)
    os.environ.update(
        {
            "AIRFLOW_HOME": str(home),
            "AIRFLOW__CORE__DAGS_FOLDER": str(DAGS_FOLDER),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home}/airflow.db",
        }
    )


@dataclass
class DagRunOutcome:
    """What a ``dag.test()`` run left behind: its state, each task's state and return value."""

    dag_id: str
    state: str
    #: Each task instance's state by (task_id, map_index), in the order the tasks started.
    task_states: dict[tuple[str, int], str]
    #: Every XCom of the run, by (task_id, map_index, key).
    xcoms: dict[tuple[str, int, str], Any]

    def values_of(self, task_id: str) -> list[Any]:
        """The return values of ``task_id``, in map-index order."""
        return [
            self.xcoms[key] for key in sorted(self.xcoms) if key[0] == task_id and key[2] == "return_value"
        ]

    def xcom(self, task_id: str, key: str, map_index: int = -1) -> Any:
        return self.xcoms[(task_id, map_index, key)]


def run_dag(dag_id: str, dag_file: str | None = None, **test_kwargs: Any) -> DagRunOutcome:
    """Run ``dag_id`` with ``dag.test()`` and read back its outcome from the metadata DB.

    :param dag_file: the file defining it, in the configured dags folder (DAGs outside it are not
        serialized, so ``dag.test()`` refuses them); by default ``<dag_id>.py`` there.
    """
    from airflow.utils.session import create_session
    from sqlalchemy import select

    try:  # Airflow 3
        from airflow.dag_processing.dagbag import DagBag
        from airflow.models.xcom import XComModel
    except ImportError:  # Airflow 2.11: the same classes under their older homes and names
        from airflow.models.dagbag import DagBag
        from airflow.models.xcom import XCom as XComModel

    dags_folder = Path(os.environ["AIRFLOW__CORE__DAGS_FOLDER"])
    bag = DagBag(dag_folder=str(dags_folder / (dag_file or f"{dag_id}.py")))
    if bag.import_errors:
        raise RuntimeError(f"{dag_id} does not import: {bag.import_errors}")
    dag_run = bag.get_dag(dag_id).test(**test_kwargs)
    tis = dag_run.get_task_instances()
    with create_session() as session:
        # Columns, not ORM objects: Airflow 2 decodes the value of a loaded XCom object itself, so
        # only the stored value deserializes the same way on both.
        rows = session.execute(
            select(XComModel.task_id, XComModel.map_index, XComModel.key, XComModel.value).where(
                XComModel.dag_id == dag_id, XComModel.run_id == dag_run.run_id
            )
        ).all()
        xcoms = {(row.task_id, row.map_index, row.key): XComModel.deserialize_value(row) for row in rows}
    return DagRunOutcome(
        dag_id=dag_id,
        state=str(dag_run.state),
        task_states={(ti.task_id, ti.map_index): str(ti.state) for ti in _in_run_order(tis)},
        xcoms=xcoms,
    )


@contextmanager
def logs_to(path: Path) -> Iterator[TextIO]:
    """Send whatever the process writes to stdout and stderr to ``path``; yield the real stdout.

    Airflow logs to stdout (``dag.test()`` runs the tasks in this process), and warnings and stray
    prints may go to either stream: redirecting the two file descriptors catches all of it, whatever
    the Airflow version's logging setup. Both are restored on the way out.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    sys.stdout.flush()
    sys.stderr.flush()
    saved = {fd: os.dup(fd) for fd in (1, 2)}
    real_stdout = os.fdopen(
        os.dup(saved[1]), "w", buffering=1, encoding=sys.stdout.encoding, errors="replace"
    )
    try:
        with path.open("w", encoding="utf-8") as log:
            os.dup2(log.fileno(), 1)
            os.dup2(log.fileno(), 2)
            try:
                yield real_stdout
            finally:
                sys.stdout.flush()
                sys.stderr.flush()
                for fd, copy in saved.items():
                    os.dup2(copy, fd)
    finally:
        for copy in saved.values():
            os.close(copy)
        real_stdout.close()


def shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= SHOWN_VALUE_CHARS else text[: SHOWN_VALUE_CHARS - 3] + "..."


def calls_by_endpoint(entries: list[Any]) -> str:
    """``4 calls (insertMany.php 3, query.php 1)`` for the requests ``entries`` logged."""
    by_endpoint = Counter(entry.path.rsplit("/", 1)[-1] for entry in entries)
    counts = ", ".join(f"{endpoint} {count}" for endpoint, count in sorted(by_endpoint.items()))
    return f"{len(entries)} call{'' if len(entries) == 1 else 's'}" + (f" ({counts})" if counts else "")


def report_dag_run(out: TextIO, outcome: DagRunOutcome, calls: str, seconds: float) -> bool:
    """Print the run's state, calls and each task's state and return value; True if all succeeded."""
    print(f"\n{outcome.dag_id}: {outcome.state} in {seconds:.1f} s, {calls}", file=out)
    ok = outcome.state == "success"
    for (task_id, map_index), state in outcome.task_states.items():
        value = outcome.xcoms.get((task_id, map_index, "return_value"))
        label = task_id if map_index < 0 else f"{task_id}[{map_index}]"
        print(f"  {label:<22} {state:<8} returned {shown(value)}", file=out)
        ok &= state == "success"
    return ok


def run_examples(out: TextIO) -> bool:
    """Run every example DAG against a fresh fake CRM and report to ``out``; True if all succeeded."""
    from airflow.utils import db

    from airflow_provider_wolkvox.testing import CONN_ENV_VAR, FakeWolkvoxServer

    db.resetdb()
    sync_dir = DEMO_HOME / "sync"
    shutil.rmtree(sync_dir, ignore_errors=True)
    sync_dir.mkdir(parents=True)
    # The sync runs twice, as on two nights: the second one finds everything unchanged.
    runs: list[tuple[str, dict[str, Any]]] = [(dag_id, {}) for dag_id in EXAMPLE_DAG_IDS]
    runs += [(SYNC_DAG_ID, {"run_conf": {"state_dir": str(sync_dir)}})] * 2
    ok = True
    with FakeWolkvoxServer({DEMO_TOKEN: DEMO_OPERATION}, unique_fields={"contacts": ["Email"]}) as server:
        os.environ[CONN_ENV_VAR] = server.airflow_connection()
        print(f"running the example DAGs with dag.test() against the fake CRM at {server.url}", file=out)
        for dag_id, kwargs in runs:
            calls_before, started = server.calls(), time.monotonic()
            outcome = run_dag(dag_id, **kwargs)
            made = server.calls() - calls_before
            entries = server.request_log[-made:] if made else []
            ok &= report_dag_run(out, outcome, calls_by_endpoint(entries), time.monotonic() - started)
        for module in ("contacts", "leads"):
            records = server.records(module)
            print(f"\nrecords now in the fake CRM, module {module!r}: {len(records)}", file=out)
            for record in records[:SHOWN_RECORDS]:
                name, email = record.get("Nombre"), record.get("Email")
                print(f"  {record['wolkvox_id']}  {name!s:<18} {email}", file=out)
            if len(records) > SHOWN_RECORDS:
                print(f"  ... and {len(records) - SHOWN_RECORDS} more", file=out)
        print(
            f"\ncalls: {server.calls()} reached the fake CRM, "
            f"{server.quota_used(DEMO_TOKEN)} counted against the token's daily quota",
            file=out,
        )
    return ok


def _in_run_order(tis: list[Any]) -> list[Any]:
    """Tasks in the order they first started (those that never ran last), each by map index."""
    first_start: dict[str, float] = {}
    for ti in tis:
        started = ti.start_date.timestamp() if ti.start_date else float("inf")
        first_start[ti.task_id] = min(first_start.get(ti.task_id, started), started)
    return sorted(tis, key=lambda ti: (first_start[ti.task_id], ti.task_id, ti.map_index))


def main() -> int:
    # One home per Airflow major version: their metadata DBs differ.
    home = DEMO_HOME / f"airflow{version('apache-airflow').split('.')[0]}"
    log_path = home / "demo.log"
    log_shown = os.path.relpath(log_path) if log_path.is_relative_to(Path.cwd()) else str(log_path)
    configure_airflow(home)
    with logs_to(log_path) as out:
        print(
            f"wolkvox demo, on Airflow {version('apache-airflow')}: Airflow's logs go to {log_shown}",
            file=out,
        )
        try:
            ok = run_examples(out)
        except Exception:
            print(f"\nwolkvox demo: FAILED with the error below; Airflow's logs are in {log_shown}", file=out)
            raise
        if ok:
            print("\nwolkvox demo: all tasks succeeded", file=out)
        else:
            print(f"\nwolkvox demo: FAILED; the task logs are in {log_shown}", file=out)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
