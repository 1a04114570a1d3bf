"""Whether a value the CRM holds is the value we sent, read by the provider's own value rules.

The CRM may give a value back in another form than it was written: numbers as strings, typed fields
(address, currency, telephone, search) as objects around a ``value``, empty fields as "" or null.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from decimal import Decimal, InvalidOperation
from typing import Any

from airflow_provider_wolkvox import api


def same_value(ours: Any, theirs: Any) -> bool:
    """True when the CRM's ``theirs`` holds what the prepared value ``ours`` writes.

    Typed fields compare by their ``value`` (and ``value_id``, for a search field); a number
    equals the same number written as a string; "" and null are both empty; strings compare
    stripped of surrounding blanks; lists and objects item by item.
    """
    ours, theirs = _unwrap(ours), _unwrap(theirs)
    if isinstance(ours, dict) and isinstance(theirs, dict):
        return ours.keys() == theirs.keys() and all(same_value(ours[key], theirs[key]) for key in ours)
    if isinstance(ours, (list, tuple)) and isinstance(theirs, (list, tuple)):
        return len(ours) == len(theirs) and all(map(same_value, ours, theirs))
    if is_empty(ours) or is_empty(theirs):
        return is_empty(ours) and is_empty(theirs)
    if isinstance(ours, bool) or isinstance(theirs, bool):
        return ours is theirs
    if _is_number(ours) or _is_number(theirs):
        return _number(ours) is not None and _number(ours) == _number(theirs)
    if isinstance(ours, str) and isinstance(theirs, str):
        return ours.strip() == theirs.strip()
    return bool(ours == theirs)


def key_holders(matches: Iterable[dict[str, Any]], key_field: str, key: str) -> list[dict[str, Any]]:
    """The records among ``matches`` (a look-up's answer) that hold ``key`` in ``key_field``, by its
    canonical text: the CRM may match more loosely than the key."""
    return [m for m in matches if m.get(api.ID_FIELD) and key_text(m.get(key_field)) == key]


def changed_fields(fields: Mapping[str, Any], held: Mapping[str, Any]) -> tuple[str, ...]:
    """The names of ``fields`` whose value the CRM record ``held`` does not hold."""
    return tuple(name for name, value in fields.items() if not same_value(value, held.get(name)))


def key_text(value: Any) -> str | None:
    """A sync key's canonical text, the same for every form the CRM may give it back in (``123``,
    ``"123"``, ``{"type": ..., "value": 123}``); None for an empty key."""
    value = _unwrap(value)
    if is_empty(value) or isinstance(value, (dict, list, tuple)):
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if _is_number(value):
        number = _number(value)
        return None if number is None else format(number.normalize(), "f")
    return str(value).strip() or None


def _unwrap(value: Any) -> Any:
    """A typed field's value (with the id it points at, for a search field); other values as they are."""
    if isinstance(value, dict) and "value" in value and ("type" in value or "value_id" in value):
        inner = value["value"]
        return inner if value.get("value_id") is None else {"value": inner, "value_id": value["value_id"]}
    return value


def is_empty(value: Any) -> bool:
    """An empty field value: null or \"\"."""
    return value is None or value == ""


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float, Decimal)) and not isinstance(value, bool)


def _number(value: Any) -> Decimal | None:
    """``value`` as a number, when it is one or is written as one ("6700", " 6700.0 ")."""
    if _is_number(value):
        return Decimal(str(value))
    if isinstance(value, str):
        try:
            number = Decimal(value.strip())
        except InvalidOperation:
            return None
        return number if number.is_finite() else None
    return None
