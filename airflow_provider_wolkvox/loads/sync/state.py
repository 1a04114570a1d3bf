"""The sync state file: what a sync wrote, kept between runs so that the next one looks up and sends
only what changed.

JSON Lines, local or any URL ``ObjectStoragePath`` writes (``s3://…/contacts.sync-state.jsonl``).
The first line describes the state; each further line is one key::

    {"format": "wolkvox-sync-state", "version": 1, "operation": "demo", "module": "contacts",
     "key_field": "Email", "written_at": "2026-12-01T22:00:00+00:00", "module_size": 50000}
    {"key": "ana@example.com", "wolkvox_id": "64cb1f0e2a9d4c0012ab34cd",
     "fields": {"Nombre": "6d0b3c2a91fe", "Ciudad": "0f93c2aa41b7"}}

``key`` is the key's canonical text (numbers as digits, text stripped); ``fields`` maps each field
to a 12-hex digest of the value last written (or null when not known). ``module_size`` is the
module's record count as the last run saw it (null when unknown), used to price a module scan.
The engine reads and writes the state through a :class:`StateStorage` it is given (the hook passes
a file's, ``airflow_provider_wolkvox.state_file.StateFile``); this module only reads and writes
the format.
"""

from __future__ import annotations

import datetime
import hashlib
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any, Protocol

from airflow_provider_wolkvox.exceptions import WolkvoxInputError
from airflow_provider_wolkvox.fields import encode_json

STATE_FORMAT = "wolkvox-sync-state"
STATE_VERSION = 1
HASH_HEX_DIGITS = 12


class StateStorage(Protocol):
    """Where a sync state lives: ``name`` for messages, its lines to read, a whole new text to write."""

    name: str

    def exists(self) -> bool: ...

    def lines(self) -> Iterator[str]: ...

    def write(self, lines: Iterable[str]) -> None:
        """Replace the state whole, so that a reader never sees half of it."""


@dataclass(frozen=True)
class StateHeader:
    """What a state file is about; a state of another module, operation or key is refused."""

    operation: str
    module: str
    key_field: str
    module_size: int | None = None


def field_hashes(fields: dict[str, Any]) -> dict[str, str]:
    """The digests of a record's values, by field, as the state file keeps them."""
    return {
        name: hashlib.blake2b(encode_json(value), digest_size=HASH_HEX_DIGITS // 2).hexdigest()
        for name, value in fields.items()
    }


def read_state(
    storage: StateStorage, expected: StateHeader
) -> tuple[StateHeader | None, Iterator[tuple[str, str, Any]]]:
    """The header and the rows (key, wolkvox_id, hashes) of the state; (None, nothing) if absent.

    :raises WolkvoxInputError: a state that is not a sync state, or one of another module, operation or key.
    """
    if not storage.exists():
        return None, iter(())
    path = storage.name
    lines = storage.lines()
    try:
        header = json.loads(next(lines, "null"))
    except ValueError:
        header = None
    if not isinstance(header, dict) or header.get("format") != STATE_FORMAT:
        raise WolkvoxInputError(f"state_path {path!r} is not a wolkvox sync state (its first line says so)")
    if header.get("version") != STATE_VERSION:
        raise WolkvoxInputError(
            f"state_path {path!r}: version {header.get('version')!r} is not {STATE_VERSION}"
        )
    found = StateHeader(header["operation"], header["module"], header["key_field"], header.get("module_size"))
    scope = (found.operation, found.module, found.key_field)
    if scope != (expected.operation, expected.module, expected.key_field):
        raise WolkvoxInputError(
            f"state_path {path!r} holds the state of operation {found.operation!r}, module "
            f"{found.module!r}, key {found.key_field!r}, not of {expected.operation!r}, "
            f"{expected.module!r}, {expected.key_field!r}"
        )
    return found, _rows(path, lines)


def write_state(storage: StateStorage, header: StateHeader, rows: Iterable[tuple[str, str, Any]]) -> None:
    """Write the state whole."""
    storage.write(_state_lines(header, rows))


def _state_lines(header: StateHeader, rows: Iterable[tuple[str, str, Any]]) -> Iterator[str]:
    described = {
        "format": STATE_FORMAT,
        "version": STATE_VERSION,
        "operation": header.operation,
        "module": header.module,
        "key_field": header.key_field,
        "written_at": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "module_size": header.module_size,
    }
    yield json.dumps(described) + "\n"
    for key, wolkvox_id, hashes in rows:
        yield json.dumps({"key": key, "wolkvox_id": wolkvox_id, "fields": hashes}, ensure_ascii=False) + "\n"


def _rows(path: str, lines: Iterator[str]) -> Iterator[tuple[str, str, Any]]:
    for number, line in enumerate(lines, start=2):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            yield str(row["key"]), str(row["wolkvox_id"]), row.get("fields")
        except (ValueError, KeyError, TypeError):
            raise WolkvoxInputError(f"state_path {path!r} line {number}: not a state row") from None
