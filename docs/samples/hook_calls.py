"""The hook's calls and the typed field values, run against the embedded fake CRM.

``docs/operators.md`` quotes it; ``tests/test_docs.py`` runs it:
``.venv/bin/python docs/samples/hook_calls.py``.
"""

from __future__ import annotations

import os

from airflow_provider_wolkvox.fields import address, search, table, typed
from airflow_provider_wolkvox.hooks.wolkvox import WolkvoxHook
from airflow_provider_wolkvox.testing import CONN_ENV_VAR, FakeWolkvoxServer

CONTACT = {
    "Nombre": "Ana Gómez",
    "Email": "ana@example.com",
    "Direccion": address("Calle 145a #12-60"),
    "Productos preferidos": table([{"Ropa": "Camisetas"}, {"Carnes": "Pescado"}]),
    "Cliente": search("Ana Gómez", value_id="64cb1f0e2a9d4c0012ab34cd", module="contacts"),
    "Precio": typed("currency", "1750905", symbol="COP", convert=1750905),
}
LEADS = [{"Nombre": f"Lead {n}", "Email": f"lead{n}@example.com"} for n in range(250)]


def use_the_hook() -> dict:
    hook = WolkvoxHook("wolkvox_default")
    with hook.client:  # one keep-alive session for every call below; closed at the end
        wolkvox_id = hook.insert("contacts", CONTACT, dedupe_field="Email")
        [found] = hook.query("contacts", "Email", "ana@example.com")
        hook.update("contacts", wolkvox_id, {"Ciudad": "Medellín"})
        loaded = hook.insert_many("leads", LEADS, batch_size=100, dedupe_field="Email")
        synced = hook.upsert_many(
            "contacts", [{"Email": "ana@example.com", "Ciudad": "Cali"}], key_field="Email"
        )
        quota = hook.token_info()
    return {
        "id": wolkvox_id,
        "found": found["wolkvox_id"],
        "lead_ids": loaded.ids,  # in input order
        "load": loaded.summary.as_dict(),  # counts by state, calls
        "synced": synced.ids_by_key,  # {"ana@example.com": wolkvox_id}
        "calls_left": quota.calls_left,
    }


def main() -> None:
    with FakeWolkvoxServer(
        {"demo-token": "demo"}, unique_fields={"contacts": ["Email"]}, quota=4800
    ) as server:
        os.environ[CONN_ENV_VAR] = server.airflow_connection()
        outcome = use_the_hook()
        [contact] = server.records("contacts")
        leads = {record["Email"]: record["wolkvox_id"] for record in server.records("leads")}
        calls = server.quota_used("demo-token")
    assert outcome["id"] == outcome["found"] == contact["wolkvox_id"]
    assert outcome["synced"] == {"ana@example.com": contact["wolkvox_id"]}
    assert {name: contact[name] for name in CONTACT} == CONTACT  # typed values stored as sent
    assert contact["Ciudad"] == "Cali"  # the sync changed the field the update wrote
    assert outcome["lead_ids"] == [leads[lead["Email"]] for lead in LEADS]
    assert (outcome["load"]["created"], outcome["load"]["calls"]) == (250, 3)
    # insert, query, update, 3 batches, the sync's look-up and update, token information
    assert calls == 9
    assert outcome["calls_left"] == 4800 - calls
    print("hook calls: every call reached the fake CRM as documented")


if __name__ == "__main__":
    main()
