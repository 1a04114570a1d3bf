"""The provider as Airflow discovers it: entry point, provider info, connection form, CLI."""

from __future__ import annotations

import inspect
import json
import os
import subprocess
import sys
from importlib.metadata import entry_points
from pathlib import Path

import pytest

import airflow_provider_wolkvox
from airflow_provider_wolkvox import CONN_FIELDS, CONN_TYPE, get_provider_info
from airflow_provider_wolkvox.hooks.wolkvox import WolkvoxHook
from airflow_provider_wolkvox.operators.insert import WolkvoxInsertManyOperator, WolkvoxInsertOperator
from airflow_provider_wolkvox.operators.upsert import WolkvoxUpsertOperator
from tests.conftest import REPO_ROOT

DEFAULT_CONN_ID = "wolkvox_default"


def test_entry_point_is_registered() -> None:
    [entry] = [
        e
        for e in entry_points(group="apache_airflow_provider")
        if e.value.startswith("airflow_provider_wolkvox")
    ]
    assert entry.value == "airflow_provider_wolkvox:get_provider_info"
    assert entry.load() is get_provider_info


def test_provider_info_declares_hook_operators_and_connection_type() -> None:
    info = get_provider_info()
    assert info["package-name"] == "airflow-provider-wolkvox"
    assert info["versions"] == [airflow_provider_wolkvox.__version__]
    assert info["hooks"][0]["python-modules"] == ["airflow_provider_wolkvox.hooks.wolkvox"]
    assert info["operators"][0]["python-modules"] == [
        "airflow_provider_wolkvox.operators.insert",
        "airflow_provider_wolkvox.operators.upsert",
    ]
    [conn_type] = info["connection-types"]
    assert conn_type["connection-type"] == "wolkvox"
    assert conn_type["hook-class-name"] == "airflow_provider_wolkvox.hooks.wolkvox.WolkvoxHook"
    assert set(conn_type["conn-fields"]) == {"operation", "timeout", "verify", "allow_insecure_http"}
    behaviour = conn_type["ui-field-behaviour"]
    assert set(behaviour["hidden-fields"]) >= {"login", "schema", "port"}
    assert behaviour["relabeling"] == {"host": "CRM server", "password": "Wolkvox-Token"}
    assert behaviour["placeholders"]["host"] == "crm0001.wolkvox.com"


def test_provider_info_matches_airflows_schema() -> None:
    jsonschema = pytest.importorskip("jsonschema")
    import airflow

    schema_path = Path(airflow.__file__).parent / "provider_info.schema.json"
    jsonschema.validate(get_provider_info(), json.loads(schema_path.read_text()))


def test_providers_manager_sees_the_connection_form() -> None:
    from airflow.providers_manager import ProvidersManager

    manager = ProvidersManager()
    assert "airflow-provider-wolkvox" in manager.providers
    field = manager.connection_form_widgets["extra__wolkvox__operation"].field
    # Airflow 3 builds the widget from conn-fields (a dict), Airflow 2 from the hook (a WTForms field).
    label = field["schema"]["title"] if isinstance(field, dict) else str(field.args[0])
    assert label == "Operation"
    behaviour = manager.field_behaviours["wolkvox"]
    assert behaviour["relabeling"]["password"] == "Wolkvox-Token"


def test_providers_manager_resolves_the_hook_and_its_default_connection() -> None:
    """What Airflow discovers names the hook whose default id every operator uses.

    Airflow 3's form metadata (``/ui/connections/hook_meta``) sets ``default_conn_name`` to null for
    every connection type itself; the id lives on the hook, where Airflow's hook info points.
    """
    try:  # Airflow 3: the task SDK's manager (ProvidersManager.hooks is deprecated there)
        from airflow.sdk.providers_manager_runtime import ProvidersManagerTaskRuntime as Manager
    except ImportError:  # Airflow 2.11
        from airflow.providers_manager import ProvidersManager as Manager

    hook_info = Manager().hooks[CONN_TYPE]
    assert hook_info is not None
    assert hook_info.hook_class_name == airflow_provider_wolkvox.HOOK_CLASS_NAME
    assert hook_info.connection_id_attribute_name == "wolkvox_conn_id"
    assert hook_info.package_name == "airflow-provider-wolkvox"
    assert WolkvoxHook.default_conn_name == DEFAULT_CONN_ID
    assert inspect.signature(WolkvoxHook).parameters["wolkvox_conn_id"].default == DEFAULT_CONN_ID
    for operator in (WolkvoxInsertOperator, WolkvoxInsertManyOperator, WolkvoxUpsertOperator):
        # The first __init__ up the class tree that takes the argument (the loads pass it on).
        [default, *_] = [
            parameters["wolkvox_conn_id"].default
            for parameters in (inspect.signature(cls.__init__).parameters for cls in operator.__mro__)
            if "wolkvox_conn_id" in parameters
        ]
        assert default == DEFAULT_CONN_ID, operator


def test_the_form_and_the_docs_word_the_timeout_alike() -> None:
    description = CONN_FIELDS["timeout"]["description"]
    assert "connecting, sending and the whole answer" in description
    assert (
        f"| Timeout (extra `timeout`) | {description} |" in (REPO_ROOT / "docs" / "connection.md").read_text()
    )


def test_the_docs_say_how_to_enable_the_test_button() -> None:
    from airflow.configuration import conf

    # Airflow's own default, which the docs call Disabled.
    assert conf.get_default_value("core", "test_connection") == "Disabled"
    for page in (REPO_ROOT / "README.md", REPO_ROOT / "docs" / "connection.md"):
        text = " ".join(page.read_text(encoding="utf-8").split())
        assert "`AIRFLOW__CORE__TEST_CONNECTION=Enabled`" in text, page
        assert "one call" in text, page


@pytest.mark.parametrize(
    ("command", "expected"), [("list", "airflow-provider-wolkvox"), ("hooks", "wolkvox_conn_id")]
)
def test_airflow_cli_lists_the_provider_without_warnings(command: str, expected: str, tmp_path: Path) -> None:
    airflow = Path(sys.executable).with_name("airflow")
    result = subprocess.run(
        [str(airflow), "providers", command],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "AIRFLOW_HOME": str(tmp_path)},
        check=True,
    )
    assert expected in result.stdout
    assert "wolkvox" in result.stdout
    output = (result.stdout + result.stderr).lower()
    assert "warning" not in output
    assert "error" not in output
