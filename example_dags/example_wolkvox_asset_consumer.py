"""A DAG scheduled on the CRM's contacts module: it runs after each load that writes it, and reads
what arrived from the triggering asset event (see ``example_wolkvox_asset_producer.py``)."""

from __future__ import annotations

import pendulum
from airflow.providers.common.compat.sdk import DAG, get_current_context, task

from airflow_provider_wolkvox.assets import wolkvox_asset

CONTACTS = wolkvox_asset("wolkvox_default", None, "contacts")

with DAG(
    dag_id="example_wolkvox_asset_consumer",
    schedule=[CONTACTS],
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    tags=["example", "wolkvox"],
) as dag:

    @task
    def arrivals() -> dict:
        """The counts of the loads that triggered this run (Airflow 2.11 calls them dataset events)."""
        context = get_current_context()
        events = context.get("triggering_asset_events") or context.get("triggering_dataset_events") or {}
        created = sum(event.extra.get("created", 0) for batch in events.values() for event in batch)
        rejected = sum(event.extra.get("rejected", 0) for batch in events.values() for event in batch)
        print(f"{created} contacts arrived in the CRM ({rejected} rejected)")
        return {"created": created, "rejected": rejected}

    arrivals()
