"""The fake CRM the sync tests write to, the contacts they write (one module, records keyed on
Email), and a CRM user's delete."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
import requests

from airflow_provider_wolkvox import api
from airflow_provider_wolkvox.client import RetryPolicy
from airflow_provider_wolkvox.testing import CONN_ENV_VAR, FakeWolkvoxServer
from tests.conftest import OPERATION, TOKEN

MODULE = "contacts"


@contextmanager
def default_crm(patch: pytest.MonkeyPatch, **options: Any) -> Iterator[FakeWolkvoxServer]:
    """A fake CRM of ``MODULE`` (``options`` for ``FakeWolkvoxServer``) as the default Connection,
    every client built without a policy retrying at once, twice at most."""
    with FakeWolkvoxServer({TOKEN: OPERATION}, modules={MODULE}, **options) as fake:
        patch.setenv(CONN_ENV_VAR, fake.airflow_connection())
        patch.setattr(
            "airflow_provider_wolkvox.client.client.RetryPolicy",
            lambda: RetryPolicy(base_delay=0, max_attempts=2),
        )
        yield fake


def contact(n: int, **changes: Any) -> dict[str, Any]:
    return {"Email": f"c{n}@example.com", "Nombre": f"Contacto {n}", "Ciudad": "Medellín", **changes}


def delete_in_the_crm(server: FakeWolkvoxServer, wolkvox_id: str) -> None:
    """Delete a record as a CRM user would, through delete.php."""
    response = requests.post(
        server.url + api.DELETE_PATH,
        json={"operation": OPERATION, "module": MODULE, "multiple": False, "wolkvox-id": wolkvox_id},
        headers={api.TOKEN_HEADER: TOKEN},
        timeout=5,
    )
    assert response.status_code == 200, response.text
