"""`make demo`: run the example DAGs with a real Airflow against the embedded fake wolkvox CRM.

It points a throw-away Airflow (sqlite DB under ``.airflow/demo``, this folder as the dags folder,
no Airflow example DAGs) at a ``FakeWolkvoxServer`` on loopback, runs every example DAG with
``dag.test()``, prints the ids each insert task returned and the records now in the fake CRM, and
exits non-zero if any task failed. The tests reuse :func:`run_dag`.
"""

from __future__ import annotations

import os
import shutil
import sys
from dataclasses import dataclass
from importlib.metadata import version
from pathlib import Path
from typing import Any

DAGS_FOLDER = Path(__file__).resolve().parent
DEMO_HOME = DAGS_FOLDER.parent / ".airflow" / "demo"
SHOWN_RECORDS = 5
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
        task_states={(ti.task_id, ti.map_index): str(ti.state) for ti in dag_run.get_task_instances()},
        xcoms=xcoms,
    )


def main() -> int:
    # One home per Airflow major version: their metadata DBs differ.
    configure_airflow(DEMO_HOME / f"airflow{version('apache-airflow').split('.')[0]}")
    from airflow.utils import db

    from airflow_provider_wolkvox.testing import CONN_ENV_VAR, FakeWolkvoxServer

    db.resetdb()
    failed = False
    with FakeWolkvoxServer({"demo-token": "demo"}, unique_fields={"contacts": ["Email"]}) as server:
        os.environ[CONN_ENV_VAR] = server.airflow_connection()
        outcomes = [run_dag(dag_id) for dag_id in EXAMPLE_DAG_IDS]
        # The sync runs twice, as on two nights: the second one finds everything unchanged.
        sync_dir = DEMO_HOME / "sync"
        shutil.rmtree(sync_dir, ignore_errors=True)
        sync_dir.mkdir(parents=True)
        syncs = [run_dag(SYNC_DAG_ID, run_conf={"state_dir": str(sync_dir)}) for _ in range(2)]
        outcomes += syncs
        print("\n=== wolkvox demo: example DAGs against the embedded fake CRM at", server.url)
        for outcome in outcomes:
            print(f"\n{outcome.dag_id}: {outcome.state}")
            for (task_id, map_index), state in sorted(outcome.task_states.items()):
                value = outcome.xcoms.get((task_id, map_index, "return_value"))
                label = task_id if map_index < 0 else f"{task_id}[{map_index}]"
                shown = repr(value) if len(repr(value)) <= 100 else repr(value)[:97] + "..."
                print(f"  {label:<22} {state:<8} returned {shown}")
                failed |= state != "success"
            failed |= outcome.state != "success"
        [second_summary] = syncs[1].values_of("sync_contacts")
        print(f"\n{SYNC_DAG_ID}, second run: {second_summary}")
        for module in ("contacts", "leads"):
            records = server.records(module)
            print(f"\nrecords now in the fake CRM, module {module!r}: {len(records)}")
            for record in records[:SHOWN_RECORDS]:
                print(f"  {record['wolkvox_id']}  {record.get('Nombre')!s:<18} {record.get('Email')}")
            if len(records) > SHOWN_RECORDS:
                print(f"  ... and {len(records) - SHOWN_RECORDS} more")
    print("\nwolkvox demo:", "FAILED" if failed else "all tasks succeeded")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
