"""Insert one contact from DAG params, then hand its ``wolkvox_id`` to a downstream task.

Run it with a Connection ``wolkvox_default`` (see the README), e.g. against the embedded fake CRM:
``python -m airflow_provider_wolkvox.testing serve`` prints the matching environment variable.
"""

from __future__ import annotations

import pendulum
from airflow.providers.common.compat.sdk import DAG, Param, task

from airflow_provider_wolkvox.fields import address
from airflow_provider_wolkvox.operators.insert import WolkvoxInsertOperator

with DAG(
    dag_id="example_wolkvox_insert",
    schedule=None,
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    params={
        "name": Param("Ana Gómez", type="string"),
        "email": Param("ana.gomez@example.com", type="string"),
        "street": Param("Calle 145a #12-60", type="string"),
    },
    tags=["example", "wolkvox"],
) as dag:
    insert_contact = WolkvoxInsertOperator(
        task_id="insert_contact",
        module="contacts",
        fields={
            "Nombre": "{{ params.name }}",
            "Email": "{{ params.email }}",
            "Direccion": address("{{ params.street }}"),
            "Fecha de alta": "{{ dag_run.start_date | ds }}",
        },
    )

    @task
    def welcome(wolkvox_id: str) -> str:
        """Stands for any downstream step that needs the new record's id."""
        print(f"new contact wolkvox_id={wolkvox_id}")
        return wolkvox_id

    welcome(insert_contact.output)
