"""The records of one module of one operation, with the indexes that keep lookups cheap."""

from __future__ import annotations

import itertools
import json
import random
from bisect import bisect_left, bisect_right
from collections import defaultdict
from collections.abc import Container, Iterator, Sequence
from operator import itemgetter
from typing import Any

from airflow_provider_wolkvox.api import CREATED_AT_FIELD, ID_FIELD

Record = dict[str, Any]

#: How ``queryDates.php`` may list a window's records; the vendor does not document its order.
#: ``"ascending"``: the oldest ``limit`` records, oldest first (the fakes' contract);
#: ``"descending"``: the newest ``limit``, newest first; ``"random"``: any ``limit`` of them, in any order.
QUERY_DATES_ORDERS = ("ascending", "descending", "random")

_created_at = itemgetter(0)
# An indexed field: its name, its unique values' holders and its records by value (None where absent).
_Indexes = tuple[str, "dict[Any, str] | None", "dict[Any, dict[str, Record]] | None"]


class InvalidRecord(ValueError):
    """A record, or a change of one, that the CRM refuses; the message is the answer's ``msg``.

    The vendor's texts for these refusals are not public: the wording is ours.
    """


def refusal(index: int, problem: str, numbered: bool) -> InvalidRecord:
    """Name the failing record by its index when it came in a batch."""
    return InvalidRecord(f"RECORD {index}: {problem}" if numbered else problem)


def comparable(value: Any) -> Any:
    """Reduce a field value to a hashable key, so that typed values compare by their ``value``."""
    if isinstance(value, dict) and "type" in value:
        value = value.get("value")
    if isinstance(value, (dict, list)):
        return json.dumps(value, sort_keys=True)
    return value


class ModuleRecords:
    """One module's records by id, in the order they were stored; not thread-safe (the store locks).

    Indexes kept up to date by every change: the values of the unique fields (which record holds
    each), the records by value of each field queried so far (built on its first query), and the
    records sorted by creation time for ``queryDates.php``.

    :param unique_fields: the module's fields whose values must not repeat.
    """

    def __init__(self, unique_fields: Sequence[str]) -> None:
        self.by_id: dict[str, Record] = {}
        # Each record's insertion number: the order of records created in the same second.
        self._sequence: dict[str, int] = {}
        self._counter = itertools.count()
        # (creation time, insertion number, id), sorted: "YYYY-MM-DD HH:MM:SS" sorts as time does.
        self._by_creation: list[tuple[str, int, str]] = []
        # Per unique field: value -> id of the record holding it.
        self._holders: dict[str, dict[Any, str]] = {name: {} for name in unique_fields}
        # Per queried field: value -> the records holding it, by id.
        self._by_value: dict[str, defaultdict[Any, dict[str, Record]]] = {}
        # The indexed fields with their two indexes (None where a field has not that one).
        self._indexed: list[_Indexes] = []
        self._list_indexed()

    def check_unique(self, records: Sequence[Record], *, numbered: bool, own_id: str | None = None) -> None:
        """Refuse values of unique fields that another record holds, or that repeat within ``records``.

        :param own_id: the record being changed, which may keep its own values.
        :raises InvalidRecord: a value is taken.
        """
        seen: dict[str, set[Any]] = {name: set() for name in self._holders}
        for index, record in enumerate(records):
            for name, holders in self._holders.items():
                if name not in record:
                    continue
                value = comparable(record[name])
                if value in seen[name] or holders.get(value, own_id) != own_id:
                    raise refusal(index, f"VALUE OF FIELD '{name}' ALREADY EXISTS", numbered)
                seen[name].add(value)

    def add(self, records: Sequence[Record]) -> None:
        """Store records that carry their metadata, after :meth:`check_unique`."""
        keys = []
        for record in records:
            record_id = record[ID_FIELD]
            sequence = next(self._counter)
            self.by_id[record_id] = record
            self._sequence[record_id] = sequence
            keys.append((record[CREATED_AT_FIELD], sequence, record_id))
            if self._indexed:  # spares a generator per record of a batch when nothing is indexed
                self._link(record, record)
        keys.sort()
        in_order = not (self._by_creation and keys) or self._by_creation[-1] <= keys[0]
        self._by_creation.extend(keys)
        if not in_order:  # records seeded with earlier creation times: merge the two sorted runs
            self._by_creation.sort()

    def update(self, record: Record, changes: Record) -> None:
        """Merge ``changes`` into a stored record, after :meth:`check_unique`; other fields stay."""
        self._unlink(record, changes)
        record.update(changes)
        self._link(record, changes)

    def remove(self, ids: Sequence[str]) -> None:
        """Forget the records of ``ids``, which must all be stored, and free their unique values."""
        for record_id in ids:
            record = self.by_id.pop(record_id)
            self._unlink(record, record)
            key = (record[CREATED_AT_FIELD], self._sequence.pop(record_id), record_id)
            del self._by_creation[bisect_left(self._by_creation, key)]

    def query(self, name: str, value: Any) -> list[Record]:
        """Return the records whose field ``name`` equals ``value``, in the order they were stored."""
        by_value = self._by_value.get(name)
        if by_value is None:
            by_value = self._by_value[name] = defaultdict(dict)
            for record in self.by_id.values():
                if name in record:
                    by_value[comparable(record[name])][record[ID_FIELD]] = record
            self._list_indexed()
        found = by_value.get(comparable(value), {})
        return sorted(found.values(), key=lambda record: self._sequence[record[ID_FIELD]])

    def created_between(
        self, start: str, end: str, limit: int, order: str = "ascending", rng: random.Random | None = None
    ) -> list[Record]:
        """Return at most ``limit`` records created from ``start`` to ``end`` (inclusive).

        :param order: one of :data:`QUERY_DATES_ORDERS`: which records and how they are listed
            (creation time, then the order of storing).
        :param rng: draws the records of ``"random"``.
        """
        first = bisect_left(self._by_creation, start, key=_created_at)
        last = max(first, bisect_right(self._by_creation, end, key=_created_at))
        if order == "ascending":
            positions: Sequence[int] = range(first, min(last, first + limit))
        elif order == "descending":
            positions = range(last - 1, max(first, last - limit) - 1, -1)
        else:
            positions = (rng or random.Random()).sample(range(first, last), min(limit, last - first))
        return [self.by_id[self._by_creation[position][2]] for position in positions]

    def _list_indexed(self) -> None:
        """List the indexed fields once, rather than on every change of a record."""
        names = self._holders.keys() | self._by_value.keys()
        self._indexed = [(name, self._holders.get(name), self._by_value.get(name)) for name in names]

    def _indexes(self, record: Record, names: Container[str]) -> Iterator[tuple[_Indexes, Any]]:
        """Yield the indexes of each indexed field of ``names`` in ``record``, with the field's key."""
        for indexes in self._indexed:
            if indexes[0] in names and indexes[0] in record:
                yield indexes, comparable(record[indexes[0]])

    def _link(self, record: Record, names: Container[str]) -> None:
        """Enter the record's values of the fields ``names`` in the indexes."""
        for (_, holders, by_value), key in self._indexes(record, names):
            if holders is not None:
                holders[key] = record[ID_FIELD]
            if by_value is not None:
                by_value[key][record[ID_FIELD]] = record

    def _unlink(self, record: Record, names: Container[str]) -> None:
        """Take the record's values of the fields ``names`` out of the indexes."""
        for (_, holders, by_value), key in self._indexes(record, names):
            if holders is not None:
                holders.pop(key, None)
            if by_value is not None:
                by_value[key].pop(record[ID_FIELD], None)
