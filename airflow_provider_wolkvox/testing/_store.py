"""The fake CRM's records: validation, unique fields, ids and lookups, kept in memory."""

from __future__ import annotations

import itertools
import json
import secrets
import threading
import time
from collections import defaultdict
from collections.abc import Iterable, Mapping
from typing import Any

from airflow_provider_wolkvox.api import MAX_TEXT_LENGTH

# Creation metadata the CRM adds to every record.
CREATED_AT = "wolkvox_fch_creation"
CREATED_BY = "wolkvox_usuario_creacion"
CREATED_BY_API = "API"
ID = "wolkvox_id"

Record = dict[str, Any]


class InvalidRecord(ValueError):
    """A record the CRM refuses; the message is the answer's ``msg``.

    The vendor's texts for these refusals are not public: the wording is ours.
    """


def _comparable(value: Any) -> Any:
    """Reduce a field value to a hashable key, so that typed values compare by their ``value``."""
    if isinstance(value, dict) and "type" in value:
        value = value.get("value")
    if isinstance(value, (dict, list)):
        return json.dumps(value, sort_keys=True)
    return value


def _index_records(by_value: defaultdict[Any, list[Record]], field: str, records: Iterable[Record]) -> None:
    for record in records:
        if field in record:
            by_value[_comparable(record[field])].append(record)


def _problem(record: Any) -> str | None:
    """Say what is wrong with one record on its own, or None when it is acceptable."""
    if not isinstance(record, dict) or not record:
        return "A RECORD MUST BE A NON-EMPTY OBJECT"
    for name, value in record.items():
        if isinstance(value, dict) and "type" in value:
            if "value" not in value:
                return f"FIELD '{name}' OF TYPE '{value['type']}' NEEDS A 'value'"
            value = value["value"]
        if isinstance(value, str) and len(value) > MAX_TEXT_LENGTH:
            return f"FIELD '{name}' IS LONGER THAN {MAX_TEXT_LENGTH} CHARACTERS"
    return None


def _refusal(index: int, problem: str, numbered: bool) -> InvalidRecord:
    """Name the failing record by its index when it came in a batch."""
    return InvalidRecord(f"RECORD {index}: {problem}" if numbered else problem)


class RecordStore:
    """Records by (operation, module), thread-safe.

    :param unique_fields: field labels per module whose values must not repeat within a
        module and operation, like the CRM's fields marked *Unique*.
    """

    def __init__(self, unique_fields: Mapping[str, Iterable[str]]) -> None:
        self._unique_fields = {module: tuple(fields) for module, fields in unique_fields.items()}
        self._lock = threading.Lock()
        self._records: defaultdict[tuple[str, str], list[Record]] = defaultdict(list)
        # Values taken per (operation, module, field) of the unique fields.
        self._taken: defaultdict[tuple[str, str, str], set[Any]] = defaultdict(set)
        # Records by value, per (operation, module, field) queried so far: built on a field's first
        # query and kept up to date by inserts, so a query does not read every stored record.
        self._index: dict[tuple[str, str, str], defaultdict[Any, list[Record]]] = {}
        # Ids are built like the MongoDB ObjectIds the real ids look like: creation second, a random
        # part per store and a counter. Unique by construction unless 2**24 ids fall in one second.
        self._id_salt = secrets.token_hex(5)
        self._id_counter = itertools.count(secrets.randbelow(1 << 24))

    def insert(self, operation: str, module: str, records: list[Any], *, numbered: bool) -> list[str]:
        """Store every record or none, and return their new ids in input order.

        :param numbered: name the failing record by its index, as a batch refusal must.
        :raises InvalidRecord: a record is invalid or repeats a unique value.
        """
        for index, record in enumerate(records):
            problem = _problem(record)
            if problem is not None:
                raise _refusal(index, problem, numbered)
        unique = self._unique_fields.get(module, ())
        created_at = time.strftime("%Y-%m-%d %H:%M:%S")
        with self._lock:
            new_values = self._check_unique(operation, module, unique, records, numbered)
            for field, values in new_values.items():
                self._taken[operation, module, field] |= values
            prefix = f"{int(time.time()) & 0xFFFFFFFF:08x}{self._id_salt}"
            ids = [f"{prefix}{next(self._id_counter) & 0xFFFFFF:06x}" for _ in records]
            for record, new_id in zip(records, ids, strict=True):
                # The parsed request body is the server's own, so it becomes the record without a copy.
                record[ID] = new_id
                record[CREATED_AT] = created_at
                record[CREATED_BY] = CREATED_BY_API
            self._records[operation, module].extend(records)
            for (indexed_operation, indexed_module, field), by_value in self._index.items():
                if (indexed_operation, indexed_module) == (operation, module):
                    _index_records(by_value, field, records)
        return ids

    def _check_unique(
        self,
        operation: str,
        module: str,
        unique: tuple[str, ...],
        records: list[Record],
        numbered: bool,
    ) -> dict[str, set[Any]]:
        """Return the unique values ``records`` would take; call with the lock held."""
        new_values: dict[str, set[Any]] = {field: set() for field in unique}
        for index, record in enumerate(records):
            for field in unique:
                if field not in record:
                    continue
                value = _comparable(record[field])
                if value in new_values[field] or value in self._taken[operation, module, field]:
                    raise _refusal(index, f"VALUE OF FIELD '{field}' ALREADY EXISTS", numbered)
                new_values[field].add(value)
        return new_values

    def query(self, operation: str, module: str, field: str, value: Any) -> list[Record]:
        """Return copies of the records whose ``field`` equals ``value`` (typed values by their value)."""
        with self._lock:
            by_value = self._index.get((operation, module, field))
            if by_value is None:
                by_value = self._index[operation, module, field] = defaultdict(list)
                _index_records(by_value, field, self._records.get((operation, module), ()))
            return [dict(record) for record in by_value.get(_comparable(value), ())]

    def records(self, operation: str, module: str) -> list[Record]:
        """Return shallow copies of the stored records, oldest first."""
        with self._lock:
            return [dict(record) for record in self._records.get((operation, module), ())]

    def count(self, operation: str, module: str) -> int:
        """Return how many records are stored, without copying them."""
        with self._lock:
            return len(self._records.get((operation, module), ()))

    def clear(self) -> None:
        """Forget every record and unique value."""
        with self._lock:
            self._records.clear()
            self._taken.clear()
            self._index.clear()
