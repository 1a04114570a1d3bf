"""Fixtures of the end-to-end tests: one sqlite Airflow DB per session, a fake CRM per test."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from airflow_provider_wolkvox.testing import CONN_ENV_VAR, FakeWolkvoxServer
from tests.conftest import OPERATION, TOKEN


@pytest.fixture(scope="session")
def airflow_db() -> None:
    from airflow.utils import db

    db.resetdb()


@pytest.fixture
def fake_crm(airflow_db: None, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeWolkvoxServer]:
    with FakeWolkvoxServer({TOKEN: OPERATION}, unique_fields={"contacts": ["Email"]}) as server:
        monkeypatch.setenv(CONN_ENV_VAR, server.airflow_connection())
        yield server
