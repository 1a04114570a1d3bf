"""The sync state file: what a sync wrote, kept between runs so that the next one looks up and sends
only what changed.

JSON Lines, local or any URL ``ObjectStoragePath`` writes (``s3://…/contacts.sync-state.jsonl``).
The first line describes the state; each further line is one key, in ascending key order::

    {"format": "wolkvox-sync-state", "version": 1, "operation": "demo", "module": "contacts",
     "key_field": "Email", "written_at": "2026-12-01T22:00:00+00:00", "module_size": 50000}
    {"key": "ana@example.com", "wolkvox_id": "64cb1f0e2a9d4c0012ab34cd",
     "fields": {"Nombre": "6d0b3c2a91fe", "Ciudad": "0f93c2aa41b7"}}

``key`` is the key's canonical text (numbers as digits, text stripped); ``fields`` maps each field
to a 12-hex digest of the value last written (or null when not known). ``module_size`` is the
module's record count as the last run saw it (null when unknown), used to price a module scan.

One owner: a sync holds its state (:meth:`StateStorage.owned`) from before it reads it until after
it wrote it. A write never loses another run's entries: it reads the state as it is now and
overlays this run's entries key by key (:func:`merge_rows`). The engine reads and writes the state
through a :class:`StateStorage` it is given (the hook passes a file's,
``airflow_provider_wolkvox.state_file.StateFile``); this module only reads, merges and writes the
format.
"""

from __future__ import annotations

import datetime
import hashlib
import json
import logging
from collections.abc import Iterable, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass, replace
from typing import Any, Protocol

from airflow_provider_wolkvox.exceptions import WolkvoxInputError
from airflow_provider_wolkvox.fields import encode_json
from airflow_provider_wolkvox.loads.sync.plan import SyncPlan

log = logging.getLogger(__name__)

STATE_FORMAT = "wolkvox-sync-state"
STATE_VERSION = 1
HASH_HEX_DIGITS = 12
#: How to rebuild a state that cannot be read, as its errors say.
REBUILD = (
    "rebuild it with refresh=True (every key of the input is looked up in the CRM again and the state "
    "rewritten), or delete the file"
)

#: A key's entry: (key, wolkvox_id, hashes by field or None).
Row = tuple[str, str, Any]
#: A key's entry as a run holds it, and whether this run wrote or learned it (True) or only read it
#: from the state (False); its wolkvox_id None when this run deleted its record (a mirror sync):
#: the state forgets the key.
Entry = tuple[str, str | None, Any, bool]


class StateStorage(Protocol):
    """Where a sync state lives: ``name`` for messages, its lines to read, a whole new text to write,
    and the hold one sync keeps on it."""

    name: str

    def exists(self) -> bool: ...

    def lines(self) -> Iterator[str]: ...

    def write(self, lines: Iterable[str]) -> None:
        """Replace the state whole, so that a reader never sees half of it."""

    def owned(self) -> AbstractContextManager[None]:
        """Hold the state for one sync: another sync of it waits, a bounded time, then fails
        (``WolkvoxStateLockedError``). Reentrant: a hold inside a hold of the same storage takes
        nothing more."""


@dataclass(frozen=True)
class StateHeader:
    """What a state file is about; a state of another module, operation or key is refused."""

    operation: str
    module: str
    key_field: str
    module_size: int | None = None


class _Unreadable(Exception):
    """A state this provider wrote (or a broken copy of one) that cannot be read: rebuildable."""


def field_hashes(fields: dict[str, Any]) -> dict[str, str]:
    """The digests of a record's values, by field, as the state file keeps them."""
    return {
        name: hashlib.blake2b(encode_json(value), digest_size=HASH_HEX_DIGITS // 2).hexdigest()
        for name, value in fields.items()
    }


def read_state(
    storage: StateStorage, expected: StateHeader, *, refresh: bool = False
) -> tuple[StateHeader | None, Iterator[Row]]:
    """The header and the rows (key, wolkvox_id, hashes) of the state; (None, nothing) if absent.

    :param refresh: the sync looks every key up again: a state that cannot be read (cut short,
        a broken line, another format version) is ignored, with a warning, and rewritten at the end.
    :raises WolkvoxInputError: a file that is not a sync state, or the state of another module,
        operation or key, whatever ``refresh`` says (it is not this sync's to rewrite); without
        ``refresh``, a state that cannot be read, with how to rebuild it.
    """
    if not storage.exists():
        return None, iter(())
    path = storage.name
    lines = storage.lines()
    try:
        found = _header(path, lines, expected)
    except _Unreadable as error:
        if not refresh:
            raise WolkvoxInputError(f"state_path {path!r} cannot be read: {error}; {REBUILD}") from None
        log.warning(
            "state_path %r cannot be read (%s): ignored, and rewritten at the end (refresh=True)", path, error
        )
        return None, iter(())
    return found, _rows(path, lines, lenient=refresh)


def write_state(storage: StateStorage, header: StateHeader, rows: Iterable[Row | Entry]) -> None:
    """Write this run's entries over the state as it is now, holding the state meanwhile.

    The state is read again first (another run may have written it since this one read it): each
    key this run wrote or learned takes this run's entry; a key this run only read keeps the entry
    the state holds now; keys this run never saw are kept. A state that cannot be read any more is
    replaced, with a warning.

    :param rows: this run's entries in ascending key order (as :class:`SyncIndex` gives them); a row
        of three, (key, wolkvox_id, hashes), counts as written by this run.
    :raises WolkvoxInputError: the path now holds a file that is not this sync's state (left alone).
    :raises ValueError: ``rows`` not in ascending key order while there is a state to merge with.
    """
    entries: Iterator[Entry] = (row if len(row) == 4 else (*row, True) for row in rows)
    with storage.owned():
        current = _current(storage, header)
        if current is None:
            storage.write(_state_lines(header, ((k, i, h) for k, i, h, _ in entries if i is not None)))
            return
        found, ordered = current
        if header.module_size is None and found.module_size is not None:
            header = replace(header, module_size=found.module_size)  # the newest known
        now_rows = _rows(storage.name, _after_header(storage), lenient=False)
        if not ordered:  # not written by this provider: sorted here, in memory
            now_rows = iter(sorted({row[0]: row for row in now_rows}.values()))
        storage.write(_state_lines(header, merge_rows(now_rows, entries)))


def missing_state_warning(name: str, plan: SyncPlan) -> str:
    """What a sync that finds no state at ``name`` says it is about to pay, by its ``plan``."""
    cost = (  # with no state, the module's size is not known
        "a scan of the module, about one call per 1,000 of its records"
        if plan.lookup == "scan"
        else f"about {plan.lookup_calls:,} calls"
    )
    keys = plan.to_look_up
    text = (
        f"no sync state at state_path {name!r}: every key of the input is learned from the CRM, "
        f"{keys:,} keys to look up, {cost} (a first run pays this once; the next finds the state)"
    )
    if "://" not in name:
        text += (
            ". A local state_path exists only on the worker that wrote it: use an object-storage URL "
            "(s3://..., gs://...) when tasks may run on several workers"
        )
    return text


def write_failure(name: str, error: BaseException, counts: dict[str, int], relearn_calls: int) -> str:
    """What a sync whose CRM writes are done, but whose state could not be written, says."""
    done = ", ".join(f"{count} {status}" for status, count in counts.items() if count) or "no records"
    return (
        f"the sync's writes to the CRM succeeded ({done}), but its state could not be written "
        f"to state_path {name!r} ({type(error).__name__}: {error}). The CRM is right and the state is "
        f"behind it: the next run (or a retry of this task, which is safe) learns again what this run "
        f"learned, at a cost of about {relearn_calls} calls, and writes the state once it can"
    )


def merge_rows(current: Iterable[Row], ours: Iterable[Entry]) -> Iterator[Row]:
    """The state's entries with this run's overlaid, key by key, in ascending key order.

    A key this run wrote or learned (its entry's flag True) takes this run's entry, or is dropped
    when this run deleted its record (its wolkvox_id None); a key this run only read from the state
    takes ``current``'s (it may have been written since); a key of one side only is kept as it is.
    Both inputs must be in strictly ascending key order.

    :raises ValueError: an input out of key order.
    """
    theirs_iter, ours_iter = (
        _ascending(current, "the state's keys are"),
        _ascending(ours, "this run's keys are"),
    )
    theirs, mine = next(theirs_iter, None), next(ours_iter, None)
    while theirs is not None or mine is not None:
        if mine is None or (theirs is not None and theirs[0] < mine[0]):
            assert theirs is not None
            yield theirs
            theirs = next(theirs_iter, None)
        elif theirs is None or mine[0] < theirs[0]:
            if mine[1] is not None:
                yield mine[:3]
            mine = next(ours_iter, None)
        else:  # the same key on both sides
            if not mine[3]:
                yield theirs
            elif mine[1] is not None:
                yield mine[:3]
            theirs, mine = next(theirs_iter, None), next(ours_iter, None)


def _ascending(rows: Iterable[Any], name: str) -> Iterator[Any]:
    last: str | None = None
    for row in rows:
        if last is not None and row[0] <= last:
            raise ValueError(f"{name} not in ascending key order: {row[0]!r} after {last!r}")
        last = row[0]
        yield row


def _header(path: str, lines: Iterator[str], expected: StateHeader) -> StateHeader:
    """The state's header, checked against ``expected``.

    :raises _Unreadable: a state of this provider that cannot be read.
    :raises WolkvoxInputError: not a sync state, or another sync's.
    """
    first = next(lines, None)
    if first is None:
        raise _Unreadable("the file is empty")
    try:
        header = json.loads(first)
    except ValueError:
        header = None
    if not isinstance(header, dict) or header.get("format") != STATE_FORMAT:
        if STATE_FORMAT in first:
            raise _Unreadable("its first line is cut short or broken")
        raise WolkvoxInputError(
            f"state_path {path!r} is not a wolkvox sync state (its first line is not a state's header): "
            "it is left alone; give another state_path, or delete the file if it is a broken state"
        )
    if header.get("version") != STATE_VERSION:
        raise _Unreadable(
            f"its format version is {header.get('version')!r}; this provider reads version {STATE_VERSION}"
        )
    try:
        found = StateHeader(
            str(header["operation"]),
            str(header["module"]),
            str(header["key_field"]),
            header.get("module_size"),
        )
    except KeyError as missing:
        raise _Unreadable(f"its first line has no {missing}") from None
    if replace(found, module_size=None) != replace(expected, module_size=None):
        raise WolkvoxInputError(
            f"state_path {path!r} holds the state of operation {found.operation!r}, module "
            f"{found.module!r}, key {found.key_field!r}, not of {expected.operation!r}, "
            f"{expected.module!r}, {expected.key_field!r}: each sync needs a state_path of its own"
        )
    return found


def _current(storage: StateStorage, header: StateHeader) -> tuple[StateHeader, bool] | None:
    """The state as it is now, read whole: its header and whether its keys are in ascending order;
    None when there is none, or none that can be read (replaced, with a warning).

    :raises WolkvoxInputError: the path holds a file that is not this sync's state.
    """
    if not storage.exists():
        return None
    lines = storage.lines()
    try:
        found = _header(storage.name, lines, header)
        last: str | None = None
        ordered = True
        for number, row in _parsed(lines):
            if row is None:
                raise _Unreadable(_broken(number))
            ordered = ordered and (last is None or row[0] > last)
            last = row[0]
    except _Unreadable as error:
        log.warning(
            "state_path %r cannot be read now (%s): replaced by this run's state", storage.name, error
        )
        return None
    return found, ordered


def _after_header(storage: StateStorage) -> Iterator[str]:
    lines = storage.lines()
    next(lines, None)
    return lines


def _state_lines(header: StateHeader, rows: Iterable[Row]) -> Iterator[str]:
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


def _rows(path: str, lines: Iterator[str], *, lenient: bool) -> Iterator[Row]:
    """The rows after the header; a line that is not a row is refused, or skipped when ``lenient``."""
    skipped = 0
    for number, row in _parsed(lines):
        if row is not None:
            yield row
        elif lenient:
            skipped += 1
        else:
            raise WolkvoxInputError(f"state_path {path!r} cannot be read: {_broken(number)}; {REBUILD}")
    if skipped:
        log.warning(
            "state_path %r: %d lines that are not state rows ignored; the state is rewritten (refresh=True)",
            path,
            skipped,
        )


def _parsed(lines: Iterator[str]) -> Iterator[tuple[int, Row | None]]:
    """(line number, row) of each line after the header; the row None for a line that is not one."""
    for number, line in enumerate(lines, start=2):
        if not line.strip():
            continue
        parsed: Row | None
        try:
            row = json.loads(line)
            hashes = row.get("fields")
            if not (hashes is None or isinstance(hashes, dict)):
                raise TypeError("fields")
            parsed = str(row["key"]), str(row["wolkvox_id"]), hashes
        except (ValueError, KeyError, TypeError, AttributeError):
            parsed = None
        yield number, parsed


def _broken(number: int) -> str:
    return f"line {number} is not a state row (the file is cut short or broken)"
