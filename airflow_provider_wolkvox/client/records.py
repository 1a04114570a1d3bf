"""Input records as a load carries them: checked, encoded once, and keyed by their content."""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from airflow_provider_wolkvox.exceptions import WolkvoxInputError
from airflow_provider_wolkvox.fields import prepare_record


@dataclass(slots=True)
class PreparedRecord:
    """One input record, ready to send.

    :param index: its position in the input (0-based).
    :param fields: the JSON-ready fields.
    :param body: the record's JSON exactly as a request carries it.
    :param key: its content key, when a journal is kept (see :class:`ContentKeys`).
    """

    index: int
    fields: dict[str, Any]
    body: bytes
    key: str | None = None


def check_records_argument(records: object) -> None:
    """Refuse what cannot be an input of records (a string, a mapping, a number...)."""
    if isinstance(records, (str, bytes, Mapping)) or not isinstance(records, Iterable):
        raise WolkvoxInputError(f"records must be an iterable of mappings, got {type(records).__name__}")


def prepare_records(records: Iterable[Mapping[str, Any]]) -> Iterator[PreparedRecord]:
    """Check and encode each record as it is read; a bad one raises ``WolkvoxInputError`` naming it."""
    for index, fields in enumerate(records):
        prepared, body = prepare_record(fields, record=index)
        yield PreparedRecord(index, prepared, body)


class ContentKeys:
    """Names records by their content, so that a later try recognises them in any order or batching.

    The key is a digest of the module and the record's JSON, with the copy number: the second
    identical record of an input is a record of its own (``<digest>:2``).
    """

    def __init__(self, module: str) -> None:
        self._scope = module.encode() + b"\0"
        self._copies: Counter[str] = Counter()

    def assign(self, record: PreparedRecord) -> PreparedRecord:
        digest = hashlib.blake2b(self._scope + record.body, digest_size=10).hexdigest()
        self._copies[digest] += 1
        record.key = f"{digest}:{self._copies[digest]}"
        return record
