"""Real Airflow runs of one task, for the re-run and crash tests, and a way to kill the task.

Two ways to run a task, as an outside tester does:

* :class:`TaskTestRun`: ``airflow tasks test`` of one DAG run, as often as a test likes, in the
  test session's Airflow home (``tests/conftest.py``). ``tasks test`` given a run id that does not
  exist makes a temporary DAG run and deletes it at the end (``airflow/cli/commands/task_command.py``,
  ``task_test``: ``_get_ti(..., create_if_necessary="db")`` and ``session.delete(ti.dag_run)`` when
  ``dr_created``; ``_get_dag_run`` makes the run id with ``_generate_temporary_run_id()``), and the
  task state store rows go with it (``airflow/models/task_state_store.py``: a foreign key to
  ``dag_run.id`` with ``ondelete="CASCADE"``). So the DAG run is made first, as ``airflow dags
  trigger --run-id`` makes it (its local client writes it to the DB; with no scheduler it stays
  queued), after ``airflow dags reserialize`` put the DAGs in the DB;
  then every ``tasks test`` of it shares its task state store rows. Nothing clears them between
  invocations: the store is cleared on success only with ``[state_store] clear_on_success``
  (``airflow/api_fastapi/execution_api/routes/task_instances.py``), off by default. ``tasks test``
  runs the task in its own process (``InProcessTestSupervisor``), so killing that process kills
  the task; it leaves ``try_number`` at 0 on every invocation and exits 0 even when the task failed.
* :class:`SchedulerStack`: api-server, LocalExecutor scheduler, dag-processor and triggerer on a
  sqlite DB in a home of its own. The LocalExecutor's worker process is the task's supervisor; the
  process running the task is its child, titled ``airflow worker -- <task instance id>``
  (``airflow/sdk/execution_time/task_runner.py``, ``setproctitle``), while the supervisor is titled
  ``airflow worker -- LocalExecutor: ...`` (``airflow/executors/local_executor.py``).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Mapping
from importlib.metadata import version
from pathlib import Path
from types import TracebackType
from typing import Any, Protocol

import psutil
import pytest
import requests
from packaging.version import Version

from tests.airflow_processes import AirflowProcess, wait_for
from tests.ui.api_server import AirflowApiServer

CLI_TIMEOUT = 120.0
#: One task run (a ``tasks test``, or a DAG run with its retry) ends within this.
RUN_TIMEOUT = 150.0
STACK_START_TIMEOUT = 120.0
REQUEST_TIMEOUT = 30.0
# The moment to kill comes while a request is in flight: watch for it closely.
KILL_POLL_INTERVAL = 0.002
DAEMONS = ("scheduler", "dag-processor", "triggerer")
FINISHED = ("success", "failed")

#: Every test module here starts with these marks.
RERUN_TESTS = [
    pytest.mark.e2e,
    pytest.mark.skipif(
        Version(version("apache-airflow")) < Version("3.3"),
        reason="the task state store, which scopes the promise, arrived in Airflow 3.3",
    ),
]


class Killable(Protocol):
    def kill(self) -> None: ...

    def is_running(self) -> bool: ...


def kill_when(process: Killable, moment: Callable[[], bool], what: str, logs: Callable[[], str]) -> None:
    """SIGKILL ``process`` as soon as ``moment()`` holds.

    :raises RuntimeError: the process ended before the moment came.
    :raises TimeoutError: the moment did not come within ``RUN_TIMEOUT``.
    """

    def come() -> bool:
        if moment():
            return True
        if not process.is_running():
            raise RuntimeError(f"the task ended before {what}\n{logs()}")
        return False

    wait_for(come, RUN_TIMEOUT, what, logs=logs, interval=KILL_POLL_INTERVAL)
    process.kill()


class TaskTestRun:
    """One task of one DAG run in the test session's Airflow home, run with ``airflow tasks test``.

    The subprocesses get this process's environment: the session's Airflow settings and the
    ``AIRFLOW_CONN_*`` variables the test set.
    """

    def __init__(self, dag_id: str, task_id: str, run_id: str) -> None:
        self.dag_id = dag_id
        self.task_id = task_id
        self.run_id = run_id
        self.log_dir = Path(os.environ["AIRFLOW_HOME"], "logs", "tasks-test", run_id)
        self.tries = 0

    def trigger(self, conf: Mapping[str, Any]) -> None:
        """Make the DAG run with ``conf``, as ``airflow dags trigger --run-id`` does (in this process).

        It stays queued: no scheduler picks it up.
        """
        # The function behind the CLI's local client (airflow/api/client/local_client.py), without
        # the seconds a CLI process takes to start.
        from airflow.api.common.trigger_dag import trigger_dag
        from airflow.utils.types import DagRunTriggeredByType

        trigger_dag(self.dag_id, triggered_by=DagRunTriggeredByType.CLI, run_id=self.run_id, conf=dict(conf))

    def run(self) -> None:
        """Run one more ``tasks test`` of the task to its end."""
        process = self._start()
        exit_code = process.wait(RUN_TIMEOUT)
        print(process.log_tail())  # shown when the test failed
        # It exits 0 when the task failed too: a failure here is Airflow's own.
        if exit_code != 0:
            raise RuntimeError(f"airflow tasks test exited with {exit_code}:\n{process.log_tail()}")

    def run_killed(self, moment: Callable[[], bool], what: str) -> None:
        """Start one more ``tasks test`` and SIGKILL it as soon as ``moment()`` holds."""
        process = self._start()
        try:
            kill_when(process, moment, what, process.log_tail)
        finally:
            process.stop()  # whatever the task left behind, even when the moment never came
        print(process.log_tail())

    def state(self) -> str | None:
        """The task instance's state in the metadata DB."""
        from airflow.models.taskinstance import TaskInstance
        from airflow.utils.session import create_session
        from sqlalchemy import select

        with create_session() as session:
            state = session.scalar(
                select(TaskInstance.state).where(
                    TaskInstance.dag_id == self.dag_id,
                    TaskInstance.run_id == self.run_id,
                    TaskInstance.task_id == self.task_id,
                )
            )
        return None if state is None else str(state)

    def _start(self) -> AirflowProcess:
        args = ["tasks", "test", self.dag_id, self.task_id, self.run_id]
        self.tries += 1
        return AirflowProcess(args, os.environ, self.log_dir / f"try-{self.tries}.log").start()


class SchedulerStack:
    """api-server, LocalExecutor scheduler, dag-processor and triggerer on a sqlite DB under ``home``.

    Use it as a context manager; leaving stops every process, also when starting failed.

    :param dag_files: DAG files linked into the stack's dags folder.
    :param extra_env: settings for every process (e.g. ``AIRFLOW_CONN_*``).
    """

    def __init__(self, home: Path, dag_files: Iterable[Path], extra_env: Mapping[str, str]) -> None:
        stack_env = {
            "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
            "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "False",
            **extra_env,
        }
        self.api_server = AirflowApiServer(home, extra_env=stack_env)
        for dag_file in dag_files:
            (home / "dags" / dag_file.name).symlink_to(dag_file)
        self.daemons = [AirflowProcess([name], self.api_server.env, home / f"{name}.log") for name in DAEMONS]
        self.api = requests.Session()

    def __enter__(self) -> SchedulerStack:
        try:
            self.api_server.__enter__()
            for daemon in self.daemons:
                daemon.start()
            answer = self.api.get(f"{self.api_server.url}/auth/token", timeout=REQUEST_TIMEOUT)
            answer.raise_for_status()
            self.api.headers["Authorization"] = f"Bearer {answer.json()['access_token']}"
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    def stop(self) -> None:
        processes = [*self.daemons, self.api_server.process]
        for process in processes:  # all at once: each takes seconds to shut down
            process.terminate()
        for process in processes:
            process.stop()
        self.api.close()

    def log_tails(self) -> str:
        return "\n".join(process.log_tail() for process in [self.api_server.process, *self.daemons])

    def trigger(self, dag_id: str, run_id: str, conf: Mapping[str, Any]) -> None:
        """Start a DAG run, once the dag-processor has parsed the DAG."""
        wait_for(
            lambda: self._get(f"/dags/{dag_id}", missing_ok=True),
            STACK_START_TIMEOUT,
            f"DAG {dag_id} parsed",
            logs=self.log_tails,
            interval=0.25,
        )
        body = {"dag_run_id": run_id, "logical_date": None, "conf": dict(conf)}
        answer = self.api.post(self._url(f"/dags/{dag_id}/dagRuns"), json=body, timeout=REQUEST_TIMEOUT)
        assert answer.status_code == 200, answer.text

    def task_instance(self, dag_id: str, run_id: str, task_id: str) -> dict[str, Any]:
        """The task instance as the REST API shows it (``state``, ``try_number``, ``id``...)."""
        return self._get(f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task_id}")

    def wait_for_end(self, dag_id: str, run_id: str) -> str:
        """Wait for the DAG run to finish; return its state."""

        def finished() -> str | None:
            state = self._get(f"/dags/{dag_id}/dagRuns/{run_id}")["state"]
            return state if state in FINISHED else None

        return wait_for(
            finished, RUN_TIMEOUT, f"the end of DAG run {dag_id}/{run_id}", logs=self.log_tails, interval=0.25
        )

    def dag_runs(self, dag_id: str) -> list[dict[str, Any]]:
        """The DAG's runs as the REST API lists them."""
        return list(self._get(f"/dags/{dag_id}/dagRuns")["dag_runs"])

    def xcom(self, dag_id: str, run_id: str, task_id: str, key: str = "return_value") -> Any:
        return self._get(f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task_id}/xcomEntries/{key}")[
            "value"
        ]

    def rest(self, method: str, path: str) -> requests.Response:
        """A call of the REST API (``path`` under ``/api/v2``), as a user would make it."""
        return self.api.request(method, self._url(path), timeout=REQUEST_TIMEOUT)

    def task_process(self, dag_id: str, run_id: str, task_id: str) -> psutil.Process:
        """Wait for the task to run; return the process running it (not its supervisor)."""

        def running() -> psutil.Process | None:
            instance = self.task_instance(dag_id, run_id, task_id)
            if instance["state"] != "running":
                return None
            title = f"airflow worker -- {instance['id']}"
            for process in psutil.process_iter(["cmdline"]):
                if (process.info["cmdline"] or [None])[0] == title:
                    return process
            return None

        return wait_for(running, RUN_TIMEOUT, f"task {task_id} of {run_id} running", logs=self.log_tails)

    def _get(self, path: str, *, missing_ok: bool = False) -> Any:
        answer = self.api.get(self._url(path), timeout=REQUEST_TIMEOUT)
        if missing_ok and answer.status_code == 404:
            return None
        assert answer.status_code == 200, answer.text
        return answer.json()

    def _url(self, path: str) -> str:
        return f"{self.api_server.url}/api/v2{path}"
