"""OpenLineage: both insert operators report the CRM module they wrote to, with the record count."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator

import pytest

from airflow_provider_wolkvox.operators.insert import WolkvoxInsertManyOperator, WolkvoxInsertOperator
from airflow_provider_wolkvox.testing import CONN_ENV_VAR, FakeWolkvoxServer
from tests.conftest import OPERATION, TOKEN, RecordingTaskInstance

pytest.importorskip(
    "airflow.providers.openlineage", reason="apache-airflow-providers-openlineage is not installed"
)


@pytest.fixture
def server(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeWolkvoxServer]:
    with FakeWolkvoxServer({TOKEN: OPERATION}) as fake:
        monkeypatch.setenv(CONN_ENV_VAR, fake.airflow_connection())
        yield fake


def output_of(operator: WolkvoxInsertOperator | WolkvoxInsertManyOperator) -> tuple[str, str, int]:
    lineage = operator.get_openlineage_facets_on_complete(task_instance=None)
    assert lineage.inputs == []
    [dataset] = lineage.outputs
    return dataset.namespace, dataset.name, dataset.outputFacets["outputStatistics"].rowCount


def test_insert_operator_reports_its_output_dataset(server: FakeWolkvoxServer) -> None:
    operator = WolkvoxInsertOperator(task_id="t", module="contacts", fields={"Nombre": "Ana"})
    operator.execute({})  # type: ignore[arg-type]
    assert output_of(operator) == (f"wolkvox://127.0.0.1:{server.port}", f"{OPERATION}.contacts", 1)


def test_insert_many_operator_reports_the_created_count(server: FakeWolkvoxServer) -> None:
    operator = WolkvoxInsertManyOperator(task_id="t", module="leads", records=[{"n": i} for i in range(7)])
    operator.execute({"ti": RecordingTaskInstance()})  # type: ignore[arg-type]
    assert output_of(operator) == (f"wolkvox://127.0.0.1:{server.port}", f"{OPERATION}.leads", 7)


def test_no_lineage_before_execution() -> None:
    operator = WolkvoxInsertOperator(task_id="t", module="contacts", fields={"a": 1})
    assert operator.get_openlineage_facets_on_complete(task_instance=None) is None


def test_importing_the_operators_loads_no_openlineage() -> None:
    # Airflow itself may read the OpenLineage provider's info at start-up; our import adds nothing.
    code = (
        "import sys\n"
        "try:\n    import airflow.sdk\n"
        "except ImportError:  # Airflow 2\n    import airflow.models.baseoperator\n"
        "before = {m for m in sys.modules if 'openlineage' in m}; "
        "import airflow_provider_wolkvox.operators.insert; "
        "print(sorted(m for m in sys.modules if 'openlineage' in m and m not in before))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True
    )
    assert result.stdout.strip().splitlines()[-1] == "[]"
