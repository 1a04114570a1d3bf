"""Whether a value the CRM holds is the value we sent, read by the provider's own value rules.

The CRM may give a value back in another form than it was written: numbers as strings, typed fields
(address, currency, telephone, search) as objects around a ``value``, empty fields as "" or null.
"""

from __future__ import annotations

import re
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
    """A sync key's identity: its canonical text, the same for every form the input may give it in
    and the CRM may give it back in; None for an empty key.

    Surrounding blanks do not count (``" a@x.com "`` is ``"a@x.com"``); a number is its shortest
    decimal text, and so is a text that spells a number the way numbers print (``5``, ``5.0``,
    ``"5"``, ``" 5.0 "`` are all ``"5"``), while a text with leading zeros, a ``+``, an exponent or
    separators is a code, kept as written (``"007"``, ``"+573001234567"``); a typed field is its
    ``value``'s key; case counts. Every path of a sync names a key by this text (the input's
    duplicate check, the sync state, the scan, the ``query.php`` look-ups).
    """
    value = _unwrap(value)
    if is_empty(value) or isinstance(value, (dict, list, tuple)):
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if _is_number(value):
        number = _number(value)
        return None if number is None else _decimal_text(number)
    text = str(value).strip()
    if _PLAIN_NUMBER.fullmatch(text):
        return _decimal_text(Decimal(text))
    return text or None


def key_value(value: Any) -> Any:
    """The form a sync writes a key in: its :func:`key_text`, inside its typed field if it has one,
    so that a ``query.php`` look-up by that text finds what the sync wrote, whatever the CRM's
    matching rules. ``value`` must have a key (``key_text(value)`` is not None)."""
    key = key_text(value)
    if isinstance(value, dict) and "value" in value:
        return {**value, "value": key}
    return key


# A number as numbers print: an optional minus, no leading zero, digits, an optional fraction.
_PLAIN_NUMBER = re.compile(r"-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?")


def _decimal_text(number: Decimal) -> str:
    """A finite number's shortest decimal text, never an exponent, every digit kept; zero has no sign."""
    if number.is_zero():
        return "0"
    text = format(number, "f")  # no rounding, unlike normalize() at the context's 28 digits
    return text.rstrip("0").rstrip(".") if "." in text else text


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
