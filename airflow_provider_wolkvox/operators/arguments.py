"""Task semantics shared by the operators: JSON arguments, render-time parsing, fail-fast errors."""

from __future__ import annotations

import ast
import json
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from typing import Any, ClassVar

from airflow.providers.common.compat.sdk import AirflowFailException

from airflow_provider_wolkvox.exceptions import WolkvoxError, WolkvoxInputError


@contextmanager
def task_failure_semantics() -> Iterator[None]:
    """Fail without task retries on errors a retry cannot fix; let the others reach Airflow's retries."""
    try:
        yield
    except WolkvoxError as error:
        if error.fail_fast:
            raise AirflowFailException(str(error)) from error
        raise


def check_input_form(
    records: Any, records_path: str | None, sql: str | None, sql_conn_id: str | None, sql_parameters: Any
) -> None:
    """Exactly one input form of a load: ``records``, ``records_path``, or ``sql`` with ``sql_conn_id``.

    :raises WolkvoxInputError: (a ``ValueError``) naming what is missing or given twice.
    """
    forms = {"records": records, "records_path": records_path, "sql": sql}
    given = [name for name, value in forms.items() if value is not None]
    if len(given) != 1:
        raise WolkvoxInputError(
            "give exactly one of records and records_path, or sql with sql_conn_id; got "
            + (" and ".join(given) or "none of them")
        )
    if sql is not None and not (isinstance(sql, str) and sql.strip()):
        raise WolkvoxInputError(f"sql must be a query (a non-empty string), got {sql!r}")
    if (sql is None) != (sql_conn_id is None):
        raise WolkvoxInputError("sql and sql_conn_id go together: give both or neither")
    if sql_parameters is not None and sql is None:
        raise WolkvoxInputError("sql_parameters is given without sql")


def sequence_argument(value: Any, name: str) -> Sequence[Mapping[str, Any]]:
    """A list-of-mappings argument given as a list or as a string (JSON array, or a rendered list)."""
    parsed = parse_text(value, name) if isinstance(value, str) else value
    if isinstance(parsed, Mapping) or not isinstance(parsed, Sequence):
        raise WolkvoxInputError(
            f"{name} must be a list of mappings or a JSON array string, got {type(parsed).__name__}"
        )
    return parsed


def mapping_argument(value: Any, name: str) -> Mapping[str, Any]:
    """A mapping argument given as a mapping or as a string (JSON, or a rendered Python dict)."""
    parsed = parse_text(value, name) if isinstance(value, str) else value
    if not isinstance(parsed, Mapping):
        raise WolkvoxInputError(
            f"{name} must be a mapping or a JSON object string, got {type(parsed).__name__}"
        )
    return parsed


def parse_text(text: str, name: str) -> Any:
    """``text`` read as JSON, or as the Python repr a template renders a dict or list to."""
    # Without render_template_as_native_obj a rendered dict arrives as its Python repr, not JSON.
    try:
        return json.loads(text)
    except ValueError:
        pass
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError, MemoryError, RecursionError):
        raise WolkvoxInputError(
            f"{name} is a string that is not JSON; pass a mapping, or render the template with | tojson"
        ) from None


class RendersJsonArguments:
    """Parses the ``json_arguments`` that rendered to a string, so that the Rendered Templates view
    shows the JSON object, not a string or a Python repr. A string that does not parse is left for
    ``execute`` to refuse, naming the argument."""

    json_arguments: ClassVar[tuple[str, ...]] = ()

    def render_template_fields(self, context: Any, jinja_env: Any = None) -> None:
        super().render_template_fields(context, jinja_env)  # type: ignore[misc]
        for name in self.json_arguments:
            value = getattr(self, name)
            if isinstance(value, str):
                with suppress(WolkvoxInputError):
                    setattr(self, name, parse_text(value, name))
