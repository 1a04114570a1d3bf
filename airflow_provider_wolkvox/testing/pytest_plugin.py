"""pytest fixtures for the fake wolkvox CRM.

Enable them in a ``conftest.py`` with
``pytest_plugins = ["airflow_provider_wolkvox.testing.pytest_plugin"]``.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from airflow_provider_wolkvox.testing.server import CONN_ENV_VAR, FakeWolkvoxServer

TEST_TOKEN = "test-token"
TEST_OPERATION = "test"


@pytest.fixture
def wolkvox_server(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeWolkvoxServer]:
    """Yield a running :class:`FakeWolkvoxServer` that accepts ``test-token`` for operation ``test``.

    ``AIRFLOW_CONN_WOLKVOX_DEFAULT`` points at it for the test's duration, so the hook's default
    connection reaches it; the server stops after the test.
    """
    with FakeWolkvoxServer({TEST_TOKEN: TEST_OPERATION}) as server:
        monkeypatch.setenv(CONN_ENV_VAR, server.airflow_connection())
        yield server
