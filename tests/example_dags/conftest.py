"""Fixtures of the end-to-end tests: one sqlite Airflow DB per session, a fake CRM per test, and
one scheduler stack for the package's scheduler tests (``test_scheduler_kill.py``,
``test_triggered.py``), started once, stopped after the package's last test."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from airflow_provider_wolkvox.testing import CONN_ENV_VAR, FakeWolkvoxServer
from tests.conftest import OPERATION, PROCESS_LOST_ANSWER_TIMEOUT, REPO_ROOT, TOKEN
from tests.example_dags.airflow_runs import SchedulerStack

DAGS = REPO_ROOT / "tests" / "example_dags" / "dags"
EXAMPLES = REPO_ROOT / "example_dags"
#: The stack's DAG files from its start. The other example DAGs are linked in by the test that
#: triggers them, last: a scheduled one runs as soon as it is parsed, and would write into the CRM
#: while the kill tests count its records.
STACK_DAG_FILES = [
    DAGS / "wolkvox_reruns.py",
    DAGS / "wolkvox_quota_wait.py",
    EXAMPLES / "example_wolkvox_asset_producer.py",
    EXAMPLES / "example_wolkvox_asset_consumer.py",
]
# The quota test's CRM: 5 calls a "day" of 12 s, under the Connection wolkvox_quota.
QUOTA, QUOTA_DAY = 5, 12.0
QUOTA_CONN_ENV = "AIRFLOW_CONN_WOLKVOX_QUOTA"
STACK_CRM_LATENCY = 0.03
#: Seconds between two looks of the stack's dag-processor for new files in its dags folder
#: (Airflow's default is 300).
STACK_DAGS_REFRESH = "2"


@pytest.fixture(scope="session")
def airflow_db() -> None:
    from airflow.utils import db

    db.resetdb()


@pytest.fixture
def fake_crm(airflow_db: None, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeWolkvoxServer]:
    with FakeWolkvoxServer({TOKEN: OPERATION}, unique_fields={"contacts": ["Email"]}) as server:
        monkeypatch.setenv(CONN_ENV_VAR, server.airflow_connection())
        yield server


@pytest.fixture(scope="package")
def crm() -> Iterator[FakeWolkvoxServer]:
    """The stack's fake CRM (Connection wolkvox_default), its processes pointed at it once."""
    with FakeWolkvoxServer({TOKEN: OPERATION}, latency=STACK_CRM_LATENCY) as server:
        yield server


@pytest.fixture(scope="package")
def quota_crm() -> Iterator[FakeWolkvoxServer]:
    with FakeWolkvoxServer({TOKEN: OPERATION}, quota=QUOTA, quota_period=QUOTA_DAY) as server:
        yield server


@pytest.fixture(scope="package")
def stack(
    crm: FakeWolkvoxServer, quota_crm: FakeWolkvoxServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[SchedulerStack]:
    """api-server, LocalExecutor scheduler, dag-processor and triggerer, shared by the package's tests."""
    home = tmp_path_factory.mktemp("airflow-scheduler-home")
    scratch = home / "tmp"  # the processes' temporary files (example DAGs write theirs there)
    scratch.mkdir()
    env = {
        CONN_ENV_VAR: crm.airflow_connection(timeout=PROCESS_LOST_ANSWER_TIMEOUT),
        QUOTA_CONN_ENV: quota_crm.airflow_connection(),
        "TMPDIR": str(scratch),
        "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": STACK_DAGS_REFRESH,
        "AIRFLOW__DAG_PROCESSOR__BUNDLE_REFRESH_CHECK_INTERVAL": STACK_DAGS_REFRESH,
    }
    with SchedulerStack(home, STACK_DAG_FILES, env) as running:
        yield running


@pytest.fixture
def empty_crm(crm: FakeWolkvoxServer, stack: SchedulerStack) -> Iterator[FakeWolkvoxServer]:
    crm.reset()
    yield crm
    print(stack.log_tails())  # shown when the test failed
