"""Records files read line by line: encodings, CSV headers and cells, JSON Lines, the check pass."""

from __future__ import annotations

import codecs
import csv
import json
import os
import socket
import stat
import threading
import tracemalloc
from collections.abc import Callable
from pathlib import Path

import pytest

from airflow_provider_wolkvox import sources
from airflow_provider_wolkvox.exceptions import WolkvoxInputError
from airflow_provider_wolkvox.sources import (
    MAX_CSV_CELL,
    MAX_LINE_BYTES,
    check_records_file,
    open_text,
    read_records,
)

LATIN1_HINT = "pass encoding='latin-1' if the export is Latin-1"
MIB = 1024 * 1024


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
    # Every line is under the line limit: the cell grows past its own limit across quoted line breaks.
    note = (b"x" * (MIB - 1) + b"\n") * (MAX_CSV_CELL // MIB) + b"x"
    path = write(tmp_path, "notes.csv", b'Nombre,Nota\nAna,corta\nBea,"' + note + b'"\n')
    error = refusal(path)
    assert str(error) == f"{path} line 19: not valid CSV (field larger than field limit ({MAX_CSV_CELL}))"
    assert error.record == "line 19"


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


def refused_without_hanging(path: str) -> WolkvoxInputError:
    """The check's error, raised in a thread: a check blocked opening a FIFO fails the test, not hangs it."""
    raised: list[BaseException] = []

    def check() -> None:
        try:
            check_records_file(path)
        except BaseException as exc:  # whatever it is, the test names it
            raised.append(exc)

    thread = threading.Thread(target=check, daemon=True)
    thread.start()
    thread.join(5)
    if thread.is_alive():
        if stat.S_ISFIFO(os.stat(path.removeprefix("file://")).st_mode):
            os.close(os.open(path.removeprefix("file://"), os.O_WRONLY | os.O_NONBLOCK))  # lets it go
        pytest.fail(f"checking {path} did not return within 5 s")
    assert raised, f"{path} was accepted"
    assert isinstance(raised[0], WolkvoxInputError), repr(raised[0])
    return raised[0]


def make_fifo(path: Path) -> None:
    os.mkfifo(path)


def make_socket(path: Path) -> None:
    with socket.socket(socket.AF_UNIX) as listener:
        listener.bind(str(path))  # the socket file stays when the socket is closed


@pytest.mark.parametrize(
    ("name", "make", "kind"),
    [
        ("contacts.jsonl", make_fifo, "it is a FIFO (named pipe)"),
        ("d.jsonl", Path.mkdir, "it is a directory"),
        ("s.csv", make_socket, "it is a socket"),
        ("x.jsonl", lambda path: path.symlink_to("/dev/zero"), "it links to '/dev/zero', a character device"),
    ],
    ids=["fifo", "directory", "socket", "link-to-dev-zero"],
)
@pytest.mark.parametrize("as_url", [False, True], ids=["path", "file-url"])
def test_a_records_path_that_is_not_a_regular_file_is_refused_unopened(
    tmp_path: Path, name: str, make: Callable[[Path], object], kind: str, as_url: bool
) -> None:
    make(tmp_path / name)
    path = (tmp_path / name).as_uri() if as_url else str(tmp_path / name)
    error = refused_without_hanging(path)
    assert str(error) == f"cannot open {path!r}: {kind}, not a regular file"
    assert (error.record, error.field) == (None, None)


@pytest.mark.parametrize(
    ("mode", "kind"),
    [
        (stat.S_IFDIR, "a directory"),
        (stat.S_IFIFO, "a FIFO (named pipe)"),
        (stat.S_IFCHR, "a character device"),
        (stat.S_IFBLK, "a block device"),
        (stat.S_IFSOCK, "a socket"),
    ],
)
def test_every_kind_of_special_file_is_named(mode: int, kind: str) -> None:
    assert sources._file_kind(mode) == kind


def test_a_fifo_put_in_place_after_the_check_is_refused_without_blocking(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    regular = write(tmp_path, "regular.jsonl", b'{"a": 1}\n')
    fifo = tmp_path / "contacts.jsonl"
    os.mkfifo(fifo)
    real_stat = os.stat
    # The check sees a regular file: the path is replaced by a FIFO between the check and the open.
    monkeypatch.setattr(
        sources.os,
        "stat",
        lambda path, *args, **kwargs: real_stat(regular if path == str(fifo) else path, *args, **kwargs),
    )
    error = refused_without_hanging(str(fifo))
    assert str(error) == f"cannot open {str(fifo)!r}: it is a FIFO (named pipe), not a regular file"


def test_a_link_to_a_regular_file_is_read(tmp_path: Path) -> None:
    target = write(tmp_path, "real.csv", b"Nombre\nAna\n")
    (tmp_path / "link.csv").symlink_to(target)
    assert list(read_records(str(tmp_path / "link.csv"))) == [(2, {"Nombre": "Ana"})]


@pytest.fixture
def small_lines(monkeypatch: pytest.MonkeyPatch) -> int:
    """A line limit of 1 KiB, so that a line past it is small to write."""
    monkeypatch.setattr(sources, "MAX_LINE_BYTES", 1024)
    return 1024


@pytest.mark.parametrize(
    ("name", "first", "long_line"),
    [
        ("contacts.jsonl", b'{"Nombre": "Ana"}', b'{"Nombre": "' + b"x" * 10 * 1024 + b'"}'),
        ("contacts.csv", b"Nombre\nAna", b"x" * 10 * 1024),
    ],
)
def test_a_line_over_the_limit_is_refused_naming_its_line(
    tmp_path: Path, small_lines: int, name: str, first: bytes, long_line: bytes
) -> None:
    path = write(tmp_path, name, first + b"\n" + long_line + b"\n")
    error = refusal(path)
    line = first.count(b"\n") + 2
    assert str(error) == f"{path} line {line}: longer than 1,024 bytes, the most a line may hold"
    assert (error.record, error.field) == (f"line {line}", None)


@pytest.mark.parametrize("line_break", [b"\n", b"\r\n", b"\r"], ids=["lf", "crlf", "cr"])
def test_lines_up_to_the_limit_are_read_whatever_the_line_breaks(
    tmp_path: Path, small_lines: int, line_break: bytes
) -> None:
    # Lines of the limit exactly, line break included, and more of them than the limit in all.
    value = "x" * (small_lines - len(b'{"a": ""}') - len(line_break))
    lines = [json.dumps({"a": value}, separators=(", ", ": ")).encode()] * 3
    path = write(tmp_path, "contacts.jsonl", line_break.join(lines) + line_break)
    assert len(lines[0] + line_break) == small_lines
    assert list(read_records(path)) == [(n, {"a": value}) for n in (1, 2, 3)]


@pytest.mark.parametrize("name", ["huge.jsonl", "huge.csv"])
def test_a_line_far_over_the_limit_is_refused_reading_no_more_than_the_limit(
    tmp_path: Path, name: str
) -> None:
    path = tmp_path / name
    with path.open("wb") as handle:
        handle.truncate(4 * MAX_LINE_BYTES)  # 64 MiB of zero bytes and no line break, sparse on disk
    tracemalloc.start()
    try:
        with pytest.raises(WolkvoxInputError) as raised:
            check_records_file(str(path))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
        path.unlink()
    assert str(raised.value) == f"{path} line 1: longer than 16,777,216 bytes, the most a line may hold"
    assert peak < 2 * MAX_LINE_BYTES + 4 * MIB


def test_object_store_objects_are_read_unchecked_with_their_lines_bounded(small_lines: int) -> None:
    try:
        from airflow.sdk.io.store import attach
    except ImportError:  # Airflow 2
        from airflow.io.store import attach
    from airflow.providers.common.compat.sdk import ObjectStoragePath
    from fsspec.implementations.memory import MemoryFileSystem

    attach("memory", fs=MemoryFileSystem())
    url = "memory://wolkvox-test-sources/contacts.csv"
    # Lines ending in a lone \r, more of them than the limit in all, then one line past it.
    ObjectStoragePath(url).write_bytes(b"Nombre\r" + b"Ana\r" * 500 + b"x" * 2048 + b"\n")
    records = read_records(url)
    assert [next(records) for _ in range(500)] == [(n, {"Nombre": "Ana"}) for n in range(2, 502)]
    with pytest.raises(WolkvoxInputError) as raised:
        next(records)
    assert str(raised.value) == f"{url} line 502: longer than 1,024 bytes, the most a line may hold"


@pytest.mark.parametrize(
    ("record", "key", "times"),
    [
        ('{"Email": "a@x.co", "Nombre": "Ana", "Email": "b@x.co"}', "Email", 2),
        ('{"Tel": 1, "Tel": 2, "Nombre": "Ana", "Tel": 3}', "Tel", 3),
        ('{"Dirección": {"type": "address", "value": "Calle 1", "value": "Calle 2"}}', "value", 2),
        ('{"Tabla": [{"n": 1}, {"n": 2, "n": 3}]}', "n", 2),
    ],
    ids=["field", "field-three-times", "in-a-typed-value", "in-a-list"],
)
def test_a_jsonl_object_giving_a_key_twice_is_refused(
    tmp_path: Path, record: str, key: str, times: int
) -> None:
    path = write(tmp_path, "contacts.jsonl", f'{{"Nombre": "Bea"}}\n{record}\n'.encode())
    error = refusal(path)
    assert str(error) == (
        f"{path} line 2: key {key!r} appears {times} times in one object; a JSON reader would keep only"
        " the last value"
    )
    assert (error.record, error.field) == ("line 2", key)


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
