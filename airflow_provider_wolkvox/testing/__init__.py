"""An embedded fake of the wolkvox CRM API, to test DAGs and clients offline (like moto for AWS).

:class:`FakeWolkvoxServer` serves the documented contract of :mod:`airflow_provider_wolkvox.api` on
loopback: the endpoints (insert, insertMany, query, queryDates, update, delete, token information)
and their envelopes, every documented error row, the per-token quota and the limit of two requests
in flight per token. It keeps the records in memory with the CRM's metadata on the CRM's clock
(``utc_offset_hours``, default Colombia's UTC-5), so a test can check what really reached the CRM;
it can refuse misspelt modules (``modules``), restart the quota every few seconds
(``quota_period``), seed records created in the past (``add_records``), and inject faults
(:class:`Fault`) to show what a client does when a request is lost, slow or answered oddly. It
needs nothing beyond the standard library::

    import os

    from airflow_provider_wolkvox.testing import CONN_ENV_VAR, FakeWolkvoxServer, Fault

    with FakeWolkvoxServer({"test-token": "test"}, unique_fields={"contacts": ["Email"]}) as server:
        os.environ[CONN_ENV_VAR] = server.airflow_connection()  # token, operation and URL
        server.inject(Fault.STORE_THEN_DROP)  # the next request is stored but gets no answer
        ...  # run the task or the client
        assert len(server.records("contacts")) == 1  # what really reached the CRM
        assert server.max_in_flight("test-token") <= 2

In pytest, ``pytest_plugins = ["airflow_provider_wolkvox.testing.pytest_plugin"]`` provides the
``wolkvox_server`` fixture, with the default connection set. From a shell,
``python -m airflow_provider_wolkvox.testing serve --port 8765`` runs a server for a demo and prints
the ``AIRFLOW_CONN_WOLKVOX_DEFAULT`` line to export, ``python -m airflow_provider_wolkvox.testing
records --url http://127.0.0.1:8765 --module contacts`` prints the records of a running one, and
``... stats --url http://127.0.0.1:8765`` its calls per endpoint, quota used and refusals.
"""

from __future__ import annotations

from airflow_provider_wolkvox.testing._faults import Fault
from airflow_provider_wolkvox.testing.server import (
    CONN_ENV_VAR,
    FakeToken,
    FakeWolkvoxServer,
    RequestLogEntry,
)

__all__ = ["CONN_ENV_VAR", "FakeToken", "FakeWolkvoxServer", "Fault", "RequestLogEntry"]
