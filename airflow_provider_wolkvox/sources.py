"""Records read from files, lazily: JSON Lines or CSV, local or any ``ObjectStoragePath`` URL.

Each record carries the file line it came from, so a bad one is named by its line.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import IO, Any

from airflow_provider_wolkvox.exceptions import WolkvoxInputError
from airflow_provider_wolkvox.fields import prepare_fields

JSONL_SUFFIXES = (".jsonl", ".ndjson")
CSV_SUFFIXES = (".csv",)


@contextmanager
def open_text(path: str, mode: str = "r") -> Iterator[IO[str]]:
    """Open a local path, or a URL through Airflow's ``ObjectStoragePath`` (s3://, gs://, file://...)."""
    # Reading skips the byte-order mark spreadsheet programs put in front of CSV files.
    encoding = "utf-8-sig" if mode == "r" else "utf-8"
    try:
        if "://" in path:
            from airflow.providers.common.compat.sdk import ObjectStoragePath

            handle = ObjectStoragePath(path).open(mode, encoding=encoding, newline="")
        else:
            handle = open(path, mode, encoding=encoding, newline="")  # noqa: SIM115 - closed below
    except (OSError, ValueError) as exc:
        raise WolkvoxInputError(f"cannot open {path!r}: {exc}") from None
    with handle:
        yield handle


def read_records(path: str) -> Iterator[tuple[int, dict[str, Any]]]:
    """Yield ``(line, record)`` for every record of a ``.jsonl``/``.ndjson`` or ``.csv`` file, lazily."""
    lower = path.lower()
    if lower.endswith(JSONL_SUFFIXES):
        return _jsonl_records(path)
    if lower.endswith(CSV_SUFFIXES):
        return _csv_records(path)
    raise WolkvoxInputError(
        f"records_path {path!r}: unknown format; name the file *.jsonl, *.ndjson or *.csv"
    )


def check_records_file(path: str) -> int:
    """A streaming validation pass over the whole file; return its record count.

    :raises WolkvoxInputError: naming the line and the field of the first bad record.
    """
    count = 0
    for line, record in read_records(path):
        prepare_fields(record, record=f"line {line}")
        count += 1
    return count


def _jsonl_records(path: str) -> Iterator[tuple[int, dict[str, Any]]]:
    with open_text(path) as handle:
        for line, text in enumerate(handle, start=1):
            if not text.strip():
                continue
            try:
                record = json.loads(text)
            except ValueError as exc:
                raise WolkvoxInputError(
                    f"{path} line {line}: not valid JSON ({exc})", record=f"line {line}"
                ) from None
            if not isinstance(record, dict):
                raise WolkvoxInputError(
                    f"{path} line {line}: a record must be a JSON object, got {type(record).__name__}",
                    record=f"line {line}",
                )
            yield line, record


def _csv_records(path: str) -> Iterator[tuple[int, dict[str, Any]]]:
    with open_text(path) as handle:
        reader = csv.reader(handle)
        header = next(reader, None)
        if not header:
            return
        for row in reader:
            line = reader.line_num
            if not any(row):  # a blank line, or a row of empty cells
                continue
            if len(row) != len(header):
                raise WolkvoxInputError(
                    f"{path} line {line}: {len(row)} values where the header has {len(header)} columns",
                    record=f"line {line}",
                )
            # An empty CSV cell means "no value": the field is left out rather than sent empty.
            yield line, {name: value for name, value in zip(header, row, strict=True) if value != ""}
