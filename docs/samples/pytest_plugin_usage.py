"""The pytest fixture of the fake CRM, as a test of your own DAG code would use it.

``docs/testing.md`` quotes it; ``tests/test_docs.py`` runs it, and it runs its test with pytest:
``.venv/bin/python docs/samples/pytest_plugin_usage.py``.
"""

from __future__ import annotations

import sys

import pytest

from airflow_provider_wolkvox.hooks.wolkvox import WolkvoxHook
from airflow_provider_wolkvox.testing import FakeWolkvoxServer

pytest_plugins = ["airflow_provider_wolkvox.testing.pytest_plugin"]  # usually in your conftest.py


def test_a_contact_reaches_the_crm(wolkvox_server: FakeWolkvoxServer) -> None:
    # wolkvox_server is running, and AIRFLOW_CONN_WOLKVOX_DEFAULT points at it
    # (token "test-token", operation "test").
    wolkvox_id = WolkvoxHook().insert("contacts", {"Nombre": "Ana Gómez"})

    [record] = wolkvox_server.records("contacts")
    assert record["wolkvox_id"] == wolkvox_id
    assert wolkvox_server.quota_used("test-token") == 1


def main() -> int:
    return int(pytest.main([__file__, "-q", "-p", "no:cacheprovider"]))


if __name__ == "__main__":
    sys.exit(main())
