"""The ``wolkvox_server`` fixture, enabled the way users enable it, in a pytest run of its own."""

from __future__ import annotations

import pytest

from airflow_provider_wolkvox.testing import CONN_ENV_VAR

pytest_plugins = ["pytester"]

USER_TESTS = """
import json
import os

import pytest
import requests

from airflow_provider_wolkvox.api import TOKEN_HEADER, TOKEN_INFO_PATH

SERVERS = []


def test_the_fixture_serves_and_sets_the_default_connection(wolkvox_server):
    connection = json.loads(os.environ["AIRFLOW_CONN_WOLKVOX_DEFAULT"])
    assert connection == {
        "conn_type": "wolkvox",
        "host": wolkvox_server.url,
        "password": "test-token",
        "extra": {"operation": "test"},
    }
    response = requests.get(
        connection["host"] + TOKEN_INFO_PATH,
        params={"operation": "test"},
        headers={TOKEN_HEADER: "test-token"},
        timeout=5,
    )
    assert response.json()["data"]["token_use_today"] == 1
    SERVERS.append(wolkvox_server)


def test_afterwards_the_server_is_stopped_and_the_connection_gone():
    assert "AIRFLOW_CONN_WOLKVOX_DEFAULT" not in os.environ
    with pytest.raises(RuntimeError):
        SERVERS[0].url
"""


def test_wolkvox_server_fixture(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(CONN_ENV_VAR, raising=False)
    monkeypatch.setenv("PYTEST_DISABLE_PLUGIN_AUTOLOAD", "1")  # the installed plugins only slow the run
    pytester.makeconftest('pytest_plugins = ["airflow_provider_wolkvox.testing.pytest_plugin"]')
    pytester.makepyfile(USER_TESTS)

    result = pytester.runpytest("-p", "no:cacheprovider")

    result.assert_outcomes(passed=2)
