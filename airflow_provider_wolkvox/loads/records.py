"""Input records as a load carries them: checked, encoded once, and keyed by their content."""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from itertools import islice
from typing import Any, TypeVar

from airflow_provider_wolkvox.exceptions import WolkvoxInputError
from airflow_provider_wolkvox.fields import encode_fields, encode_json, prepare_fields, prepare_record

T = TypeVar("T")


@dataclass(slots=True)
class PreparedRecord:
    """One input record, ready to send.

    :param index: its position in the input (0-based).
    :param fields: the JSON-ready fields.
    :param body: the record's JSON exactly as a request carries it, when encoded on its own (see
        :func:`prepare_records`).
    :param key: its content key, when a journal is kept (see :class:`ContentKeys`).
    """

    index: int
    fields: dict[str, Any]
    body: bytes | None = None
    key: str | None = None


def check_module(module: Any) -> str:
    """The module name, or ``WolkvoxInputError`` when it is not a non-empty string."""
    if not isinstance(module, str) or not module.strip():
        raise WolkvoxInputError(f"module must be a non-empty string such as 'contacts', got {module!r}")
    return module.strip()


def check_records_argument(records: object) -> None:
    """Refuse what cannot be an input of records (a string, a mapping, a number...)."""
    if isinstance(records, (str, bytes, Mapping)) or not isinstance(records, Iterable):
        raise WolkvoxInputError(f"records must be an iterable of mappings, got {type(records).__name__}")


def prepare_records(records: Iterable[Mapping[str, Any]], *, encode: bool = True) -> Iterator[PreparedRecord]:
    """Check (and ``encode``) each record as it is read; a bad one raises ``WolkvoxInputError`` naming it.

    Without ``encode``, records are encoded a batch at a time by :func:`batch_body`, which costs a
    third of encoding them one by one.
    """
    for index, fields in enumerate(records):
        if encode:
            prepared, body = prepare_record(fields, record=index)
            yield PreparedRecord(index, prepared, body)
        else:
            yield PreparedRecord(index, prepare_fields(fields, record=index))


def batch_body(operation: str, module: str, records: Sequence[PreparedRecord]) -> bytes:
    """The ``insertMany.php`` body of ``records``.

    :raises WolkvoxInputError: a record that cannot be encoded, named with its field.
    """
    bodies = [record.body for record in records]
    if all(body is not None for body in bodies):
        joined = b",".join(bodies)  # type: ignore[arg-type]
    else:
        try:
            joined = encode_json([record.fields for record in records])[1:-1]
        except (TypeError, ValueError, RecursionError):
            for record in records:
                encode_fields(record.fields, record=record.index)
            raise
    return b'{"operation":%s,"module":%s,"fields":[%s]}' % (
        encode_json(operation),
        encode_json(module),
        joined,
    )


def groups(items: Iterable[T], needs_request: Callable[[T], bool], size: int, span: int) -> Iterator[list[T]]:
    """``items`` in groups holding ``size`` items that need a request (the others ride along), and
    at most ``size * span`` items in all, so that a group is one request's worth of work."""
    group: list[T] = []
    count = 0
    for item in items:
        group.append(item)
        count += needs_request(item)
        if count == size or len(group) == size * span:
            yield group
            group, count = [], 0
    if group:
        yield group


def chunks(items: Iterable[T], size: int) -> Iterator[list[T]]:
    """``items`` in lists of ``size`` (the last one shorter)."""
    source = iter(items)
    while chunk := list(islice(source, size)):
        yield chunk


class ContentKeys:
    """Names records by their content, so that a later try recognises them in any order or batching.

    The key is a digest of the module and the record's JSON with its fields sorted (a file whose
    columns moved holds the same records), with the copy number: the second identical record of an
    input is a record of its own (``<digest>:2``).
    """

    def __init__(self, module: str) -> None:
        self._scope = module.encode() + b"\0"
        self._copies: Counter[str] = Counter()

    def assign(self, record: PreparedRecord) -> PreparedRecord:
        canonical = json.dumps(record.fields, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
        digest = hashlib.blake2b(self._scope + canonical.encode(), digest_size=10).hexdigest()
        self._copies[digest] += 1
        record.key = f"{digest}:{self._copies[digest]}"
        return record
