"""Fixtures for the tests of the fake wolkvox server."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from airflow_provider_wolkvox.testing import FakeWolkvoxServer
from tests.testing.helpers import MODULE, OPERATION, OTHER_OPERATION, OTHER_TOKEN, TOKEN, Api


@pytest.fixture
def server() -> Iterator[FakeWolkvoxServer]:
    """A running server with two tokens of two operations and a unique ``Email`` in ``contacts``."""
    with FakeWolkvoxServer(
        {TOKEN: OPERATION, OTHER_TOKEN: OTHER_OPERATION}, unique_fields={MODULE: ["Email"]}
    ) as fake:
        yield fake


@pytest.fixture
def api(server: FakeWolkvoxServer) -> Iterator[Api]:
    with Api(server) as client:
        yield client
