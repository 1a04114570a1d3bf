"""The contacts the sync tests write (one module, records keyed on Email), and a CRM user's delete."""

from __future__ import annotations

from typing import Any

import requests

from airflow_provider_wolkvox import api
from airflow_provider_wolkvox.testing import FakeWolkvoxServer
from tests.conftest import OPERATION, TOKEN

MODULE = "contacts"


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
