from __future__ import annotations

import datetime
import enum
import json
import sys
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from airflow_provider_wolkvox.exceptions import WolkvoxInputError
from airflow_provider_wolkvox.fields import (
    JSON_OPTIONS,
    MAX_NESTING_DEPTH,
    address,
    encode_fields,
    encode_json,
    prepare_fields,
    prepare_record,
    search,
    table,
    typed,
)

# The client's body options, written out here so that a change to JSON_OPTIONS shows in a test.
CLIENT_OPTIONS: dict[str, Any] = {"ensure_ascii": False, "separators": (",", ":"), "allow_nan": False}


class Tier(str, enum.Enum):
    GOLD = "gold"


def test_typed_field_helpers_build_the_documented_shapes() -> None:
    assert address("Calle 145a #12-60") == {"type": "address", "value": "Calle 145a #12-60"}
    assert table([{"Ropa": "Camisetas"}, {"Carnes": "Pescado"}]) == {
        "type": "table",
        "value": [{"Ropa": "Camisetas"}, {"Carnes": "Pescado"}],
    }
    assert search("Ana Gómez", "64cb1f0e2a9d4c0012ab34cd", "contacts") == {
        "type": "search",
        "value": "Ana Gómez",
        "value_id": "64cb1f0e2a9d4c0012ab34cd",
        "searchModuleName": "contacts",
    }
    assert typed("currency", "1750905", symbol="COP", convert=1750905) == {
        "type": "currency",
        "value": "1750905",
        "symbol": "COP",
        "convert": 1750905,
    }


def test_values_are_converted_by_the_documented_rule() -> None:
    fields = {
        "Texto": "Arepas",
        "Precio": 6700,
        "Peso": 1.5,
        "Activo": True,
        "Vacío": None,
        "Alta": datetime.datetime(2026, 12, 1, 9, 30, 15, 999999),
        "Alta UTC": datetime.datetime(2026, 12, 1, 9, 30, tzinfo=datetime.timezone.utc),
        "Cumpleaños": datetime.date(1990, 5, 17),
        "Saldo": Decimal("1750905.50"),
        "Unidades": Decimal("12"),
        "Nivel": Tier.GOLD,
        "Etiquetas": ("a", "b"),
        "Tabla": table([{"Fecha": datetime.date(2026, 1, 2)}]),
    }
    assert prepare_fields(fields) == {
        "Texto": "Arepas",
        "Precio": 6700,
        "Peso": 1.5,
        "Activo": True,
        "Vacío": None,
        "Alta": "2026-12-01 09:30:15",
        "Alta UTC": "2026-12-01 09:30:00",
        "Cumpleaños": "1990-05-17",
        "Saldo": 1750905.5,
        "Unidades": 12,
        "Nivel": "gold",
        "Etiquetas": ["a", "b"],
        "Tabla": {"type": "table", "value": [{"Fecha": "2026-01-02"}]},
    }
    assert type(prepare_fields({"Nivel": Tier.GOLD})["Nivel"]) is str


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"Foto": b"\x89PNG"}, r"record 7: field 'Foto': a bytes value cannot be sent as JSON"),
        ({"Tags": {"a", "b"}}, r"record 7: field 'Tags': a set value cannot be sent as JSON"),
        ({"Obj": object()}, r"record 7: field 'Obj': a object value cannot be sent as JSON"),
        ({"Precio": float("nan")}, r"record 7: field 'Precio': nan is not a JSON number"),
        ({"Precio": float("inf")}, r"record 7: field 'Precio': inf is not a JSON number"),
        ({"Precio": Decimal("NaN")}, r"record 7: field 'Precio': Decimal\('NaN'\) is not a JSON number"),
        (
            {"Tabla": {"type": "table", "value": [{1: "x"}]}},
            r"record 7: field 'Tabla': nested key 1 is not a string",
        ),
        (
            {"Dirección": {"type": "address"}},
            r"record 7: field 'Dirección': a typed value \('address'\) needs a 'value'",
        ),
        ({1: "x"}, r"record 7: field names must be non-empty strings, got 1"),
        ({" ": "x"}, r"record 7: field names must be non-empty strings, got ' '"),
        ({}, r"record 7: fields is empty"),
        (["Nombre", "Ana"], r"record 7: fields must be a mapping of field name to value, got list"),
        ("Nombre=Ana", r"record 7: fields must be a mapping of field name to value, got str"),
    ],
)
def test_bad_values_name_the_record_and_the_field(fields: object, message: str) -> None:
    with pytest.raises(WolkvoxInputError, match=message) as raised:
        prepare_fields(fields, record=7)
    assert raised.value.record == 7
    assert raised.value.fail_fast


def test_error_names_the_field_attribute() -> None:
    with pytest.raises(WolkvoxInputError) as raised:
        prepare_fields({"ok": 1, "Foto": b"x"}, record="line 3")
    assert raised.value.field == "Foto"
    assert str(raised.value).startswith("record line 3: field 'Foto'")


def test_the_fast_path_gives_a_plain_record_back_as_it_is() -> None:
    fields = {"Nombre": "Ana", "Edad": 31, "Activo": True, "Vacío": None}
    assert prepare_fields(fields) is fields  # not copied: a bulk load holds every record of its input
    converted = {"Nombre": "Ana", "Alta": datetime.date(2026, 1, 5)}
    assert prepare_fields(converted) == {"Nombre": "Ana", "Alta": "2026-01-05"}
    assert converted["Alta"] == datetime.date(2026, 1, 5)  # a record that needs converting is copied
    # A float takes the general path, so NaN is still refused.
    with pytest.raises(WolkvoxInputError, match="nan is not a JSON number"):
        prepare_fields({"Nombre": "Ana", "Peso": float("nan")})
    with pytest.raises(WolkvoxInputError, match="field names must be non-empty strings"):
        prepare_fields({"Nombre": "Ana", "": "x"})


def nested(depth: int) -> Any:
    """A value of ``depth`` containers, lists and mappings by turns, around a string."""
    value: Any = "fondo"
    for level in range(depth):
        value = [value] if level % 2 else {"nivel": value}
    return value


def test_values_nested_to_the_limit_are_kept() -> None:
    fields = {"Tabla": nested(MAX_NESTING_DEPTH)}
    assert MAX_NESTING_DEPTH == 32
    assert prepare_fields(fields, record=4) == fields
    _, body = prepare_record(fields, record=4)
    assert json.loads(body) == fields


@pytest.mark.parametrize("depth", [MAX_NESTING_DEPTH + 1, 1_000, 100_000])
def test_values_nested_deeper_than_the_limit_are_refused(depth: int) -> None:
    with pytest.raises(WolkvoxInputError) as raised:
        prepare_fields({"Nombre": "Ana", "Tabla": nested(depth)}, record=4)
    assert str(raised.value) == "record 4: field 'Tabla': nested deeper than 32 levels"
    assert (raised.value.record, raised.value.field) == (4, "Tabla")


def test_a_value_that_contains_itself_is_refused_as_too_deep() -> None:
    loop: dict[str, Any] = {}
    loop["loop"] = loop
    with pytest.raises(WolkvoxInputError, match=r"^record 2: field 'Bucle': nested deeper than 32 levels$"):
        prepare_fields({"Bucle": loop}, record=2)


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (
            Decimal("1e5000"),
            "a Decimal of 5001 digits cannot be sent: Python writes integers of at most 4300 digits"
            " (sys.set_int_max_str_digits)",
        ),
        (
            Decimal("-1e999999999"),
            "a Decimal of 1000000000 digits cannot be sent: Python writes integers of at most 4300 digits"
            " (sys.set_int_max_str_digits)",
        ),
        (Decimal("1" * 400 + ".5"), "a Decimal of 400 digits is out of the range of a JSON number"),
    ],
)
def test_decimals_that_can_never_be_encoded_are_refused_when_prepared(value: Decimal, message: str) -> None:
    assert sys.get_int_max_str_digits() == 4300
    with pytest.raises(WolkvoxInputError) as raised:
        prepare_fields({"Saldo": value}, record=9)
    assert str(raised.value) == f"record 9: field 'Saldo': {message}"
    assert (raised.value.record, raised.value.field) == (9, "Saldo")


def test_large_decimals_within_the_limits_become_numbers() -> None:
    prepared, body = prepare_record({"Saldo": Decimal("1e4299"), "Cero": Decimal("0e5000")})
    assert prepared == {"Saldo": 10**4299, "Cero": 0}
    assert body == b'{"Saldo":1' + b"0" * 4299 + b',"Cero":0}'


LONE_SURROGATE = (
    "field 'Nombre': cannot be sent as UTF-8: it holds '\\ud800', a surrogate code point"
    " that is not valid Unicode text"
)
# (fields, error message after "record 5: ", error field). These pass prepare_fields (the fast path
# for plain values takes the first ones): encoding is the authority.
PREPARED_BUT_UNENCODABLE = [
    pytest.param({"Email": "a@x.co", "Nombre": "Ana \ud800"}, LONE_SURROGATE, "Nombre", id="value"),
    pytest.param(
        {"Email": "a@x.co", "Nombre": {"type": "table", "value": [{"Ropa": "\ud800"}]}},
        LONE_SURROGATE,
        "Nombre",
        id="nested-value",
    ),
    pytest.param(
        {"Email": "a@x.co", "Ciudad\udcff": "Bogotá"},
        "field 'Ciudad\\udcff': the field name cannot be sent as UTF-8: it holds '\\udcff',"
        " a surrogate code point that is not valid Unicode text",
        "'Ciudad\\udcff'",
        id="field-name",
    ),
    pytest.param(
        {"Email": "a@x.co", "Tabla": {"type": "table", "value": [{"Ropa\ud83d": 1}]}},
        "field 'Tabla': cannot be sent as UTF-8: it holds '\\ud83d', a surrogate code point"
        " that is not valid Unicode text",
        "Tabla",
        id="nested-key",
    ),
    pytest.param(
        {"Email": "a@x.co", "Puntos": 10**5000},
        "field 'Puntos': cannot be encoded as JSON: Exceeds the limit (4300 digits) for integer"
        " string conversion; use sys.set_int_max_str_digits() to increase the limit",
        "Puntos",
        id="long-int",
    ),
]
# What prepare_fields refuses first, given to encode_fields unprepared.
UNPREPARED = [
    pytest.param(
        {"Peso": float("nan")},
        "field 'Peso': cannot be encoded as JSON: Out of range float values are not JSON compliant",
        "Peso",
        id="nan",
    ),
    pytest.param(
        {"Foto": b"x"},
        "field 'Foto': cannot be encoded as JSON: Object of type bytes is not JSON serializable",
        "Foto",
        id="bytes",
    ),
    pytest.param(
        {"Tabla": nested(5_000)},
        "field 'Tabla': cannot be encoded as JSON: nested too deeply",
        "Tabla",
        id="deep",
    ),
    pytest.param(
        {"Tabla": {(1, 2): "x"}},
        "field 'Tabla': cannot be encoded as JSON: keys must be str, int, float, bool or None, not tuple",
        "Tabla",
        id="bad-nested-key",
    ),
    pytest.param(
        {(1, 2): "x"},
        "field (1, 2): the field name cannot be encoded as JSON: keys must be str, int, float, bool or"
        " None, not tuple",
        "(1, 2)",
        id="bad-key",
    ),
]


@pytest.mark.parametrize(("fields", "message", "field"), PREPARED_BUT_UNENCODABLE + UNPREPARED)
def test_encode_fields_refuses_what_cannot_be_encoded_naming_the_record_and_the_field(
    fields: dict[str, Any], message: str, field: str
) -> None:
    with pytest.raises(WolkvoxInputError) as raised:
        encode_fields(fields, record=5)
    assert str(raised.value) == f"record 5: {message}"
    assert (raised.value.record, raised.value.field) == (5, field)
    assert raised.value.__cause__ is None
    with pytest.raises(WolkvoxInputError, match=r"^field ") as unnamed:
        encode_fields(fields)
    assert (unnamed.value.record, unnamed.value.field) == (None, field)


@pytest.mark.parametrize(("fields", "message", "field"), PREPARED_BUT_UNENCODABLE)
def test_prepare_record_refuses_prepared_values_that_cannot_be_encoded(
    fields: dict[str, Any], message: str, field: str
) -> None:
    assert prepare_fields(fields, record=5) == fields
    with pytest.raises(WolkvoxInputError) as raised:
        prepare_record(fields, record=5)
    assert (str(raised.value), raised.value.record, raised.value.field) == (f"record 5: {message}", 5, field)


NORMAL_RECORDS: list[dict[str, Any]] = [
    {"Nombre": "José Gómez", "Ciudad": "Bogotá", "Edad": 31, "Activo": True, "Vacío": None},
    {"Precio": 6700, "Peso": 1.5, "Nota": 'comillas " y \\ barra, salto\nde línea', "Emoji": "😀"},
    {
        "Dirección": address("Calle 145a #12-60"),
        "Tabla": table([{"Ropa": "Camisetas"}, {"Carnes": "Pescado"}]),
        "Contacto": search("Ana Gómez", "64cb1f0e2a9d4c0012ab34cd", "contacts"),
        "Saldo": typed("currency", "1750905", symbol="COP", convert=1750905),
    },
]


@pytest.mark.parametrize("fields", NORMAL_RECORDS)
def test_encoded_records_are_byte_identical_to_the_clients_json(fields: dict[str, Any]) -> None:
    prepared, body = prepare_record(fields, record=0)
    assert prepared == fields
    expected = json.dumps(fields, **CLIENT_OPTIONS).encode("utf-8")
    assert body == expected
    assert encode_fields(prepared) == expected
    assert encode_json(prepared) == expected
    assert dict(JSON_OPTIONS) == CLIENT_OPTIONS


def test_converted_values_encode_to_their_json_form() -> None:
    fields = {
        "Alta": datetime.datetime(2026, 12, 1, 9, 30, 15),
        "Cumpleaños": datetime.date(1990, 5, 17),
        "Saldo": Decimal("1750905.50"),
        "Nivel": Tier.GOLD,
        "Etiquetas": ("a", "ñ"),
    }
    _, body = prepare_record(fields)
    assert (
        body
        == (
            '{"Alta":"2026-12-01 09:30:15","Cumpleaños":"1990-05-17","Saldo":1750905.5,'
            '"Nivel":"gold","Etiquetas":["a","ñ"]}'
        ).encode()
    )


def test_json_options_cannot_be_changed_in_place() -> None:
    with pytest.raises(TypeError):
        JSON_OPTIONS["ensure_ascii"] = True  # type: ignore[index]


# Every code point, and often a surrogate (category Cs), which st.text() leaves out by default and
# which would be drawn too rarely to matter among all code points.
ANY_CHARACTER = st.characters(exclude_categories=()) | st.characters(
    min_codepoint=0xD800, max_codepoint=0xDFFF, exclude_categories=()
)


def any_text(max_size: int | None = None) -> st.SearchStrategy[str]:
    # Joined from a list: st.text() merges its alphabet's parts into one range of code points.
    return st.lists(ANY_CHARACTER, max_size=max_size).map("".join)


JSON_SCALARS = (
    any_text()
    | st.integers(min_value=-(10**5000), max_value=10**5000)
    | st.floats()  # NaN and infinities included
    | st.booleans()
    | st.none()
    | st.decimals()
    | st.dates()
    | st.binary(max_size=3)
)
JSON_VALUES = st.recursive(
    JSON_SCALARS,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(any_text(max_size=5), inner, max_size=3),
    max_leaves=20,
)


# Field names of ordinary text, so that enough records are accepted (bad names have their own tests).
@given(st.dictionaries(st.text(min_size=1, max_size=8), JSON_VALUES, max_size=4))
def test_every_record_is_either_encoded_or_refused_as_input(fields: dict[str, Any]) -> None:
    try:
        prepared, body = prepare_record(fields, record=1)
    except WolkvoxInputError as error:
        refusal = error
    else:
        assert body == json.dumps(prepared, **CLIENT_OPTIONS).encode("utf-8")
        assert json.loads(body) == json.loads(json.dumps(prepared))
        return
    assert refusal.record == 1
    assert str(refusal).startswith("record 1: ")
