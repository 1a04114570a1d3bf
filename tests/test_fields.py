from __future__ import annotations

import datetime
import enum
from decimal import Decimal

import pytest

from airflow_provider_wolkvox.exceptions import WolkvoxInputError
from airflow_provider_wolkvox.fields import address, prepare_fields, search, table, typed


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


def test_the_fast_path_gives_the_same_copy() -> None:
    fields = {"Nombre": "Ana", "Edad": 31, "Activo": True, "Vacío": None}
    prepared = prepare_fields(fields)
    assert prepared == fields
    assert prepared is not fields
    # A float takes the general path, so NaN is still refused.
    with pytest.raises(WolkvoxInputError, match="nan is not a JSON number"):
        prepare_fields({"Nombre": "Ana", "Peso": float("nan")})
    with pytest.raises(WolkvoxInputError, match="field names must be non-empty strings"):
        prepare_fields({"Nombre": "Ana", "": "x"})
