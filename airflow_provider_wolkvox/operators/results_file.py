"""The results lines of the record-loading operators, and the results file they go to.

A results line is a record's outcome (:meth:`RecordResult.as_dict`, less its ``index``) behind three
fields that join it to its source and its try:

- the record's position, named after the input form: ``line`` (the line of ``records_path`` the
  record starts on), ``row`` (a SQL query's row, 1-based), ``index`` (0-based, in ``records``);
- ``key``, when the record has one: its ``key_field`` value for a sync, its ``dedupe_field`` value
  for a load (as a sync names keys: ``" 5.0 "`` is ``"5"``); absent when empty;
- ``try``: the task's try number (``ti.try_number``).

The file keeps every try: each run appends its lines. Only two things of an earlier run are dropped
first: a last line cut short (a killed task's unflushed buffer), and the lines at the end of the
file written by this same try (a run before a wait for the quota: the run after it writes every
record again). A local file (or ``file://`` URL) is appended to in place; any other
``ObjectStoragePath`` URL is read and written anew (object stores cannot append), which publishes
nothing until the run's lines are written, so an earlier try's lines are never lost.
"""

from __future__ import annotations

import bisect
import json
import os
import re
import shutil
import stat
import tempfile
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import IO, Any

from airflow_provider_wolkvox.exceptions import WolkvoxInputError
from airflow_provider_wolkvox.loads import RecordResult, key_text

#: A results line's try, as ``json.dumps`` writes it (never inside a JSON string, whose quotes are escaped).
_TRY = re.compile(rb'"try": (\d+)')
_COPY_CHUNK = 1024 * 1024


class ResultLines:
    """The results lines of one run of a load: each result with its record's position, key and try.

    Records read from a file (or a SQL spool) pass through :meth:`track`, which notes where each one
    starts; in-memory records are held (:meth:`hold`) for their keys, their index being their position.

    :param position: the name of a record's position: ``"line"``, ``"row"`` or ``"index"``.
    :param try_number: the task's try.
    :param key_field: the field whose value is a record's key, when results do not carry one (a load's
        ``dedupe_field``; a sync's results carry their key).
    """

    def __init__(self, position: str, try_number: int, key_field: str | None = None) -> None:
        self.position = position
        self.try_number = try_number
        self.key_field = key_field
        # Where a record's position stops being its index plus the offset before: a file of one
        # record per line needs one entry, whatever its size. A sync reads its input twice: the
        # second pass finds the same entries, and adds none.
        self._starts: list[int] = []
        self._offsets: list[int] = []
        # The keys of records read and not yet reported (a load reads its input once, in order).
        self._keys: deque[tuple[int, str | None]] = deque()
        self._held: Sequence[Mapping[str, Any]] | None = None

    def hold(self, records: Sequence[Mapping[str, Any]]) -> Sequence[Mapping[str, Any]]:
        """Keep in-memory ``records`` to find their keys; return them."""
        self._held = records
        return records

    def track(self, pairs: Iterable[tuple[int, Mapping[str, Any]]]) -> Iterator[tuple[int, Any]]:
        """Yield ``(position, record)`` pairs as they come, noting each record's position and key."""
        for index, (position, record) in enumerate(pairs):
            offset = position - index
            if not self._starts or (index > self._starts[-1] and offset != self._offsets[-1]):
                self._offsets.append(offset)  # before the start: a reader in another thread sees both
                self._starts.append(index)
            if self.key_field is not None:
                self._keys.append((index, key_text(record.get(self.key_field))))
            yield position, record

    def line(self, result: RecordResult) -> dict[str, Any]:
        """The results line of ``result``; call it once per result, in input order."""
        outcome = result.as_dict()
        index = outcome.pop("index")
        key = outcome.pop("key", None)
        if key is None:
            key = self._key_of(index)
        head: dict[str, Any] = {self.position: self._position_of(index)}
        if key is not None:
            head["key"] = key
        head["try"] = self.try_number
        return {**head, **outcome}

    def _position_of(self, index: int) -> int | None:
        if index < 0:  # a mirror sync's delete: no input record's
            return None
        if self.position == "index":
            return index
        at = bisect.bisect_right(self._starts, index) - 1
        return None if at < 0 else index + self._offsets[at]

    def _key_of(self, index: int) -> str | None:
        if self.key_field is None:
            return None
        if self._held is not None:
            return key_text(self._held[index].get(self.key_field))
        keys = self._keys
        while keys and keys[0][0] < index:
            keys.popleft()
        return keys.popleft()[1] if keys and keys[0][0] == index else None


def named(line: Mapping[str, Any]) -> str:
    """How an error names the record of a results line: ``line 7``, ``row 7`` or ``record 6`` (or,
    for a mirror's delete, which is no input record's, its key)."""
    if any(line.get(position, 0) is None for position in ("line", "row", "index")):
        return f"tracked key {line.get('key')!r}"
    for position in ("line", "row"):
        if position in line:
            return f"{position} {line[position]}"
    return f"record {line.get('index')}"


@contextmanager
def results_file(path: str | None, try_number: int) -> Iterator[Callable[[Mapping[str, Any]], object]]:
    """A function writing a results line to ``path``, after the lines of earlier tries; a no-op
    without a path.

    :raises WolkvoxInputError: naming the path, when it cannot be opened.
    """
    if path is None:
        yield lambda line: None
        return
    try:
        local = _local_path(path)
        handle = _append_local(local, try_number) if local is not None else _rewrite_object(path, try_number)
    except (OSError, ValueError, LookupError, NotImplementedError) as exc:
        raise WolkvoxInputError(f"cannot open {path!r}: {exc}") from None
    with handle:
        yield lambda line: handle.write(json.dumps(line).encode() + b"\n")


def _local_path(path: str) -> str | None:
    """The local path of ``path`` (a path, or a ``file://`` URL); None for another store's URL."""
    if "://" not in path:
        return path
    from airflow.providers.common.compat.sdk import ObjectStoragePath
    from fsspec.implementations.local import LocalFileSystem

    target = ObjectStoragePath(path)
    return target.path if isinstance(target.fs, LocalFileSystem) else None


def _append_local(path: str, try_number: int) -> IO[bytes]:
    try:
        regular = stat.S_ISREG(os.stat(path).st_mode)
    except FileNotFoundError:
        regular = False
    if regular:  # never read a device or a FIFO (a results_path of /dev/full fails on writing)
        with open(path, "r+b") as handle:
            keep, size = _kept_length(handle, try_number)
            if keep < size:
                handle.truncate(keep)
    return open(path, "ab")


def _rewrite_object(url: str, try_number: int) -> IO[bytes]:
    """The object at ``url`` opened for writing, with the lines of the earlier tries written back."""
    from airflow.providers.common.compat.sdk import ObjectStoragePath

    target = ObjectStoragePath(url)
    with tempfile.TemporaryFile() as earlier:
        try:
            with target.open("rb") as old:
                shutil.copyfileobj(old, earlier, _COPY_CHUNK)
        except FileNotFoundError:
            pass
        earlier.seek(0)
        keep, _ = _kept_length(earlier, try_number)
        earlier.seek(0)
        handle = target.open("wb")
        try:
            while keep > 0:
                chunk = earlier.read(min(keep, _COPY_CHUNK))
                handle.write(chunk)
                keep -= len(chunk)
        except BaseException:
            handle.close()
            raise
    return handle


def _kept_length(handle: IO[bytes], try_number: int) -> tuple[int, int]:
    """(bytes to keep, size) of a results file: all but a last line cut short and the lines of try
    ``try_number`` at its end."""
    keep = size = 0
    for raw in handle:
        size += len(raw)
        if raw.endswith(b"\n") and _try_of(raw) != try_number:
            keep = size
    return keep, size


def _try_of(raw: bytes) -> int | None:
    found = _TRY.search(raw)
    return int(found.group(1)) if found else None
