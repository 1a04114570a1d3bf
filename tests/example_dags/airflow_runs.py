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

import json
import os
import time
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime, timedelta, timezone
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
#: Tries of a REST API call answered with a server error, and the pause between two.
SERVER_ERROR_TRIES, SERVER_ERROR_PAUSE = 3, 1.0
#: How long a person takes to answer a human-in-the-loop task, at the least.
HUMAN_DELAY = timedelta(seconds=3)
#: Characters of each task log quoted by a failure message.
LOG_TAIL = 3000
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
        self.home = home
        self.add_dag_files(dag_files)
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

    def add_dag_files(self, dag_files: Iterable[Path]) -> list[Path]:
        """Link DAG files into the dags folder, but those already there; return the links made.

        A running dag-processor finds them at its next look for new files (``[dag_processor]
        refresh_interval``, 5 minutes unless the stack's environment says otherwise).
        """
        added = []
        for dag_file in dag_files:
            link = self.home / "dags" / dag_file.name
            if not link.exists():
                link.symlink_to(dag_file)
                added.append(link)
        return added

    def dags(self) -> list[dict[str, Any]]:
        """The DAGs the REST API lists (``dag_id``, ``fileloc``, ``next_dagrun_run_after``...)."""
        return list(self._get("/dags?limit=1000")["dags"])

    def import_errors(self) -> list[dict[str, Any]]:
        """The dag-processor's import errors (``filename``, ``stack_trace``...)."""
        return list(self._get("/importErrors?limit=1000")["import_errors"])

    def dag_run(self, dag_id: str, run_id: str) -> dict[str, Any]:
        """The DAG run as the REST API shows it (``state``, ``run_type``, ``logical_date``...)."""
        return self._get(f"/dags/{dag_id}/dagRuns/{run_id}")

    def dag_runs_of_every_dag(self) -> list[dict[str, Any]]:
        """Every DAG run, of every DAG, as the REST API lists them (one request)."""
        return list(self._get("/dags/~/dagRuns?limit=1000")["dag_runs"])

    def approve_waiting(self) -> list[str]:
        """Answer every human-in-the-loop task awaiting an answer, as a person would in the UI:
        ``Approve`` where offered, else the first option. Return the tasks answered.

        Like a person, it answers a request only once it has been waiting for ``HUMAN_DELAY``:
        Airflow 3.3 fails a task answered in the moment between its pause and the executor's report
        that its process ended ("finished with state success, but the task instance's state
        attribute is queued"). Airflow before 3.1 has no such tasks: nothing to answer.
        """
        waiting = self._request("GET", "/dags/~/dagRuns/~/taskInstances?state=awaiting_input&limit=1000")
        if waiting.status_code != 200:  # no such state before Airflow 3.1
            return []
        answered = []
        for instance in waiting.json()["task_instances"]:
            path = (
                f"/dags/{instance['dag_id']}/dagRuns/{instance['dag_run_id']}"
                f"/taskInstances/{instance['task_id']}/{instance['map_index']}/hitlDetails"
            )
            detail = self._get(path)
            if (
                detail["response_received"]
                or datetime.now(timezone.utc) - api_time(detail["created_at"]) < HUMAN_DELAY
            ):
                continue
            options = detail["options"]
            choice = "Approve" if "Approve" in options else options[0]
            answer = self._request("PATCH", path, json={"chosen_options": [choice]})
            assert answer.status_code in (200, 409), answer.text  # 409: answered meanwhile
            answered.append(f"{instance['dag_id']}.{instance['task_id']}")
        return answered

    def task_logs(self, dag_id: str, run_id: str) -> str:
        """The errors the task logs of a DAG run hold (or their tails), for failure messages."""
        folder = self.home / "logs" / f"dag_id={dag_id}" / f"run_id={run_id}"
        parts = []
        for path in sorted(folder.rglob("*.log")):
            text = path.read_text(errors="replace")
            errors = [line for line in map(_log_error, text.splitlines()) if line]
            parts.append(f"--- {path.relative_to(folder)}:\n" + ("\n".join(errors) or text[-LOG_TAIL:]))
        return "\n".join(parts) or f"no task log under {folder}"

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
        answer, tries = self._tries("POST", f"/dags/{dag_id}/dagRuns", json=body)
        # 409 after a retry: the try whose answer was an error made the run.
        assert answer.status_code == 200 or (answer.status_code == 409 and tries > 1), answer.text

    def task_instance(self, dag_id: str, run_id: str, task_id: str) -> dict[str, Any]:
        """The task instance as the REST API shows it (``state``, ``try_number``, ``id``...)."""
        return self._get(f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task_id}")

    def create_pool(self, name: str, slots: int) -> None:
        """Make an Airflow pool of ``slots`` slots, as ``airflow pools set`` does."""
        answer, tries = self._tries("POST", "/pools", json={"name": name, "slots": slots})
        # 409 after a retry: the try whose answer was an error made the pool.
        assert answer.status_code == 201 or (answer.status_code == 409 and tries > 1), answer.text

    def wait_for_end(self, dag_id: str, run_id: str, timeout: float = RUN_TIMEOUT) -> str:
        """Wait (at most ``timeout`` seconds) for the DAG run to finish; return its state."""

        def finished() -> str | None:
            state = self._get(f"/dags/{dag_id}/dagRuns/{run_id}")["state"]
            return state if state in FINISHED else None

        return wait_for(
            finished, timeout, f"the end of DAG run {dag_id}/{run_id}", logs=self.log_tails, interval=0.25
        )

    def dag_runs(self, dag_id: str) -> list[dict[str, Any]]:
        """The DAG's runs as the REST API lists them."""
        return list(self._get(f"/dags/{dag_id}/dagRuns")["dag_runs"])

    def task_instances(self, dag_id: str, run_id: str) -> list[dict[str, Any]]:
        """The DAG run's task instances, mapped ones each apart (``start_date``, ``end_date``...)."""
        return list(self._get(f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances?limit=1000")["task_instances"])

    def xcom(
        self, dag_id: str, run_id: str, task_id: str, key: str = "return_value", *, map_index: int = -1
    ) -> Any:
        path = f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task_id}/xcomEntries/{key}"
        return self._get(f"{path}?map_index={map_index}")["value"]

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
        answer = self._request("GET", path)
        if missing_ok and answer.status_code == 404:
            return None
        assert answer.status_code == 200, answer.text
        return answer.json()

    def _request(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        """A call of the REST API (``path`` under ``/api/v2``), tried again after a server error."""
        return self._tries(method, path, **kwargs)[0]

    def _tries(self, method: str, path: str, **kwargs: Any) -> tuple[requests.Response, int]:
        """A call of the REST API, tried again after a server error; return the last answer and the tries.

        The stack's sqlite DB is written by every process at once: under load a write can wait past
        sqlite's timeout, and the api-server answers 500 "Database error".
        """
        for tries in range(1, SERVER_ERROR_TRIES + 1):
            answer = self.api.request(method, self._url(path), timeout=REQUEST_TIMEOUT, **kwargs)
            if answer.status_code < 500 or tries == SERVER_ERROR_TRIES:
                return answer, tries
            time.sleep(SERVER_ERROR_PAUSE)
        raise AssertionError("unreachable")

    def _url(self, path: str) -> str:
        return f"{self.api_server.url}/api/v2{path}"


def _log_error(line: str) -> str | None:
    """The event and exception of an error line of a task log (JSON lines), else None."""
    try:
        entry = json.loads(line)
    except ValueError:
        return None
    if not isinstance(entry, dict) or entry.get("level") != "error":
        return None
    causes = [
        f"{cause.get('exc_type')}: {cause.get('exc_value')}" for cause in entry.get("error_detail") or []
    ]
    return " | ".join([str(entry.get("event")), *causes])


def api_time(text: str) -> datetime:
    """A time of the REST API's answers (ISO 8601, ``Z`` for UTC: Python 3.10 reads no ``Z``)."""
    return datetime.fromisoformat(text.removesuffix("Z") + "+00:00" if text.endswith("Z") else text)
