"""Records read from a SQL query, through the ``DbApiHook`` of any Airflow Connection.

The query runs once. Its rows are fetched in chunks (``cursor.fetchmany``), through a server-side
cursor where the driver has one (psycopg2 and psycopg: a named cursor; others, SQLite among them, a
plain cursor), and each row is checked and encoded as it will be sent (:func:`~.fields.prepare_record`)
and written to a local spool file, one JSON line per row, so that row N is line N. The load then
reads the spool as a records file: nothing is sent before the last row is checked, and memory stays
flat whatever the row count. The spool is removed at the end, on success and failure alike.

Value rules (docs/operators.md, "SQL input"): the column names (SQL aliases) are the field labels,
and a name given twice is refused; NULL is sent as null (an empty field); every other value goes
through the one rule of :mod:`~airflow_provider_wolkvox.fields` (``date`` → ``"YYYY-MM-DD"``,
``datetime`` → ``"YYYY-MM-DD HH:MM:SS"`` as the database gives its wall-clock time, ``Decimal`` → a
JSON number); a JSON column the driver decodes (a dict or a list, e.g. PostgreSQL ``json``/``jsonb``)
passes through as JSON, so that it can carry a typed field; binary data is refused, naming the row
and the column. Rows are named ``row N`` (from 1), and for a sync also by their key.
"""

from __future__ import annotations

import logging
import os
import tempfile
import uuid
from collections.abc import Iterator, Mapping, Sequence
from contextlib import closing, contextmanager, suppress
from dataclasses import dataclass
from typing import IO, TYPE_CHECKING, Any

from airflow_provider_wolkvox.exceptions import WolkvoxInputError
from airflow_provider_wolkvox.fields import prepare_record
from airflow_provider_wolkvox.sources import MAX_LINE_BYTES

if TYPE_CHECKING:
    from airflow.providers.common.sql.hooks.sql import DbApiHook

log = logging.getLogger(__name__)

#: Rows fetched per ``cursor.fetchmany`` call unless told.
DEFAULT_FETCH_SIZE = 5_000
#: The DB-API drivers whose connections make a server-side cursor with ``cursor(name=...)``.
SERVER_SIDE_DRIVERS = frozenset({"psycopg2", "psycopg"})
_BINARY = (bytes, bytearray, memoryview)
# The spool is written through a buffer of this size.
_SPOOL_BUFFER = 1024 * 1024


@dataclass(frozen=True)
class Spool:
    """The rows of a query, checked, in a local JSON Lines file (row N on line N).

    :param path: the spool file.
    :param rows: how many rows it holds.
    :param server_side: whether they were read through a server-side cursor.
    """

    path: str
    rows: int
    server_side: bool


@contextmanager
def spooled_query(
    conn_id: str,
    sql: str,
    parameters: Mapping[str, Any] | Sequence[Any] | None = None,
    *,
    key_field: str | None = None,
    fetch_size: int = DEFAULT_FETCH_SIZE,
    directory: str | None = None,
) -> Iterator[Spool]:
    """Run ``sql`` once on Connection ``conn_id`` and spool its rows, each checked as it will be sent.

    The spool is removed when the ``with`` block ends, however it ends.

    :param conn_id: an Airflow Connection whose hook is a ``DbApiHook`` (postgres, sqlite, mysql...).
    :param parameters: the query's parameters, in the driver's paramstyle.
    :param key_field: a sync's key field: every row must give it a value, and errors name it.
    :param fetch_size: rows per ``fetchmany`` call.
    :param directory: where the spool is made; the system's temporary folder unless told.
    :raises WolkvoxInputError: a Connection without a SQL hook, a query without a result, a column
        name given twice, or a row that cannot be sent (naming the row, the column and the key).
    """
    handle, path = tempfile.mkstemp(prefix="wolkvox-sql-", suffix=".jsonl", dir=directory)
    try:
        with os.fdopen(handle, "wb", buffering=_SPOOL_BUFFER) as out:
            rows, server_side = _spool_rows(db_hook(conn_id), sql, parameters, out, key_field, fetch_size)
        log.info(
            "wolkvox: read %d rows of the SQL query on Connection %r (%s cursor), every row checked",
            rows,
            conn_id,
            "a server-side" if server_side else "a plain",
        )
        yield Spool(path, rows, server_side)
    finally:
        with suppress(FileNotFoundError):
            os.unlink(path)


def db_hook(conn_id: str) -> DbApiHook:
    """The ``DbApiHook`` of Connection ``conn_id``, as Airflow's own SQL operators get it.

    :raises WolkvoxInputError: the Connection's hook is not a ``DbApiHook``.
    """
    from airflow.providers.common.compat.sdk import BaseHook
    from airflow.providers.common.sql.hooks.sql import DbApiHook

    connection = BaseHook.get_connection(conn_id)
    hook = connection.get_hook()
    if not isinstance(hook, DbApiHook):
        raise WolkvoxInputError(
            f"sql_conn_id {conn_id!r}: a {connection.conn_type!r} Connection has no SQL hook "
            f"({type(hook).__name__} is not a DbApiHook); give a database Connection"
        )
    return hook


def check_fetch_size(fetch_size: Any) -> int:
    """``fetch_size`` if it is a positive number of rows.

    :raises WolkvoxInputError: otherwise.
    """
    if type(fetch_size) is not int or fetch_size < 1:
        raise WolkvoxInputError(f"sql_fetch_size must be a number of rows (1 or more), got {fetch_size!r}")
    return fetch_size


def _spool_rows(
    hook: DbApiHook,
    sql: str,
    parameters: Mapping[str, Any] | Sequence[Any] | None,
    out: IO[bytes],
    key_field: str | None,
    fetch_size: int,
) -> tuple[int, bool]:
    """Write every row of ``sql`` to ``out`` as a checked JSON line; return the row count and
    whether the cursor was server-side."""
    rows = 0
    with closing(hook.get_conn()) as conn, _cursor(conn) as (cursor, server_side):
        if parameters is None:
            cursor.execute(sql)
        else:
            cursor.execute(sql, parameters)
        # A named (server-side) cursor of psycopg2 describes its columns only once rows are fetched.
        chunk = cursor.fetchmany(fetch_size) if cursor.description is not None or server_side else []
        columns = _columns(cursor.description, key_field)
        while chunk:
            for row in chunk:
                rows += 1
                out.write(row_line(columns, row, rows, key_field))
            chunk = cursor.fetchmany(fetch_size)
    return rows, server_side


@contextmanager
def _cursor(conn: Any) -> Iterator[tuple[Any, bool]]:
    """A cursor of ``conn``: a named, server-side one where the driver has them; and whether it is."""
    server_side = type(conn).__module__.partition(".")[0] in SERVER_SIDE_DRIVERS
    cursor = conn.cursor(name=f"wolkvox_sql_{uuid.uuid4().hex}") if server_side else conn.cursor()
    try:
        yield cursor, server_side
    finally:
        cursor.close()


def _columns(description: Sequence[Sequence[Any]] | None, key_field: str | None) -> list[str]:
    """The field labels: the query's column names, each given once.

    :raises WolkvoxInputError: no result set, a blank or repeated column name, or no key column.
    """
    if description is None:
        raise WolkvoxInputError("the sql gave no rows to read: give a query that returns rows (a SELECT)")
    columns = [str(column[0]) for column in description]
    positions: dict[str, list[int]] = {}
    for position, name in enumerate(columns, start=1):
        if not name.strip():
            raise WolkvoxInputError(f"column {position} of the sql has no name; name it with AS")
        positions.setdefault(name, []).append(position)
    for name, where in positions.items():
        if len(where) > 1:
            raise WolkvoxInputError(
                f"column {name!r} appears {len(where)} times in the sql's result (columns "
                f"{', '.join(map(str, where))}); give each its own label with AS",
                field=name,
            )
    if key_field is not None and key_field not in positions:
        raise WolkvoxInputError(
            f"the sql has no column {key_field!r}, the key_field; its columns: {', '.join(columns)}",
            field=key_field,
        )
    return columns


def row_line(
    columns: Sequence[str], row: Sequence[Any] | Mapping[str, Any], number: int, key_field: str | None
) -> bytes:
    """Row ``number`` (from 1) as its spool line: the record's fields as they will be sent.

    :raises WolkvoxInputError: naming the row, the column and, for a sync, the key.
    """
    values = [row[name] for name in columns] if isinstance(row, Mapping) else row
    record = dict(zip(columns, values, strict=True))
    label = f"row {number}"
    if key_field is not None:
        key = record[key_field]
        if key is None or (isinstance(key, str) and not key.strip()):
            raise WolkvoxInputError(
                f"{label}: no value for the key field {key_field!r} ({'NULL' if key is None else repr(key)})",
                record=label,
                field=key_field,
            )
        label = f"{label} ({key_field}={key!r})"
    try:
        _, body = prepare_record(record, record=label)
    except WolkvoxInputError as error:
        value = record.get(error.field) if error.field is not None else None
        if not isinstance(value, _BINARY):
            raise
        raise WolkvoxInputError(
            f"record {label}: field {error.field!r}: binary data ({type(value).__name__}) cannot be sent;"
            " convert it to text in the query (e.g. base64 or hex)",
            record=label,
            field=error.field,
        ) from None
    if len(body) >= MAX_LINE_BYTES:
        raise WolkvoxInputError(
            f"{label}: the row takes {len(body):,} bytes as JSON, more than a record may"
            f" ({MAX_LINE_BYTES - 1:,})",
            record=label,
        )
    return body + b"\n"
