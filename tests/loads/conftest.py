"""The fake CRM the sync tests of this folder share, as the default Connection, with quick retries."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from airflow_provider_wolkvox.client import RetryPolicy
from airflow_provider_wolkvox.testing import CONN_ENV_VAR, FakeWolkvoxServer
from tests.conftest import OPERATION, TOKEN
from tests.loads.records import MODULE


@pytest.fixture
def server(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeWolkvoxServer]:
    """The fake CRM of one test (a module may define its own ``server`` instead)."""
    with FakeWolkvoxServer({TOKEN: OPERATION}, modules={MODULE}) as fake:
        monkeypatch.setenv(CONN_ENV_VAR, fake.airflow_connection())
        monkeypatch.setattr(
            "airflow_provider_wolkvox.client.client.RetryPolicy",
            lambda: RetryPolicy(base_delay=0, max_attempts=2),
        )
        yield fake
