"""Test set-up shared by every layer.

Airflow reads its configuration when first imported, so the environment for the end-to-end
tests (a throw-away AIRFLOW_HOME with a sqlite DB, the example DAGs as the dags folder, no
Airflow example DAGs) is set here, before any test module imports Airflow.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent
_AIRFLOW_HOME = tempfile.mkdtemp(prefix="wolkvox-tests-airflow-")
# The dags folder holds the example DAGs and the test-only DAGs: dag.test() runs only DAGs found there.
_DAGS_FOLDER = Path(_AIRFLOW_HOME, "dags")
_DAGS_FOLDER.mkdir()
for _dag_file in [
    *REPO_ROOT.glob("example_dags/example_*.py"),
    *REPO_ROOT.glob("tests/example_dags/dags/*.py"),
]:
    (_DAGS_FOLDER / _dag_file.name).symlink_to(_dag_file)
os.environ.update(
    {
        "AIRFLOW_HOME": _AIRFLOW_HOME,
        "AIRFLOW__CORE__DAGS_FOLDER": str(_DAGS_FOLDER),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{_AIRFLOW_HOME}/airflow.db",
        # The asset example DAGs read the default Connection when parsed; tests that run them point
        # it at a fake CRM first. Nothing listens here.
        "AIRFLOW_CONN_WOLKVOX_DEFAULT": json.dumps(
            {
                "conn_type": "wolkvox",
                "host": "http://127.0.0.1:9",
                "password": "unused-token",
                "extra": {"operation": "test"},
            }
        ),
    }
)

# Imports that load Airflow come after its environment is set.
from airflow_provider_wolkvox.client.retry import RetryPolicy  # noqa: E402

TOKEN = "tok-3f9a1c77e2b54d08"
OPERATION = "modulotest03"
#: The request timeout of in-process tests that lose answers on purpose: a load looks the records of
#: a lost answer up only once the request's timeout has passed (the default is a minute), so each
#: lost answer costs this wait. Short, yet long past any answer of the fake on loopback; a
#: ``Fault.DROP_THEN_STORE`` store must come within it (``delay=LOST_ANSWER_TIMEOUT / 2``), a
#: ``Fault.SLOW`` answer after it (``delay=LOST_ANSWER_TIMEOUT * 3``).
LOST_ANSWER_TIMEOUT = 0.5
#: The same for requests sent by Airflow's own processes (``airflow tasks test``, a scheduler's
#: task processes), which share the machine's cores with the rest of the stack: longer, so that
#: a busy moment never passes for a lost answer.
PROCESS_LOST_ANSWER_TIMEOUT = 2.0
BASE_URL = "https://crm0001.wolkvox.com"


class RecordingTaskInstance:
    """Stands for ``context["ti"]`` in operator unit tests: keeps what the operator pushes to XCom."""

    try_number = 1

    def __init__(self) -> None:
        self.pushed: dict[str, Any] = {}

    def xcom_push(self, key: str, value: Any) -> None:
        self.pushed[key] = value


class DictStateStore:
    """Stands for ``context["task_state_store"]``: the get/set the journal uses."""

    def __init__(self) -> None:
        self.values: dict[str, Any] = {}

    def get(self, key: str, default: Any = None) -> Any:
        return self.values.get(key, default)

    def set(self, key: str, value: Any) -> None:
        self.values[key] = value


def simultaneous_refusals(server: Any) -> int:
    """Requests the fake refused for a third request in flight: none, for a client that keeps the limit."""
    from airflow_provider_wolkvox.api import MSG_TOO_MANY_SIMULTANEOUS

    return sum(entry.msg == MSG_TOO_MANY_SIMULTANEOUS and entry.fault is None for entry in server.request_log)


def connection_json(host: str, *, token: str = TOKEN, **extra: object) -> str:
    """The ``AIRFLOW_CONN_*`` value of a wolkvox Connection."""
    return json.dumps(
        {"conn_type": "wolkvox", "host": host, "password": token, "extra": {"operation": OPERATION, **extra}}
    )


@pytest.fixture
def wolkvox_conn(monkeypatch: pytest.MonkeyPatch) -> str:
    """A default Connection to the (mocked) production host."""
    monkeypatch.setenv("AIRFLOW_CONN_WOLKVOX_DEFAULT", connection_json("crm0001.wolkvox.com"))
    return "wolkvox_default"


@pytest.fixture
def fast_retries(monkeypatch: pytest.MonkeyPatch) -> RetryPolicy:
    """Make every client built without an explicit policy retry at once (same count, no waiting)."""
    policy = RetryPolicy(base_delay=0.0001, max_delay=0.001, max_attempts=8)
    monkeypatch.setattr("airflow_provider_wolkvox.client.client.RetryPolicy", lambda: policy)
    return policy


# The throw-away PostgreSQL cluster of the SQL input tests, one per session (tests/sql_db.py).
from tests.sql_db import postgres  # noqa: E402, F401
