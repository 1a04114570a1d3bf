"""Records files read line by line: encodings, CSV headers and cells, JSON Lines, the check pass."""

from __future__ import annotations

import codecs
import csv
import json
from pathlib import Path

import pytest

from airflow_provider_wolkvox import sources
from airflow_provider_wolkvox.exceptions import WolkvoxInputError
from airflow_provider_wolkvox.sources import (
    MAX_CSV_CELL,
    check_records_file,
    open_text,
    read_records,
)

LATIN1_HINT = "pass encoding='latin-1' if the export is Latin-1"


def write(tmp_path: Path, name: str, content: bytes) -> str:
    path = tmp_path / name
    path.write_bytes(content)
    return str(path)


def refusal(path: str, encoding: str = "utf-8") -> WolkvoxInputError:
    """The error that reading, and checking, the file raises (both must raise the same)."""
    with pytest.raises(WolkvoxInputError) as checked:
        check_records_file(path, encoding=encoding)
    with pytest.raises(WolkvoxInputError) as read:
        list(read_records(path, encoding=encoding))
    assert (str(read.value), read.value.record, read.value.field) == (
        str(checked.value),
        checked.value.record,
        checked.value.field,
    )
    return checked.value


def latin1_contacts(tmp_path: Path, name: str = "contacts.csv") -> str:
    """Six UTF-8-compatible (ASCII) lines, then a seventh written in Latin-1."""
    lines = ["Nombre,Ciudad"] + [f"C{n},Cali" for n in range(2, 7)] + ["José,Bogotá"]
    return write(tmp_path, name, ("\n".join(lines) + "\n").encode("latin-1"))


def test_a_latin1_csv_is_read_with_its_encoding(tmp_path: Path) -> None:
    path = latin1_contacts(tmp_path)
    records = list(read_records(path, encoding="latin-1"))
    assert records[-1] == (7, {"Nombre": "José", "Ciudad": "Bogotá"})
    assert [line for line, _ in records] == [2, 3, 4, 5, 6, 7]
    assert check_records_file(path, encoding="latin-1") == 6


def test_a_latin1_line_read_as_utf8_is_named(tmp_path: Path) -> None:
    path = latin1_contacts(tmp_path)
    error = refusal(path)
    # "José," in Latin-1: the é (0xe9) opens a 3-byte UTF-8 sequence that the comma breaks.
    assert str(error) == (
        f"{path} line 7: not valid utf-8 (invalid continuation byte: b'\\xe9' at byte 4 of the line);"
        f" {LATIN1_HINT}"
    )
    assert (error.record, error.field) == ("line 7", None)


def test_an_undecodable_line_in_another_encoding_gets_a_neutral_hint(tmp_path: Path) -> None:
    path = write(tmp_path, "contacts.jsonl", b'{"Nombre": "Ana"}\n{"Nombre": "\x81"}\n')
    error = refusal(path, encoding="cp1252")
    assert str(error) == (
        f"{path} line 2: not valid cp1252 (character maps to <undefined>: b'\\x81' at byte 13 of the line);"
        " pass the encoding the file was written in"
    )
    assert error.record == "line 2"


def test_object_storage_urls_are_read_as_bytes_too(tmp_path: Path) -> None:
    url = Path(latin1_contacts(tmp_path)).as_uri()
    assert url.startswith("file://")
    assert list(read_records(url, encoding="latin-1"))[-1] == (7, {"Nombre": "José", "Ciudad": "Bogotá"})
    with pytest.raises(
        WolkvoxInputError, match=r"line 7: not valid utf-8 \(invalid continuation byte"
    ) as raised:
        check_records_file(url)
    assert raised.value.record == "line 7"


@pytest.mark.parametrize("encoding", ["utf-16", "utf-32"])
def test_encodings_that_do_not_write_line_breaks_as_ascii_are_refused(tmp_path: Path, encoding: str) -> None:
    path = write(tmp_path, "contacts.csv", "Nombre\nAna\n".encode(encoding))
    with pytest.raises(WolkvoxInputError) as raised:
        read_records(path, encoding=encoding)
    assert str(raised.value) == (
        f"encoding {encoding!r} is not supported: records files are read line by line, which needs an"
        " encoding that writes line breaks as ASCII does (utf-8, latin-1, cp1252...)"
    )


@pytest.mark.parametrize("encoding", ["klingon", "base64"])
def test_unknown_text_encodings_are_refused(tmp_path: Path, encoding: str) -> None:
    path = write(tmp_path, "contacts.csv", b"Nombre\nAna\n")
    with pytest.raises(WolkvoxInputError, match=f"^unknown text encoding '{encoding}'$"):
        check_records_file(path, encoding=encoding)


@pytest.mark.parametrize("line_break", [b"\n", b"\r\n", b"\r"], ids=["lf", "crlf", "cr"])
def test_a_utf8_byte_order_mark_is_skipped_whatever_the_line_breaks(
    tmp_path: Path, line_break: bytes
) -> None:
    content = codecs.BOM_UTF8 + line_break.join([b"Nombre,Ciudad", "Ana,Bogotá".encode(), b""])
    path = write(tmp_path, "contacts.csv", content)
    assert list(read_records(path)) == [(2, {"Nombre": "Ana", "Ciudad": "Bogotá"})]


def test_a_quoted_multiline_record_is_named_by_the_line_it_starts_on(tmp_path: Path) -> None:
    content = (
        "\n"  # a blank line before the header
        "Nombre,Nota,Ciudad\r\n"
        'Ana,"primera\r\nsegunda\r\ntercera",Cali\r\n'
        "Bea,,Bogotá\r\n"
        "\r\n"
        ',"",\r\n'  # a row of empty cells
        'Carla,"dos\nlíneas",Pasto\r\n'
        "Dora,Cúcuta\r\n"
    )
    path = write(tmp_path, "contacts.csv", content.encode())
    records = read_records(path)
    assert next(records) == (3, {"Nombre": "Ana", "Nota": "primera\r\nsegunda\r\ntercera", "Ciudad": "Cali"})
    assert next(records) == (6, {"Nombre": "Bea", "Ciudad": "Bogotá"})
    assert next(records) == (9, {"Nombre": "Carla", "Nota": "dos\nlíneas", "Ciudad": "Pasto"})
    with pytest.raises(WolkvoxInputError) as raised:
        next(records)
    assert str(raised.value) == f"{path} line 11: 2 values where the header has 3 columns"
    assert raised.value.record == "line 11"


def test_a_cell_of_200_kib_is_read(tmp_path: Path) -> None:
    note = "á" * (200 * 1024)
    path = write(tmp_path, "notes.csv", f'Nombre,Nota\nAna,"{note}"\nBea,corta\n'.encode())
    assert list(read_records(path)) == [
        (2, {"Nombre": "Ana", "Nota": note}),
        (3, {"Nombre": "Bea", "Nota": "corta"}),
    ]
    assert csv.field_size_limit() == MAX_CSV_CELL == 16 * 1024 * 1024


def test_a_cell_over_16_mib_is_refused_naming_its_line(tmp_path: Path) -> None:
    path = write(tmp_path, "notes.csv", b"Nombre,Nota\nAna,corta\nBea," + b"x" * (MAX_CSV_CELL + 1) + b"\n")
    error = refusal(path)
    assert str(error) == f"{path} line 3: not valid CSV (field larger than field limit ({MAX_CSV_CELL}))"
    assert error.record == "line 3"


def test_a_raised_cell_limit_is_never_lowered(tmp_path: Path) -> None:
    path = write(tmp_path, "notes.csv", b"Nombre\nAna\n")
    before = csv.field_size_limit(MAX_CSV_CELL * 2)
    # The limit is raised once per process: forget that it was, so that this read decides again.
    sources._allow_large_csv_cells.cache_clear()
    try:
        assert list(read_records(path)) == [(2, {"Nombre": "Ana"})]
        assert csv.field_size_limit() == MAX_CSV_CELL * 2
    finally:
        csv.field_size_limit(before)
        sources._allow_large_csv_cells.cache_clear()


@pytest.mark.parametrize(
    ("header", "message", "field"),
    [
        ("Nombre,Email,Ciudad,Email", "column 'Email' appears 2 times in the header (columns 2, 4)", "Email"),
        ("Tel,Nombre,Tel,Tel", "column 'Tel' appears 3 times in the header (columns 1, 3, 4)", "Tel"),
        ("Nombre,,Email", "column 2 of the header has no name", None),
        ("Nombre,Email, ", "column 3 of the header has no name", None),
        (",,", "column 1 of the header has no name", None),
    ],
)
def test_a_header_with_a_duplicated_or_empty_column_is_refused(
    tmp_path: Path, header: str, message: str, field: str | None
) -> None:
    path = write(tmp_path, "contacts.csv", f"{header}\nAna,a@x.co,Cali,b@x.co\n".encode())
    error = refusal(path)
    assert str(error) == f"{path} line 1: {message}"
    assert (error.record, error.field) == ("line 1", field)


def test_a_jsonl_line_nested_too_deeply_to_parse_is_named(tmp_path: Path) -> None:
    deep = '{"a": ' + "[" * 100_000 + "]" * 100_000 + "}"
    path = write(tmp_path, "deep.jsonl", f'{{"a": 1}}\n{deep}\n'.encode())
    error = refusal(path)
    assert str(error) == f"{path} line 2: JSON nested too deeply to read"
    assert error.record == "line 2"


def test_a_jsonl_line_nested_past_the_limit_is_refused_by_the_check(tmp_path: Path) -> None:
    path = write(tmp_path, "deep.jsonl", ('{"a": 1}\n{"a": ' + "[" * 40 + "]" * 40 + "}\n").encode())
    assert [line for line, _ in read_records(path)] == [1, 2]
    with pytest.raises(WolkvoxInputError) as raised:
        check_records_file(path)
    assert str(raised.value) == "record line 2: field 'a': nested deeper than 32 levels"
    assert (raised.value.record, raised.value.field) == ("line 2", "a")


def test_a_lone_surrogate_40000_lines_in_is_refused_before_anything_is_sent(tmp_path: Path) -> None:
    path = tmp_path / "contacts.jsonl"
    with path.open("w", encoding="utf-8") as handle:
        for n in range(1, 40_000):
            handle.write(json.dumps({"Email": f"c{n}@example.com", "Nombre": f"Contacto {n}"}) + "\n")
        handle.write('{"Email": "c40000@example.com", "Nombre": "Ana \\ud800"}\n')  # JSON text, escaped
    # Reading gives the value as JSON decodes it; only encoding it for the request can fail.
    last_line, last = list(read_records(str(path)))[-1]
    assert (last_line, last["Nombre"]) == (40_000, "Ana \ud800")
    with pytest.raises(WolkvoxInputError) as raised:
        check_records_file(str(path))
    assert str(raised.value) == (
        "record line 40000: field 'Nombre': cannot be sent as UTF-8: it holds '\\ud800', a surrogate"
        " code point that is not valid Unicode text"
    )
    assert (raised.value.record, raised.value.field) == ("line 40000", "Nombre")


@pytest.mark.parametrize(
    ("name", "content", "count"),
    [
        ("contacts.jsonl", '{"Nombre": "Ana"}\n\n{"Nombre": "Bea", "Edad": 31}\n', 2),
        ("contacts.ndjson", '{"Nombre": "Ana"}', 1),
        ("contacts.csv", "Nombre,Edad\nAna,31\n\nBea,\n", 2),
        ("empty.csv", "", 0),
    ],
)
def test_the_check_counts_the_records(tmp_path: Path, name: str, content: str, count: int) -> None:
    assert check_records_file(write(tmp_path, name, content.encode())) == count


def test_open_text_writes_and_reads_in_the_encoding_given(tmp_path: Path) -> None:
    path = str(tmp_path / "out.txt")
    with open_text(path, "w", encoding="latin-1") as handle:
        handle.write("José\n")
    assert Path(path).read_bytes() == b"Jos\xe9\n"
    Path(path).write_bytes(codecs.BOM_UTF8 + "Bogotá\n".encode())
    with open_text(path) as handle:
        assert handle.read() == "Bogotá\n"


def test_a_missing_file_is_named(tmp_path: Path) -> None:
    path = str(tmp_path / "missing.csv")
    with pytest.raises(WolkvoxInputError, match=f"^cannot open '{path}': ") as raised:
        check_records_file(path)
    assert raised.value.record is None
