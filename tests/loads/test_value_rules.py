"""The provider's value rules (``loads/compare.py``), one table per function, no HTTP.

The rules are those of ``same_value``'s docstring and docs/syncs.md: typed fields compare by their
``value`` (and ``value_id``, for a search field), a number equals the same number written as text,
"" and null are both empty, strings compare stripped of surrounding blanks, lists and objects item
by item; a sync key's canonical text is the same for every form the CRM gives it back in.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from airflow_provider_wolkvox.fields import address, search, table, typed
from airflow_provider_wolkvox.loads.compare import changed_fields, is_empty, key_holders, key_text, same_value

ID = "64cb1f0e2a9d4c0012ab34cd"
OTHER_ID = "64cb1f0e2a9d4c0012ab34ce"

SAME_VALUE = [
    # Typed fields compare by their value, whatever their other keys.
    pytest.param(address("Calle 1"), "Calle 1", True, id="typed-vs-plain"),
    pytest.param(address("Calle 1"), {"type": "address", "value": "Calle 1"}, True, id="typed-vs-typed"),
    pytest.param(address("Calle 1"), "Calle 2", False, id="typed-other-value"),
    pytest.param(
        typed("currency", "1750905", symbol="COP", convert=1750905),
        {"type": "currency", "value": 1750905},
        True,
        id="currency-extra-keys-dropped-number-as-text",
    ),
    pytest.param(typed("telephone", "3001234567"), "3001234567", True, id="telephone-by-value"),
    pytest.param(
        table([{"Ropa": "Camisetas"}]),
        {"type": "table", "value": [{"Ropa": " Camisetas "}]},
        True,
        id="table",
    ),
    pytest.param(table([{"Ropa": "Camisetas"}]), [{"Ropa": "Pantalones"}], False, id="table-other-row"),
    # A search field compares by its value and the record it points at (value_id).
    pytest.param(
        search("Ana", ID, "contacts"), {"type": "search", "value": "Ana", "value_id": ID}, True, id="search"
    ),
    pytest.param(
        search("Ana", ID, "contacts"),
        {"type": "search", "value": "Ana", "value_id": OTHER_ID},
        False,
        id="search-other-value_id",
    ),
    pytest.param(
        search("Ana", ID, "contacts"),
        {"type": "search", "value": "Ana Gómez", "value_id": ID},
        False,
        id="search-other-value",
    ),
    pytest.param(search("Ana", ID, "contacts"), "Ana", False, id="search-vs-its-text-alone"),
    pytest.param({"value": "Ana", "value_id": None}, "Ana", True, id="search-without-value_id-by-value"),
    # An object with "value" but neither "type" nor "value_id" is no typed field: compared as an object.
    pytest.param({"value": 1}, 1, False, id="not-typed-not-unwrapped"),
    # Objects: the same keys, each value by these rules.
    pytest.param({"a": 1, "b": " x "}, {"a": "1", "b": "x"}, True, id="object-item-by-item"),
    pytest.param({"a": 1}, {"a": 1, "b": 2}, False, id="object-other-keys"),
    pytest.param({"a": 1}, {"a": 2}, False, id="object-other-value"),
    # Lists (and tuples): the same length, item by item.
    pytest.param([1, " a "], ["1", "a"], True, id="list-item-by-item"),
    pytest.param((1, 2), [1, 2], True, id="tuple-vs-list"),
    pytest.param([1, 2], [1, 2, 3], False, id="list-other-length"),
    pytest.param([1, 2], [2, 1], False, id="list-order-counts"),
    pytest.param(["a"], "a", False, id="list-vs-text"),
    # "" and null are both empty, and empty is nothing else.
    pytest.param(None, "", True, id="null-vs-blank"),
    pytest.param("", None, True, id="blank-vs-null"),
    pytest.param(None, None, True, id="null-vs-null"),
    pytest.param(None, 0, False, id="null-vs-zero"),
    pytest.param("", 0, False, id="blank-vs-zero"),
    pytest.param(False, None, False, id="false-vs-null"),
    pytest.param(None, "x", False, id="null-vs-text"),
    pytest.param("x", "", False, id="text-vs-blank"),
    pytest.param(address(""), None, True, id="typed-empty-vs-null"),
    # Booleans are themselves only: not numbers, not text.
    pytest.param(True, True, True, id="true-vs-true"),
    pytest.param(True, False, False, id="true-vs-false"),
    pytest.param(True, 1, False, id="true-vs-one"),
    pytest.param(0, False, False, id="zero-vs-false"),
    pytest.param(True, "true", False, id="true-vs-text"),
    # A number equals the same number, written as a number or as text (blanks around it allowed).
    pytest.param(6700, "6700", True, id="int-vs-text"),
    pytest.param("6700", 6700, True, id="text-vs-int"),
    pytest.param(6700, " 6700.0 ", True, id="int-vs-padded-decimal-text"),
    pytest.param(6700.5, "6700.50", True, id="float-vs-text-trailing-zero"),
    pytest.param(0.1, "0.1", True, id="float-by-its-shortest-text"),
    pytest.param(Decimal("1.10"), 1.1, True, id="decimal-vs-float"),
    pytest.param(1, 1.0, True, id="int-vs-float"),
    pytest.param(1, "1e0", True, id="exponent-text"),
    pytest.param(6700, "6701", False, id="other-number"),
    pytest.param(6700, "6700 COP", False, id="number-vs-text-not-a-number"),
    pytest.param(float("inf"), "Infinity", False, id="infinite-text-is-no-number"),
    pytest.param(1, "NaN", False, id="nan-text-is-no-number"),
    # Two texts compare as text, even when both read as numbers: "007" is not "7".
    pytest.param("007", "7", False, id="numeric-texts-compare-as-text"),
    pytest.param("6700", "6700.0", False, id="numeric-texts-other-spelling"),
    # Strings compare stripped of surrounding blanks; case and inner blanks count.
    pytest.param(" Ana ", "Ana", True, id="text-surrounding-blanks"),
    pytest.param("Ana\t\n", "Ana", True, id="text-surrounding-whitespace"),
    pytest.param("ana", "Ana", False, id="text-case-counts"),
    pytest.param("Ana  Gómez", "Ana Gómez", False, id="text-inner-blanks-count"),
    # Anything else by equality.
    pytest.param("a", {"a": 1}, False, id="text-vs-object"),
]


@pytest.mark.parametrize(("ours", "theirs", "expected"), SAME_VALUE)
def test_same_value(ours: Any, theirs: Any, expected: bool) -> None:
    assert same_value(ours, theirs) is expected


IS_EMPTY = [
    pytest.param(None, True, id="null"),
    pytest.param("", True, id="blank"),
    pytest.param(" ", False, id="a-space"),
    pytest.param(0, False, id="zero"),
    pytest.param(False, False, id="false"),
    pytest.param([], False, id="empty-list"),
    pytest.param({}, False, id="empty-object"),
    pytest.param("x", False, id="text"),
]


@pytest.mark.parametrize(("value", "expected"), IS_EMPTY)
def test_is_empty(value: Any, expected: bool) -> None:
    assert is_empty(value) is expected


KEY_TEXT = [
    # Empty keys: none.
    pytest.param(None, None, id="null"),
    pytest.param("", None, id="blank"),
    pytest.param("   ", None, id="only-blanks"),
    pytest.param(address(""), None, id="typed-empty"),
    # Text: stripped of surrounding blanks, case and leading zeros kept.
    pytest.param(" ana@example.com ", "ana@example.com", id="text-stripped"),
    pytest.param("Ana@Example.com", "Ana@Example.com", id="text-case-kept"),
    pytest.param("0042", "0042", id="text-leading-zeros-kept"),
    pytest.param("123", "123", id="text-number"),
    # Numbers: their shortest decimal text, never an exponent, so 123 and "123" are one key.
    pytest.param(123, "123", id="int"),
    pytest.param(123.0, "123", id="float-integral"),
    pytest.param(1.5, "1.5", id="float"),
    pytest.param(Decimal("1.50"), "1.5", id="decimal-trailing-zero"),
    pytest.param(1e3, "1000", id="float-no-exponent"),
    pytest.param(Decimal("1E+2"), "100", id="decimal-exponent-written-out"),
    pytest.param(0, "0", id="zero"),
    pytest.param(-7, "-7", id="negative"),
    # Booleans: their JSON text.
    pytest.param(True, "true", id="true"),
    pytest.param(False, "false", id="false"),
    # Typed fields: their value's key.
    pytest.param({"type": "text", "value": 123}, "123", id="typed-number"),
    pytest.param(address(" Calle 1 "), "Calle 1", id="typed-text"),
    # What cannot be a key: none.
    pytest.param(search("Ana", ID, "contacts"), None, id="search-points-at-a-record"),
    pytest.param({"a": 1}, None, id="object"),
    pytest.param([1], None, id="list"),
    pytest.param((1,), None, id="tuple"),
]


@pytest.mark.parametrize(("value", "expected"), KEY_TEXT)
def test_key_text(value: Any, expected: str | None) -> None:
    assert key_text(value) == expected


CHANGED_FIELDS = [
    pytest.param({}, {"Nombre": "Ana"}, (), id="nothing-sent"),
    pytest.param({"Nombre": "Ana"}, {"Nombre": "Ana"}, (), id="same"),
    pytest.param({"Nombre": "Ana"}, {"Nombre": "Eva"}, ("Nombre",), id="changed"),
    pytest.param(
        {"Nombre": " Ana ", "Edad": 30}, {"Nombre": "Ana", "Edad": "30"}, (), id="by-the-value-rules"
    ),
    pytest.param({"Notas": None}, {}, (), id="empty-vs-missing"),
    pytest.param({"Notas": "x"}, {}, ("Notas",), id="value-vs-missing"),
    pytest.param({"Notas": ""}, {"Notas": "x"}, ("Notas",), id="cleared"),
    pytest.param(
        {"C": 1, "A": 1, "B": 1}, {"A": 2, "B": 1, "C": 2}, ("C", "A"), id="in-the-order-of-the-fields-sent"
    ),
    pytest.param(
        {"Direccion": address("Calle 1")},
        {"Direccion": {"type": "address", "value": "Calle 1"}},
        (),
        id="typed",
    ),
]


@pytest.mark.parametrize(("fields", "held", "expected"), CHANGED_FIELDS)
def test_changed_fields(fields: dict[str, Any], held: dict[str, Any], expected: tuple[str, ...]) -> None:
    assert changed_fields(fields, held) == expected


def holder(wolkvox_id: str | None, value: Any, field: str = "Email") -> dict[str, Any]:
    return {"wolkvox_id": wolkvox_id, field: value}


KEY_HOLDERS = [
    pytest.param([], "Email", "a@x.co", [], id="no-match"),
    pytest.param([holder("1", "a@x.co")], "Email", "a@x.co", ["1"], id="exact"),
    pytest.param([holder("1", " a@x.co ")], "Email", "a@x.co", ["1"], id="blanks-around"),
    pytest.param([holder("1", {"type": "email", "value": "a@x.co"})], "Email", "a@x.co", ["1"], id="typed"),
    # The CRM may match more loosely than the key: other case, other text, no key at all.
    pytest.param([holder("1", "A@x.co")], "Email", "a@x.co", [], id="case-counts"),
    pytest.param([holder("1", "a@x.co.uk")], "Email", "a@x.co", [], id="other-text"),
    pytest.param([holder("1", None)], "Email", "a@x.co", [], id="no-key"),
    pytest.param([{"wolkvox_id": "1", "Nombre": "a@x.co"}], "Email", "a@x.co", [], id="key-in-another-field"),
    # Only records with an id hold a key.
    pytest.param([holder(None, "a@x.co"), holder("", "a@x.co")], "Email", "a@x.co", [], id="no-id"),
    # Numbers by their canonical text.
    pytest.param(
        [
            holder("1", 123, "Doc"),
            holder("2", "123", "Doc"),
            holder("3", 123.0, "Doc"),
            holder("4", "0123", "Doc"),
        ],
        "Doc",
        "123",
        ["1", "2", "3"],
        id="number-forms",
    ),
    # Every holder, in the order of the answer.
    pytest.param(
        [holder("2", "a@x.co"), holder("9", "b@x.co"), holder("1", "a@x.co")],
        "Email",
        "a@x.co",
        ["2", "1"],
        id="several-in-order",
    ),
]


@pytest.mark.parametrize(("matches", "key_field", "key", "expected_ids"), KEY_HOLDERS)
def test_key_holders(
    matches: list[dict[str, Any]], key_field: str, key: str, expected_ids: list[str]
) -> None:
    held = key_holders(matches, key_field, key)
    assert [record["wolkvox_id"] for record in held] == expected_ids
    assert all(any(record is match for match in matches) for record in held)  # the records themselves
