"""The embedded fake CRM used directly: a fault injected, the client's claims checked against its store.

``docs/testing.md`` quotes it; ``tests/test_docs.py`` runs it: ``.venv/bin/python docs/samples/fake_crm.py``.
"""

from __future__ import annotations

import os

from airflow_provider_wolkvox.hooks.wolkvox import WolkvoxHook
from airflow_provider_wolkvox.testing import CONN_ENV_VAR, FakeWolkvoxServer, Fault

CONTACTS = [{"Nombre": f"Cliente {n}", "Email": f"cliente{n}@example.com"} for n in range(50)]


def main() -> None:
    with FakeWolkvoxServer(
        {"my-token": "my_operation"}, unique_fields={"contacts": ["Email"]}, latency=0.02, quota=4800
    ) as server:
        # A short timeout: the records of a lost answer are looked up once it has passed.
        os.environ[CONN_ENV_VAR] = server.airflow_connection(timeout=2)
        # The third batch is stored, then the connection closes: its answer is lost.
        server.inject(Fault.STORE_THEN_DROP, path="/server/API/v2/custom/insertMany.php", after=2)
        result = WolkvoxHook().insert_many("contacts", CONTACTS, batch_size=10, dedupe_field="Email")

        stored = {record["Email"]: record["wolkvox_id"] for record in server.records("contacts")}
        assert Fault.STORE_THEN_DROP.stores
        assert result.ids == [stored[contact["Email"]] for contact in CONTACTS]  # each record once
        assert server.max_in_flight("my-token") <= 2
        print(f"{len(stored)} records stored once each, {server.quota_used('my-token')} calls")


if __name__ == "__main__":
    main()
