"""The CRM module as an Airflow Asset: the URI scheme registered through the provider info."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

import pytest
from airflow.providers.common.compat.sdk import Asset

from airflow_provider_wolkvox import get_provider_info
from airflow_provider_wolkvox.assets import (
    convert_asset_to_openlineage,
    create_asset,
    sanitize_uri,
    wolkvox_asset,
)
from airflow_provider_wolkvox.operators.lineage import LineageTarget, operator_lineage
from tests.conftest import connection_json


@pytest.mark.parametrize(
    ("uri", "normalised"),
    [
        ("wolkvox://CRM0001.Wolkvox.com/demo/contacts", "wolkvox://crm0001.wolkvox.com/demo/contacts"),
        ("wolkvox://sv0001.crmvox.com/demo/contacts/", "wolkvox://crm0001.wolkvox.com/demo/contacts"),
        (
            "wolkvox://127.0.0.1:8765/demo/Oportunidades de venta",
            "wolkvox://127.0.0.1:8765/demo/Oportunidades%20de%20venta",
        ),
    ],
)
def test_airflow_normalises_a_wolkvox_uri_with_the_providers_handler(uri: str, normalised: str) -> None:
    assert Asset(uri).uri == normalised


@pytest.mark.parametrize(
    "uri",
    [
        "wolkvox:///demo/contacts",
        "wolkvox://crm0001.wolkvox.com/contacts",
        "wolkvox://crm0001.wolkvox.com/a/b/c",
    ],
)
def test_a_uri_without_host_operation_and_module_is_refused(uri: str) -> None:
    with pytest.raises(ValueError, match="must be wolkvox://<host>/<operation>/<module>"):
        sanitize_uri(urlsplit(uri))


@pytest.mark.parametrize(
    ("uri", "message"),
    [
        ("wolkvox://crm0001.wolkvox.com:99999/demo/contacts", "has a port out of range"),
        ("wolkvox://ana@crm0001.wolkvox.com/demo/contacts", "Host '***@crm0001.wolkvox.com' has a user name"),
    ],
)
def test_a_uri_whose_host_a_connection_would_refuse_is_refused(uri: str, message: str) -> None:
    with pytest.raises(ValueError, match=rf"^a wolkvox asset: .*{re.escape(message)}"):
        sanitize_uri(urlsplit(uri))


def test_the_provider_info_registers_the_scheme_for_assets_and_datasets() -> None:
    info = get_provider_info()
    expected = {
        "schemes": ["wolkvox"],
        "handler": "airflow_provider_wolkvox.assets.sanitize_uri",
        "to_openlineage_converter": "airflow_provider_wolkvox.assets.convert_asset_to_openlineage",
        "factory": "airflow_provider_wolkvox.assets.create_asset",
    }
    assert info["asset-uris"] == [expected]
    assert info["dataset-uris"] == [expected]


def test_wolkvox_asset_names_the_module_of_a_connection_or_a_host(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AIRFLOW_CONN_CRM_SALES", connection_json("https://https://crm0007.wolkvox.com/"))
    assert wolkvox_asset("crm_sales", None, "leads").uri == "wolkvox://crm0007.wolkvox.com/modulotest03/leads"
    assert wolkvox_asset("crm_sales", "otra", "leads").uri == "wolkvox://crm0007.wolkvox.com/otra/leads"
    assert wolkvox_asset("crm0001.wolkvox.com", "demo", "contacts") == create_asset(
        host="crm0001.wolkvox.com", operation="demo", module="contacts"
    )
    with pytest.raises(ValueError, match="needs an operation"):
        wolkvox_asset("crm0001.wolkvox.com", None, "contacts")


def test_the_openlineage_dataset_of_the_asset_is_the_operators_output() -> None:
    target = LineageTarget("https://crm0001.wolkvox.com", "demo", "contacts", 5)
    [output] = operator_lineage(target).outputs
    dataset = convert_asset_to_openlineage(Asset(target.uri), None)
    assert (output.namespace, output.name) == (dataset.namespace, dataset.name)
    assert (dataset.namespace, dataset.name) == ("wolkvox://crm0001.wolkvox.com", "demo.contacts")
