"""Field values: the typed-field helpers and the one rule that turns Python values into JSON.

Plain fields take plain JSON values. Address, table, search and relationship fields need an object
with a ``type``; the helpers below build them. Every record is checked and converted by
:func:`prepare_fields` before anything is sent, so a bad value fails with the record and the field
named instead of a half-sent load.

Conversion rule (documented in the README): ``datetime`` → ``"YYYY-MM-DD HH:MM:SS"`` (wall-clock time
as given, any timezone dropped, microseconds cut), ``date`` → ``"YYYY-MM-DD"``, ``Decimal`` → JSON
number, enums → their value, tuples → lists. Strings, booleans, ints, finite floats, None, lists
and mappings pass through (recursively checked). Anything else (bytes, sets, NaN, infinities,
arbitrary objects) is rejected.
"""

from __future__ import annotations

import datetime
import enum
import math
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from airflow_provider_wolkvox.exceptions import WolkvoxInputError

DATETIME_FORMAT = "%Y-%m-%d %H:%M:%S"
# Values sent exactly as they are (floats are not: NaN and infinities must be refused).
_PLAIN_TYPES = frozenset({str, int, bool, type(None)})
DATE_FORMAT = "%Y-%m-%d"


def typed(field_type: str, value: Any, **extra: Any) -> dict[str, Any]:
    """Build a typed field value, e.g. ``typed("currency", "1750905", symbol="COP")``."""
    return {"type": field_type, "value": value, **extra}


def address(value: str) -> dict[str, Any]:
    """An address field: ``{"type": "address", "value": "Calle 145a #12-60"}``."""
    return typed("address", value)


def table(rows: list[Mapping[str, Any]]) -> dict[str, Any]:
    """A table field: ``{"type": "table", "value": [{"Ropa": "Camisetas"}, ...]}``."""
    return typed("table", [dict(row) for row in rows])


def search(value: str, value_id: str, module: str) -> dict[str, Any]:
    """A search (lookup) field pointing at record ``value_id`` of ``module``, shown as ``value``."""
    return typed("search", value, value_id=value_id, searchModuleName=module)


def prepare_fields(fields: Any, *, record: int | str | None = None) -> dict[str, Any]:
    """Check one record's fields and return a JSON-ready copy.

    :param fields: mapping of field label to value.
    :param record: the record's index or file line, named in errors.
    :raises WolkvoxInputError: naming the record and the field.
    """
    if type(fields) is dict and fields:
        # The common case of bulk loads, checked at a fraction of the general path's cost.
        for name, value in fields.items():
            if type(name) is not str or type(value) not in _PLAIN_TYPES or not name.strip():
                break
        else:
            return dict(fields)
    where = "" if record is None else f"record {record}: "
    if not isinstance(fields, Mapping):
        raise WolkvoxInputError(
            f"{where}fields must be a mapping of field name to value, got {type(fields).__name__}",
            record=record,
        )
    if not fields:
        raise WolkvoxInputError(f"{where}fields is empty; a record needs at least one field", record=record)
    prepared: dict[str, Any] = {}
    for name, value in fields.items():
        if not isinstance(name, str) or not name.strip():
            raise WolkvoxInputError(
                f"{where}field names must be non-empty strings, got {name!r}", record=record, field=str(name)
            )
        if isinstance(value, Mapping) and "type" in value and "value" not in value:
            raise WolkvoxInputError(
                f"{where}field {name!r}: a typed value ({value['type']!r}) needs a 'value'",
                record=record,
                field=name,
            )
        try:
            prepared[name] = to_json_value(value)
        except TypeError as exc:
            raise WolkvoxInputError(f"{where}field {name!r}: {exc}", record=record, field=name) from None
    return prepared


def prepare_record(fields: Any, *, record: int | str | None = None) -> tuple[dict[str, Any], bytes]:
    """Check one record and encode it as a request will carry it: the prepared fields and their JSON."""
    import json

    prepared = prepare_fields(fields, record=record)
    return prepared, json.dumps(prepared, ensure_ascii=False, separators=(",", ":")).encode()


def to_json_value(value: Any) -> Any:
    """Convert ``value`` by the module's rule; raise ``TypeError`` saying what cannot be sent."""
    # Exact-type checks first: they cover almost every value of a bulk load at the lowest cost.
    kind = type(value)
    if kind is str or kind is int or kind is bool or value is None:
        return value
    if kind is float:
        if not math.isfinite(value):
            raise TypeError(f"{value!r} is not a JSON number")
        return value
    if isinstance(value, datetime.datetime):
        return value.strftime(DATETIME_FORMAT)
    if isinstance(value, datetime.date):
        return value.strftime(DATE_FORMAT)
    if isinstance(value, Decimal):
        if not value.is_finite():
            raise TypeError(f"{value!r} is not a JSON number")
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, enum.Enum):
        return to_json_value(value.value)
    # Other subclasses of the plain types (numpy floats, ...) are sent as their plain value.
    if isinstance(value, str):
        return str.__str__(value)
    for plain in (bool, int, float):
        if isinstance(value, plain):
            return to_json_value(plain(value))
    if isinstance(value, Mapping):
        return {_key(key): to_json_value(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_json_value(item) for item in value]
    raise TypeError(f"a {kind.__name__} value cannot be sent as JSON")


def _key(key: Any) -> str:
    if not isinstance(key, str):
        raise TypeError(f"nested key {key!r} is not a string")
    return key
