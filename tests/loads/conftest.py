"""The fake CRM the sync tests of this folder share, as the default Connection, with quick retries."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from airflow_provider_wolkvox.testing import FakeWolkvoxServer
from tests.loads.records import default_crm


@pytest.fixture
def server(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeWolkvoxServer]:
    """The fake CRM of one test (a module may define its own ``server`` instead)."""
    with default_crm(monkeypatch) as fake:
        yield fake
