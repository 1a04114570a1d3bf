"""Fixtures of the UI tests: a real Airflow 3 api-server, an authenticated API client, the fake CRM."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from importlib.metadata import version

import pytest
import requests
from packaging.version import Version

from airflow_provider_wolkvox.testing import FakeWolkvoxServer
from tests.conftest import OPERATION, TOKEN
from tests.ui.api_server import AirflowApiServer

AIRFLOW_VERSION = Version(version("apache-airflow"))
REQUEST_TIMEOUT = 30

#: Every test module here starts with ``pytestmark = UI_TESTS``.
UI_TESTS = [
    pytest.mark.ui,
    pytest.mark.skipif(
        AIRFLOW_VERSION.major < 3,
        reason="the api-server, its REST API v2 and the React UI exist from Airflow 3 on",
    ),
]


@pytest.fixture(scope="session")
def airflow_api_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AirflowApiServer]:
    """One api-server for the session: starting one costs several seconds."""
    with AirflowApiServer(tmp_path_factory.mktemp("airflow-ui-home")) as server:
        yield server


@pytest.fixture(scope="session")
def api(airflow_api_server: AirflowApiServer) -> Iterator[requests.Session]:
    """A client of the server's API, holding the JWT a client gets from the simple auth manager.

    With all users admins, ``GET /auth/token`` hands out an admin token without credentials.
    (The all-admins mode would also let a request without a token through; a real client
    authenticates, so the tests do too.)
    """
    answer = requests.get(f"{airflow_api_server.url}/auth/token", timeout=REQUEST_TIMEOUT)
    assert answer.status_code == 201, answer.text
    with requests.Session() as session:
        session.headers["Authorization"] = f"Bearer {answer.json()['access_token']}"
        yield session


@pytest.fixture
def fake_crm() -> Iterator[FakeWolkvoxServer]:
    """The fake CRM, with a small quota so the figures in test messages are distinctive."""
    with FakeWolkvoxServer({TOKEN: OPERATION}, quota=500) as server:
        yield server


@pytest.fixture
def cleanup_connections(airflow_api_server: AirflowApiServer, api: requests.Session) -> Iterator[list[str]]:
    """Ids of connections a test made; they are deleted after it, so tests stay independent."""
    connection_ids: list[str] = []
    yield connection_ids
    for connection_id in connection_ids:
        api.delete(f"{airflow_api_server.url}/api/v2/connections/{connection_id}", timeout=REQUEST_TIMEOUT)


@pytest.fixture
def create_connection(
    airflow_api_server: AirflowApiServer, api: requests.Session, cleanup_connections: list[str]
) -> Callable[..., dict]:
    """Create a wolkvox connection through ``POST /api/v2/connections``; return the body sent."""

    def create(connection_id: str, host: str, *, token: str = TOKEN, **extra: object) -> dict:
        body = {
            "connection_id": connection_id,
            "conn_type": "wolkvox",
            "host": host,
            "password": token,
            "extra": json.dumps({"operation": OPERATION, **extra}),
        }
        answer = api.post(f"{airflow_api_server.url}/api/v2/connections", json=body, timeout=REQUEST_TIMEOUT)
        assert answer.status_code == 201, answer.text
        cleanup_connections.append(connection_id)
        return body

    return create
