"""Operators that insert wolkvox CRM records: task semantics only (templating, XCom, fail-fast).

Everything about HTTP, retries and batching lives in the hook and the client below it.
"""

from __future__ import annotations

import ast
import json
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, ClassVar

from airflow.providers.common.compat.sdk import AirflowFailException, BaseOperator

from airflow_provider_wolkvox.exceptions import WolkvoxError, WolkvoxInputError
from airflow_provider_wolkvox.hooks.wolkvox import WolkvoxHook

if TYPE_CHECKING:
    from airflow.providers.common.compat.sdk import Context


class WolkvoxInsertOperator(BaseOperator):
    """Create one record in a wolkvox CRM module and return its ``wolkvox_id`` (XCom ``return_value``).

    :param module: the CRM module, e.g. ``"contacts"``. (templated)
    :param fields: field label → value, as a mapping or a JSON object string; values may be
        ``datetime``, ``date`` or ``Decimal`` (see :mod:`airflow_provider_wolkvox.fields`). (templated)
    :param operation: the CRM operation; defaults to the Connection's extra ``operation``. (templated)
    :param wolkvox_conn_id: the wolkvox Connection. (templated)
    """

    template_fields: Sequence[str] = ("module", "fields", "operation", "wolkvox_conn_id")
    template_fields_renderers: ClassVar[dict[str, str]] = {"fields": "json"}
    ui_color = "#e8f0fe"

    def __init__(
        self,
        *,
        module: str,
        fields: Mapping[str, Any] | str,
        operation: str | None = None,
        wolkvox_conn_id: str = WolkvoxHook.default_conn_name,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.module = module
        self.fields = fields
        self.operation = operation
        self.wolkvox_conn_id = wolkvox_conn_id

    def execute(self, context: Context) -> str:
        fields = mapping_argument(self.fields, "fields")
        hook = WolkvoxHook(self.wolkvox_conn_id)
        with task_failure_semantics():
            wolkvox_id = hook.insert(self.module, fields, operation=self.operation)
            # Field values are personal data: the log names the record, not its content.
            self.log.info(
                "Created wolkvox record %s in module %r of operation %r",
                wolkvox_id,
                self.module,
                hook.operation_for(self.operation),
            )
        return wolkvox_id


@contextmanager
def task_failure_semantics() -> Iterator[None]:
    """Fail without task retries on errors a retry cannot fix; let the others reach Airflow's retries."""
    try:
        yield
    except WolkvoxError as error:
        if error.fail_fast:
            raise AirflowFailException(str(error)) from error
        raise


def mapping_argument(value: Any, name: str) -> Mapping[str, Any]:
    """A mapping argument given as a mapping or as a string (JSON, or a rendered Python dict)."""
    parsed = _parse_text(value, name) if isinstance(value, str) else value
    if not isinstance(parsed, Mapping):
        raise WolkvoxInputError(
            f"{name} must be a mapping or a JSON object string, got {type(parsed).__name__}"
        )
    return parsed


def _parse_text(text: str, name: str) -> Any:
    # Without render_template_as_native_obj a rendered dict arrives as its Python repr, not JSON.
    try:
        return json.loads(text)
    except ValueError:
        pass
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        raise WolkvoxInputError(
            f"{name} is a string that is not JSON; pass a mapping, or render the template with | tojson"
        ) from None
