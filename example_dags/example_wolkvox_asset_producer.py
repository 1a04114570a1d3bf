"""A load that writes the CRM's contacts module, declared as the Asset ``wolkvox://<host>/<operation>/contacts``.

Its outlet event carries the load's counts (created, rejected, ... and the calls used), so that a
DAG scheduled on the asset (``example_wolkvox_asset_consumer.py``) learns what arrived.
"""

from __future__ import annotations

import pendulum
from airflow.providers.common.compat.sdk import DAG

from airflow_provider_wolkvox.assets import wolkvox_asset
from airflow_provider_wolkvox.operators.insert import WolkvoxInsertManyOperator

# The module of the CRM server and operation of the Connection wolkvox_default (read at parse time;
# pass a host such as "crm0001.wolkvox.com" and an operation to name it without the Connection).
CONTACTS = wolkvox_asset("wolkvox_default", None, "contacts")

with DAG(
    dag_id="example_wolkvox_asset_producer",
    schedule=None,
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    tags=["example", "wolkvox"],
) as dag:
    WolkvoxInsertManyOperator(
        task_id="load_contacts",
        module="contacts",
        records=[{"Nombre": f"Asistente {n}", "Email": f"asistente{n}@example.com"} for n in range(20)],
        outlets=[CONTACTS],
    )
