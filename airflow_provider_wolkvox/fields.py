"""Field values: the typed-field helpers and the one rule that turns Python values into JSON.

Plain fields take plain JSON values. Address, table, search and relationship fields need an object
with a ``type``; the helpers below build them. Every record is checked and converted by
:func:`prepare_fields` and encoded by :func:`encode_fields` (both at once: :func:`prepare_record`)
before anything is sent, so a bad value fails with the record and the field named instead of a
half-sent load.

Conversion rule (documented in docs/operators.md, "Field values"): ``datetime`` → ``"YYYY-MM-DD
HH:MM:SS"`` (wall-clock time as given, any timezone dropped, microseconds cut), ``date`` →
``"YYYY-MM-DD"``, ``Decimal`` → JSON number, enums → their value, tuples → lists. Strings, booleans,
ints, finite floats, None, lists and mappings pass through (recursively checked). Anything else
(bytes, sets, NaN, infinities, arbitrary objects) is rejected.

Limits: a field's value may nest mappings and lists :data:`MAX_NESTING_DEPTH` (32) levels deep
(a list is one level, a mapping in it a second); deeper values are refused, which also bounds the
recursion of conversion and encoding. Text must be valid Unicode (no lone surrogates, which UTF-8
cannot carry) and integers must fit Python's int-to-text limit (``sys.get_int_max_str_digits``,
4,300 digits by default): :func:`encode_fields` is the authority on what can be sent.

Encoding: request bodies are compact UTF-8 JSON with NaN and infinities refused, by the options of
:data:`JSON_OPTIONS`; :func:`encode_json` applies them, for the client's bodies too, so that a
record encodes to the same bytes wherever it is encoded.
"""

from __future__ import annotations

import datetime
import enum
import json
import math
import sys
from collections.abc import Mapping
from decimal import Decimal
from types import MappingProxyType
from typing import Any, Final

from airflow_provider_wolkvox.exceptions import WolkvoxInputError

DATETIME_FORMAT = "%Y-%m-%d %H:%M:%S"
DATE_FORMAT = "%Y-%m-%d"
#: How many mappings and lists a field's value may nest, one inside another.
MAX_NESTING_DEPTH: Final = 32
#: The ``json.dumps`` options of every request body: compact, UTF-8 text as is, no NaN/Infinity.
JSON_OPTIONS: Final[Mapping[str, Any]] = MappingProxyType(
    {"ensure_ascii": False, "separators": (",", ":"), "allow_nan": False}
)
# Built once: json.dumps with options other than the defaults builds an encoder on every call.
_ENCODER: Final = json.JSONEncoder(**JSON_OPTIONS)
# What json and UTF-8 raise for a value they cannot encode (UnicodeEncodeError is a ValueError).
_ENCODING_ERRORS = (TypeError, ValueError, RecursionError)
# Values sent exactly as they are (floats are not: NaN and infinities must be refused).
_PLAIN_TYPES = frozenset({str, int, bool, type(None)})


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


def encode_json(value: Any) -> bytes:
    """Encode ``value`` as a request body does: ``json.dumps(value, **JSON_OPTIONS)`` in UTF-8.

    :raises TypeError, ValueError, RecursionError: as ``json`` and the UTF-8 codec raise them.
    """
    return _ENCODER.encode(value).encode("utf-8")


def prepare_record(fields: Any, *, record: int | str | None = None) -> tuple[dict[str, Any], bytes]:
    """Check and convert one record's fields (:func:`prepare_fields`) and encode them (:func:`encode_fields`).

    :param fields: mapping of field label to value.
    :param record: the record's index or file line, named in errors.
    :return: the JSON-ready fields and the exact bytes they contribute to a request body.
    :raises WolkvoxInputError: naming the record and the field.
    """
    prepared = prepare_fields(fields, record=record)
    return prepared, encode_fields(prepared, record=record)


def encode_fields(fields: dict[str, Any], *, record: int | str | None = None) -> bytes:
    """The exact bytes one record's fields contribute to a request body (see :func:`encode_json`).

    :param fields: the record's fields, as :func:`prepare_fields` returns them.
    :param record: the record's index or file line, named in errors.
    :raises WolkvoxInputError: naming the record and the field that cannot be encoded (lone
        surrogates, an int too long for ``str()``, anything ``json`` refuses); a field whose name
        is at fault is named, in the message and in ``field``, by its ``ascii()``.
    """
    try:
        return encode_json(fields)
    except _ENCODING_ERRORS:
        raise _encoding_error(fields, record) from None


def prepare_fields(fields: Any, *, record: int | str | None = None) -> dict[str, Any]:
    """Check one record's fields and return them JSON-ready.

    A plain dict of plain values (text, numbers, booleans, None) is returned as it is, not copied (a
    bulk load holds every record of an in-memory input); anything else as a converted copy. Callers
    never change the dict they get.

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
            return fields
    where = _where(record)
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
            prepared[name] = _convert(value, 0)
        except (TypeError, ValueError) as exc:
            raise WolkvoxInputError(f"{where}field {name!r}: {exc}", record=record, field=name) from None
    return prepared


def to_json_value(value: Any) -> Any:
    """Convert ``value`` by the module's rule.

    :raises TypeError: saying what cannot be sent (a type JSON has no form for, NaN, infinities).
    :raises ValueError: for a value nested deeper than :data:`MAX_NESTING_DEPTH`, or a ``Decimal``
        too large to be sent.
    """
    return _convert(value, 0)


def _convert(value: Any, depth: int) -> Any:
    """:func:`to_json_value` of a value ``depth`` mappings and lists deep."""
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
        return _decimal_number(value)
    if isinstance(value, enum.Enum):
        return _convert(value.value, depth)
    # Other subclasses of the plain types (numpy floats, ...) are sent as their plain value; the
    # base class's own conversion, since a subclass's may hand back the subclass.
    if isinstance(value, str):
        return str.__str__(value)
    if isinstance(value, int):  # bool cannot be subclassed: an int subclass
        return int.__int__(value)
    if isinstance(value, float):
        return _convert(float.__float__(value), depth)
    if isinstance(value, (Mapping, list, tuple)):
        if depth >= MAX_NESTING_DEPTH:
            raise ValueError(f"nested deeper than {MAX_NESTING_DEPTH} levels")
        if isinstance(value, Mapping):
            return {_key(key): _convert(item, depth + 1) for key, item in value.items()}
        return [_convert(item, depth + 1) for item in value]
    raise TypeError(f"a {kind.__name__} value cannot be sent as JSON")


def _decimal_number(value: Decimal) -> int | float:
    """A ``Decimal`` as the JSON number it stands for, refused where it has none."""
    if not value.is_finite():
        raise TypeError(f"{value!r} is not a JSON number")
    if value == value.to_integral_value():
        # Checked before int(): Decimal("1e999999999") would build a billion-digit int first.
        digits = value.adjusted() + 1
        limit = _int_digit_limit()
        if value and limit and digits > limit:
            raise ValueError(
                f"a Decimal of {digits} digits cannot be sent: Python writes integers of at most"
                f" {limit} digits (sys.set_int_max_str_digits)"
            )
        return int(value)
    number = float(value)
    if not math.isfinite(number):
        raise ValueError(f"a Decimal of {value.adjusted() + 1} digits is out of the range of a JSON number")
    return number


def _int_digit_limit() -> int:
    """Python's current int-to-text digit limit (0: none, as before Python 3.10.7)."""
    get_limit = getattr(sys, "get_int_max_str_digits", None)
    return int(get_limit()) if get_limit is not None else 0


def _key(key: Any) -> str:
    if not isinstance(key, str):
        raise TypeError(f"nested key {key!r} is not a string")
    return key


def _where(record: int | str | None) -> str:
    return "" if record is None else f"record {record}: "


def _encoding_error(fields: Any, record: int | str | None) -> WolkvoxInputError:
    """The error for ``fields`` that failed to encode, naming the first field at fault."""
    where = _where(record)
    items = fields.items() if isinstance(fields, Mapping) else ()
    for name, value in items:
        try:
            encode_json({name: None})  # the name, encoded exactly as a key is
        except _ENCODING_ERRORS as exc:
            label = ascii(name)
            return WolkvoxInputError(
                f"{where}field {label}: the field name {_encoding_problem(exc)}", record=record, field=label
            )
        try:
            encode_json(value)
        except _ENCODING_ERRORS as exc:
            return WolkvoxInputError(
                f"{where}field {name!r}: {_encoding_problem(exc)}", record=record, field=name
            )
    # Every part encodes alone but not the whole (it was nested one level too deep for the stack).
    return WolkvoxInputError(f"{where}the record cannot be encoded as JSON", record=record)


def _encoding_problem(exc: BaseException) -> str:
    if isinstance(exc, UnicodeEncodeError):
        # UTF-8 encodes every code point but the surrogates, which are not Unicode text.
        return (
            f"cannot be sent as UTF-8: it holds {exc.object[exc.start : exc.end]!a},"
            " a surrogate code point that is not valid Unicode text"
        )
    if isinstance(exc, RecursionError):
        return "cannot be encoded as JSON: nested too deeply"
    return f"cannot be encoded as JSON: {exc}"
