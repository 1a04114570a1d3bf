"""Records read from files, lazily: JSON Lines or CSV, local or any ``ObjectStoragePath`` URL.

Files are read as bytes and decoded line by line in the ``encoding`` given (UTF-8 unless told; a
UTF-8 byte-order mark at the start is skipped), so a line that is not valid in it is named. Lines
end at ``\\n``, ``\\r\\n`` or ``\\r``, so the encoding must write those as ASCII does (UTF-8,
Latin-1, cp1252..., not UTF-16). Each record carries the file line it starts on, so a bad one is
named by its line.

Nothing in a file is trusted for size: a local file (or ``file://`` URL) read must be a regular file,
checked before it is opened (opening a FIFO blocks, a device never ends), and no line is read past
:data:`MAX_LINE_BYTES`. Object stores (s3://, gs://...) hold objects, never FIFOs or devices: their
objects are read unchecked, bounded by the same line limit.
"""

from __future__ import annotations

import codecs
import csv
import functools
import json
import os
import stat
from collections import Counter
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
#: The longest line read, in bytes with its line break: a longer one is refused, read no further.
MAX_LINE_BYTES = 16 * 1024 * 1024


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
    :raises WolkvoxInputError: naming the line (and the column or key) of a line that cannot be read,
        one longer than :data:`MAX_LINE_BYTES`, or a JSON object giving a key twice; naming the path
        when it is not a regular file.
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
        handle = _open_url(path, mode, **options) if "://" in path else _open_local(path, mode, **options)
    except (OSError, ValueError, LookupError) as exc:
        raise WolkvoxInputError(f"cannot open {path!r}: {exc}") from None
    with handle:
        yield handle


def _open_url(url: str, mode: str, **options: Any) -> IO[Any]:
    from airflow.providers.common.compat.sdk import ObjectStoragePath
    from fsspec.implementations.local import LocalFileSystem

    target = ObjectStoragePath(url)
    if mode.startswith("r") and isinstance(target.fs, LocalFileSystem):
        return _open_local(target.path, mode, **options)  # a file:// URL: a local file, checked as one
    return target.open(mode, **options)


def _open_local(path: str, mode: str, **options: Any) -> IO[Any]:
    if not mode.startswith("r"):
        return open(path, mode, **options)
    _check_regular(path, os.stat(path))
    handle = open(path, mode, opener=_open_without_blocking, **options)  # noqa: SIM115 - closed by the caller
    try:
        # The path may have been replaced since the check: what was opened is checked too.
        _check_regular(path, os.fstat(handle.fileno()))
    except OSError:
        handle.close()
        raise
    return handle


def _open_without_blocking(path: str, flags: int) -> int:
    # A FIFO put in place after the check is opened at once (and then refused), never waited on.
    return os.open(path, flags | os.O_NONBLOCK)


_SPECIAL_FILES = (
    (stat.S_ISDIR, "a directory"),
    (stat.S_ISFIFO, "a FIFO (named pipe)"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISSOCK, "a socket"),
)


def _file_kind(mode: int) -> str:
    return next((kind for is_kind, kind in _SPECIAL_FILES if is_kind(mode)), "a special file")


def _check_regular(path: str, status: os.stat_result) -> None:
    """Refuse anything but a regular file: a FIFO blocks, a device never ends, a directory has no lines.

    :raises OSError: naming the kind of file (and the target of a link), for the caller to name the path.
    """
    if stat.S_ISREG(status.st_mode):
        return
    kind = _file_kind(status.st_mode)
    what = f"it links to {os.path.realpath(path)!r}, {kind}" if os.path.islink(path) else f"it is {kind}"
    raise OSError(f"{what}, not a regular file")


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
    for line, raw in _raw_lines(path):
        if line == 1 and skip_bom and raw.startswith(codecs.BOM_UTF8):
            raw = raw[len(codecs.BOM_UTF8) :]
        try:
            text = raw.decode(encoding)
        except UnicodeDecodeError as exc:
            raise _not_decodable(path, line, encoding, exc) from None
        yield line, text


def _raw_lines(path: str) -> Iterator[tuple[int, bytes]]:
    """``(line, bytes)`` of every physical line of the file, its line break kept.

    :raises WolkvoxInputError: for a line longer than :data:`MAX_LINE_BYTES`, read no further.
    """
    # Latin-1 reads each byte as one character: the text layer finds the line breaks (\n, \r\n
    # and a lone \r) and readline(limit) stops a line of any length at the limit, in bytes.
    with _open(path, "r", encoding="latin-1", newline="") as handle:
        pieces = iter(functools.partial(handle.readline, MAX_LINE_BYTES + 1), "")
        for line, piece in enumerate(pieces, start=1):
            if len(piece) > MAX_LINE_BYTES:
                raise _line_error(
                    path, line, f"longer than {MAX_LINE_BYTES:,} bytes, the most a line may hold"
                )
            yield line, piece.encode("latin-1")


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
            record = json.loads(text, object_pairs_hook=_object_of_unique_keys)
        except _RepeatedKeyError as exc:
            raise _line_error(
                path,
                line,
                f"key {exc.key!r} appears {exc.times} times in one object; a JSON reader would keep only"
                " the last value",
                field=exc.key,
            ) from None
        except ValueError as exc:
            raise _line_error(path, line, f"not valid JSON ({exc})") from None
        except RecursionError:
            raise _line_error(path, line, "JSON nested too deeply to read") from None
        if not isinstance(record, dict):
            raise _line_error(path, line, f"a record must be a JSON object, got {type(record).__name__}")
        yield line, record


class _RepeatedKeyError(Exception):
    def __init__(self, key: str, times: int) -> None:
        self.key = key
        self.times = times
        super().__init__(key, times)


def _object_of_unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """A JSON object as a dict, refusing a key given twice (at any depth) rather than keep the last value."""
    obj = dict(pairs)
    if len(obj) < len(pairs):
        counts = Counter(key for key, _ in pairs)
        key = next(key for key, _ in pairs if counts[key] > 1)
        raise _RepeatedKeyError(key, counts[key])
    return obj


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
