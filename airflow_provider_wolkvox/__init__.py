"""Apache Airflow provider for the wolkvox CRM REST API."""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"

PACKAGE_NAME = "airflow-provider-wolkvox"
INTEGRATION_NAME = "Wolkvox CRM"
HOOK_CLASS_NAME = "airflow_provider_wolkvox.hooks.wolkvox.WolkvoxHook"
CONN_TYPE = "wolkvox"
HOST_PLACEHOLDER = "crm0001.wolkvox.com"


def get_provider_info() -> dict[str, Any]:
    """Describe the provider to Airflow's providers manager (the ``apache_airflow_provider`` entry point).

    ``conn-fields`` and ``ui-field-behaviour`` let Airflow 3 render the connection form without
    importing the hook.
    """
    return {
        "package-name": PACKAGE_NAME,
        "name": INTEGRATION_NAME,
        "description": "Insert records into wolkvox CRM from Airflow DAGs and get their new record ids back.",
        "versions": [__version__],
        "integrations": [
            {
                "integration-name": INTEGRATION_NAME,
                "external-doc-url": "https://www.wolkvox.com/",
                "tags": ["service"],
            }
        ],
        "hooks": [
            {
                "integration-name": INTEGRATION_NAME,
                "python-modules": ["airflow_provider_wolkvox.hooks.wolkvox"],
            }
        ],
        "operators": [
            {
                "integration-name": INTEGRATION_NAME,
                "python-modules": [
                    "airflow_provider_wolkvox.operators.insert",
                    "airflow_provider_wolkvox.operators.upsert",
                ],
            }
        ],
        "asset-uris": [ASSET_URIS],
        # Airflow 2.11 reads the same entry under the name datasets had then.
        "dataset-uris": [ASSET_URIS],
        "connection-types": [
            {
                "hook-class-name": HOOK_CLASS_NAME,
                "hook-name": INTEGRATION_NAME,
                "connection-type": CONN_TYPE,
                "conn-fields": CONN_FIELDS,
                "ui-field-behaviour": UI_FIELD_BEHAVIOUR,
            }
        ],
    }


ASSET_URIS: dict[str, Any] = {
    "schemes": ["wolkvox"],
    "handler": "airflow_provider_wolkvox.assets.sanitize_uri",
    "to_openlineage_converter": "airflow_provider_wolkvox.assets.convert_asset_to_openlineage",
    "factory": "airflow_provider_wolkvox.assets.create_asset",
}

# The Connection form, declared once: Airflow 3 reads it from the provider info, and the hook's
# legacy form methods (Airflow 2) are derived from it.
CONN_FIELDS: dict[str, dict[str, Any]] = {
    "operation": {
        "label": "Operation",
        "description": "Default CRM operation (tenant) name, used when a task gives none.",
        "schema": {"type": ["string", "null"]},
    },
    "timeout": {
        "label": "Timeout (seconds)",
        "description": (
            "Seconds one request may take in all: connecting, sending and the whole answer. "
            "60 when empty, at most 3,600."
        ),
        "schema": {"type": ["number", "null"], "exclusiveMinimum": 0},
    },
    "verify": {
        "label": "Verify TLS certificate",
        "description": "Turn off only for a server with a private certificate.",
        "schema": {"type": ["boolean", "null"], "default": True},
    },
    "allow_insecure_http": {
        "label": "Allow plain http:// to a non-loopback host",
        "description": "Sends the token in clear text. Off by default.",
        "schema": {"type": ["boolean", "null"], "default": False},
    },
}

UI_FIELD_BEHAVIOUR: dict[str, Any] = {
    "hidden-fields": ["login", "schema", "port", "extra"],
    "relabeling": {"host": "CRM server", "password": "Wolkvox-Token"},
    "placeholders": {
        "host": HOST_PLACEHOLDER,
        "password": "token from CRM > Configuration > wolkvox integration > Tokens",
        "operation": "my_operation",
        "timeout": "60",
    },
}
