"""The fake CRM's records: validation, metadata, ids and lookups, kept in memory."""

from __future__ import annotations

import itertools
import random
import secrets
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from airflow_provider_wolkvox.api import (
    CREATED_AT_FIELD,
    ID_FIELD,
    MAX_TEXT_LENGTH,
    MODIFIED_AT_FIELD,
    MSG_RECORD_DOES_NOT_EXIST,
)
from airflow_provider_wolkvox.testing._clock import FakeClock
from airflow_provider_wolkvox.testing._module import InvalidRecord, ModuleRecords, Record, refusal

CREATED_BY = "wolkvox_usuario_creacion"
CREATED_BY_API = "API"
# The metadata the CRM keeps itself: values a request sends for these fields are ignored.
METADATA_FIELDS = frozenset({ID_FIELD, CREATED_AT_FIELD, MODIFIED_AT_FIELD, CREATED_BY})

__all__ = ["CREATED_BY", "InvalidRecord", "Record", "RecordStore"]


def _problem(record: Any) -> str | None:
    """Say what is wrong with one record (or the fields of an update) on its own, or None."""
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


class RecordStore:
    """Records by (operation, module), thread-safe.

    :param unique_fields: field labels per module whose values must not repeat within a
        module and operation, like the CRM's fields marked *Unique*.
    :param clock: the CRM's clock, for the records' creation and modification times.
    """

    def __init__(self, unique_fields: Mapping[str, Iterable[str]], clock: FakeClock) -> None:
        self._unique_fields = {module: tuple(fields) for module, fields in unique_fields.items()}
        self._clock = clock
        self._lock = threading.Lock()
        self._modules: dict[tuple[str, str], ModuleRecords] = {}
        # Ids are built like the MongoDB ObjectIds the real ids look like: creation second, a random
        # part per store and a counter. Unique by construction unless 2**24 ids fall in one second.
        self._id_salt = secrets.token_hex(5)
        self._id_counter = itertools.count(secrets.randbelow(1 << 24))

    def insert(
        self,
        operation: str,
        module: str,
        records: Sequence[Any],
        *,
        numbered: bool,
        created_at: Sequence[str] | None = None,
    ) -> list[str]:
        """Store every record or none, and return their new ids in input order.

        The records become the stored ones, without a copy (a parsed request body is the server's own).

        :param numbered: name the failing record by its index, as a batch refusal must.
        :param created_at: the records' creation times, one each, as the CRM writes them; default now.
        :raises InvalidRecord: a record is invalid or repeats a unique value.
        """
        for index, record in enumerate(records):
            problem = _problem(record)
            if problem is not None:
                raise refusal(index, problem, numbered)
        times = [self._clock.stamp()] * len(records) if created_at is None else created_at
        with self._lock:
            stored = self._modules.get((operation, module))
            if stored is None:
                stored = ModuleRecords(self._unique_fields.get(module, ()))
            stored.check_unique(records, numbered=numbered)
            prefix = f"{int(time.time()) & 0xFFFFFFFF:08x}{self._id_salt}"
            ids = [f"{prefix}{next(self._id_counter) & 0xFFFFFF:06x}" for _ in records]
            for record, new_id, created in zip(records, ids, times, strict=True):
                record[ID_FIELD] = new_id
                record[CREATED_AT_FIELD] = record[MODIFIED_AT_FIELD] = created
                record[CREATED_BY] = CREATED_BY_API
            stored.add(records)
            self._modules[operation, module] = stored
        return ids

    def update(self, operation: str, module: str, record_id: str, fields: Any) -> None:
        """Merge ``fields`` into the record; the fields it does not name keep their values.

        :raises InvalidRecord: no such record, invalid fields, or a unique value another record holds.
        """
        problem = _problem(fields)
        if problem is not None:
            raise InvalidRecord(problem)
        changes = {name: value for name, value in fields.items() if name not in METADATA_FIELDS}
        changes[MODIFIED_AT_FIELD] = self._clock.stamp()
        with self._lock:
            stored = self._holding(operation, module, [record_id])
            stored.check_unique([changes], numbered=False, own_id=record_id)
            stored.update(stored.by_id[record_id], changes)

    def delete(self, operation: str, module: str, ids: Sequence[str]) -> list[str]:
        """Delete the records of ``ids``, all or none; return the distinct ids deleted.

        :raises InvalidRecord: an id names no record.
        """
        distinct = list(dict.fromkeys(ids))
        with self._lock:
            self._holding(operation, module, distinct).remove(distinct)
        return distinct

    def query(self, operation: str, module: str, field: str, value: Any) -> list[Record]:
        """Return copies of the records whose ``field`` equals ``value`` (typed values by their value)."""
        return self._copies(operation, module, lambda stored: stored.query(field, value))

    def created_between(
        self,
        operation: str,
        module: str,
        start: str,
        end: str,
        limit: int,
        order: str = "ascending",
        rng: random.Random | None = None,
    ) -> list[Record]:
        """Return copies of at most ``limit`` records created from ``start`` to ``end``, listed by ``order``
        (see :data:`~airflow_provider_wolkvox.testing._module.QUERY_DATES_ORDERS`)."""
        return self._copies(
            operation, module, lambda stored: stored.created_between(start, end, limit, order, rng)
        )

    def records(self, operation: str, module: str) -> list[Record]:
        """Return shallow copies of the stored records, in the order they were stored."""
        return self._copies(operation, module, lambda stored: list(stored.by_id.values()))

    def count(self, operation: str, module: str) -> int:
        """Return how many records are stored, without copying them."""
        with self._lock:
            stored = self._modules.get((operation, module))
            return 0 if stored is None else len(stored.by_id)

    def clear(self) -> None:
        """Forget every record and unique value."""
        with self._lock:
            self._modules.clear()

    def _holding(self, operation: str, module: str, ids: Iterable[str]) -> ModuleRecords:
        """Return the module that holds every record of ``ids``; call with the lock held.

        :raises InvalidRecord: an id names no record of the module.
        """
        stored = self._modules.get((operation, module))
        if stored is None or any(record_id not in stored.by_id for record_id in ids):
            raise InvalidRecord(MSG_RECORD_DOES_NOT_EXIST)
        return stored

    def _copies(
        self, operation: str, module: str, read: Callable[[ModuleRecords], list[Record]]
    ) -> list[Record]:
        with self._lock:
            stored = self._modules.get((operation, module))
            return [] if stored is None else [dict(record) for record in read(stored)]
