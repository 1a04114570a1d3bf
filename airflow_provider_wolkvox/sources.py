"""Records read from files, lazily: JSON Lines or CSV, local or any ``ObjectStoragePath`` URL.

Files are read as bytes and decoded line by line in the ``encoding`` given (UTF-8 unless told; a
UTF-8 byte-order mark at the start is skipped), so a line that is not valid in it is named. Lines
end at ``\\n``, ``\\r\\n`` or ``\\r``, so the encoding must write those as ASCII does (UTF-8,
Latin-1, cp1252..., not UTF-16). Each record carries the file line it starts on, so a bad one is
named by its line.
"""

from __future__ import annotations

import codecs
import csv
import functools
import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import IO, Any

from airflow_provider_wolkvox.exceptions import WolkvoxInputError
from airflow_provider_wolkvox.fields import prepare_record

JSONL_SUFFIXES = (".jsonl", ".ndjson")
CSV_SUFFIXES = (".csv",)
DEFAULT_ENCODING = "utf-8"
#: The longest CSV cell read, in characters (the csv module's own default is 128 Ki).
MAX_CSV_CELL = 16 * 1024 * 1024


@contextmanager
def open_text(path: str, mode: str = "r", *, encoding: str = DEFAULT_ENCODING) -> Iterator[IO[str]]:
    """Open a local path, or a URL through Airflow's ``ObjectStoragePath`` (s3://, gs://, file://...)."""
    # Reading skips the byte-order mark spreadsheet programs put in front of CSV files.
    if mode == "r" and _is_utf8(encoding):
        encoding = "utf-8-sig"
    with _open(path, mode, encoding=encoding, newline="") as handle:
        yield handle


def read_records(path: str, *, encoding: str = DEFAULT_ENCODING) -> Iterator[tuple[int, dict[str, Any]]]:
    """Yield ``(line, record)`` for every record of a ``.jsonl``/``.ndjson`` or ``.csv`` file, lazily.

    :param path: a local path or an ``ObjectStoragePath`` URL.
    :param encoding: the file's text encoding, e.g. ``"latin-1"`` for a Latin-1 export.
    :raises WolkvoxInputError: naming the line (and the column) of a line that cannot be read.
    """
    _check_encoding(encoding)
    lower = path.lower()
    if lower.endswith(JSONL_SUFFIXES):
        return _jsonl_records(path, encoding)
    if lower.endswith(CSV_SUFFIXES):
        return _csv_records(path, encoding)
    raise WolkvoxInputError(
        f"records_path {path!r}: unknown format; name the file *.jsonl, *.ndjson or *.csv"
    )


def check_records_file(path: str, *, encoding: str = DEFAULT_ENCODING) -> int:
    """A streaming validation pass over the whole file; return its record count.

    Every record is checked and encoded as it will be sent (:func:`~.fields.prepare_record`).

    :raises WolkvoxInputError: naming the line and the field of the first bad record.
    """
    count = 0
    for line, record in read_records(path, encoding=encoding):
        prepare_record(record, record=f"line {line}")
        count += 1
    return count


@contextmanager
def _open(path: str, mode: str, **options: Any) -> Iterator[IO[Any]]:
    try:
        if "://" in path:
            from airflow.providers.common.compat.sdk import ObjectStoragePath

            handle = ObjectStoragePath(path).open(mode, **options)
        else:
            handle = open(path, mode, **options)  # noqa: SIM115 - closed below
    except (OSError, ValueError, LookupError) as exc:
        raise WolkvoxInputError(f"cannot open {path!r}: {exc}") from None
    with handle:
        yield handle


def _is_utf8(encoding: str) -> bool:
    try:
        return codecs.lookup(encoding).name == "utf-8"
    except LookupError:
        return False  # refused where the encoding is used, with the path named


def _check_encoding(encoding: str) -> None:
    try:
        line_breaks_as_ascii = "\r\n".encode(encoding) == b"\r\n"
    except LookupError:
        raise WolkvoxInputError(f"unknown text encoding {encoding!r}") from None
    if not line_breaks_as_ascii:
        raise WolkvoxInputError(
            f"encoding {encoding!r} is not supported: records files are read line by line, which needs"
            " an encoding that writes line breaks as ASCII does (utf-8, latin-1, cp1252...)"
        )


def _lines(path: str, encoding: str) -> Iterator[tuple[int, str]]:
    """``(line, text)`` of every physical line of the file, decoded one by one."""
    skip_bom = _is_utf8(encoding)
    with _open(path, "rb") as handle:
        # readline() gives pieces ending at b"\n" (Airflow 2's ObjectStoragePath file cannot be
        # iterated); splitlines() also breaks them at a lone b"\r", as text mode did.
        pieces = (raw for chunk in iter(handle.readline, b"") for raw in chunk.splitlines(keepends=True))
        for line, raw in enumerate(pieces, start=1):
            if line == 1 and skip_bom and raw.startswith(codecs.BOM_UTF8):
                raw = raw[len(codecs.BOM_UTF8) :]
            try:
                text = raw.decode(encoding)
            except UnicodeDecodeError as exc:
                raise _not_decodable(path, line, encoding, exc) from None
            yield line, text


def _not_decodable(path: str, line: int, encoding: str, exc: UnicodeDecodeError) -> WolkvoxInputError:
    hint = (
        "pass encoding='latin-1' if the export is Latin-1"
        if _is_utf8(encoding)
        else "pass the encoding the file was written in"
    )
    return _line_error(
        path,
        line,
        f"not valid {encoding} ({exc.reason}: {exc.object[exc.start : exc.end]!r} at byte"
        f" {exc.start + 1} of the line); {hint}",
    )


def _line_error(path: str, line: int, problem: str, *, field: str | None = None) -> WolkvoxInputError:
    return WolkvoxInputError(f"{path} line {line}: {problem}", record=f"line {line}", field=field)


def _jsonl_records(path: str, encoding: str) -> Iterator[tuple[int, dict[str, Any]]]:
    for line, text in _lines(path, encoding):
        if not text.strip():
            continue
        try:
            record = json.loads(text)
        except ValueError as exc:
            raise _line_error(path, line, f"not valid JSON ({exc})") from None
        except RecursionError:
            raise _line_error(path, line, "JSON nested too deeply to read") from None
        if not isinstance(record, dict):
            raise _line_error(path, line, f"a record must be a JSON object, got {type(record).__name__}")
        yield line, record


def _csv_records(path: str, encoding: str) -> Iterator[tuple[int, dict[str, Any]]]:
    _allow_large_csv_cells()
    rows = _csv_rows(path, encoding)
    first = next(rows, None)
    if first is None:
        return
    header_line, header = first
    _check_header(path, header_line, header)
    for line, row in rows:
        if not any(row):  # a row of empty cells
            continue
        if len(row) != len(header):
            raise _line_error(path, line, f"{len(row)} values where the header has {len(header)} columns")
        # An empty CSV cell means "no value": the field is left out rather than sent empty.
        yield line, {name: value for name, value in zip(header, row, strict=True) if value != ""}


@functools.cache
def _allow_large_csv_cells() -> None:
    # Exports carry long notes and tables written as text, past the csv module's 128 Ki cell limit.
    # The limit is process-wide: raised once, and never lowered below what someone else set.
    if csv.field_size_limit() < MAX_CSV_CELL:
        csv.field_size_limit(MAX_CSV_CELL)


def _csv_rows(path: str, encoding: str) -> Iterator[tuple[int, list[str]]]:
    """``(first line, cells)`` of every CSV row but blank lines, a row's lines joined where quoted."""
    reader = csv.reader(text for _, text in _lines(path, encoding))
    last_line = 0
    while True:
        try:
            row = next(reader, None)
        except csv.Error as exc:
            # line_num counts the lines read so far: the one the error arose on.
            raise _line_error(path, reader.line_num, f"not valid CSV ({exc})") from None
        if row is None:
            return
        first_line, last_line = last_line + 1, reader.line_num
        if row:  # csv gives a blank line as []
            yield first_line, row


def _check_header(path: str, line: int, header: list[str]) -> None:
    """Refuse a header with a column that has no name, or a name given twice."""
    positions: dict[str, list[int]] = {}
    for position, name in enumerate(header, start=1):
        if not name.strip():
            raise _line_error(path, line, f"column {position} of the header has no name")
        positions.setdefault(name, []).append(position)
    for name, where in positions.items():
        if len(where) > 1:
            columns = ", ".join(map(str, where))
            raise _line_error(
                path,
                line,
                f"column {name!r} appears {len(where)} times in the header (columns {columns})",
                field=name,
            )
