"""Batching, grouping and content keys (``loads/records.py``), one table per function, no HTTP."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import pytest

from airflow_provider_wolkvox.loads.records import ContentKeys, PreparedRecord, chunks, groups


def even(n: int) -> bool:
    return n % 2 == 0


def always(n: int) -> bool:
    return True


def never(n: int) -> bool:
    return False


GROUPS = [
    pytest.param([], always, 3, 2, [], id="no-items"),
    # Every item needs a request: groups of ``size``, the last one shorter, none empty.
    pytest.param(range(7), always, 3, 2, [[0, 1, 2], [3, 4, 5], [6]], id="all-need-a-request"),
    pytest.param(range(6), always, 3, 2, [[0, 1, 2], [3, 4, 5]], id="exact-multiple-no-empty-group"),
    pytest.param(range(3), always, 1, 4, [[0], [1], [2]], id="size-one"),
    # None needs a request: they all ride along, ``size * span`` at most in a group.
    pytest.param(range(7), never, 2, 3, [[0, 1, 2, 3, 4, 5], [6]], id="none-need-a-request"),
    pytest.param(range(5), never, 2, 1, [[0, 1], [2, 3], [4]], id="span-one-caps-at-size"),
    # Mixed: a group closes at its ``size``-th item that needs a request, riders in between.
    pytest.param(range(10), even, 2, 3, [[0, 1, 2], [3, 4, 5, 6], [7, 8, 9]], id="riders-ride-along"),
    pytest.param(
        [1, 3, 5, 7, 9, 11, 2, 4], even, 2, 3, [[1, 3, 5, 7, 9, 11], [2, 4]], id="riders-capped-by-span"
    ),
    pytest.param([1, 2, 3, 5, 7, 4], even, 2, 10, [[1, 2, 3, 5, 7, 4]], id="riders-up-to-the-span"),
]


@pytest.mark.parametrize(("items", "needs_request", "size", "span", "expected"), GROUPS)
def test_groups(
    items: Any, needs_request: Callable[[int], bool], size: int, span: int, expected: list[list[int]]
) -> None:
    assert list(groups(iter(items), needs_request, size, span)) == expected


CHUNKS = [
    pytest.param([], 3, [], id="no-items"),
    pytest.param(range(7), 3, [[0, 1, 2], [3, 4, 5], [6]], id="last-shorter"),
    pytest.param(range(6), 3, [[0, 1, 2], [3, 4, 5]], id="exact-multiple-no-empty-chunk"),
    pytest.param(range(3), 1, [[0], [1], [2]], id="size-one"),
    pytest.param(range(2), 5, [[0, 1]], id="fewer-than-size"),
]


@pytest.mark.parametrize(("items", "size", "expected"), CHUNKS)
def test_chunks(items: Any, size: int, expected: list[list[int]]) -> None:
    # An iterator, read once: chunks must not need to go back.
    assert list(chunks(iter(items), size)) == expected


def content_key(module: str, fields: dict[str, Any], keys: ContentKeys | None = None) -> str:
    record = PreparedRecord(0, fields)
    assigned = (keys or ContentKeys(module)).assign(record)
    assert assigned is record
    assert record.key is not None
    return record.key


ANA = {"Nombre": "Ana", "Email": "ana@example.com", "Edad": 30}

# Records whose key is the key of ANA in "contacts": the same content, whatever the order of fields.
SAME_KEY = [
    pytest.param("contacts", dict(ANA), id="equal-record"),
    pytest.param(
        "contacts", {"Edad": 30, "Email": "ana@example.com", "Nombre": "Ana"}, id="fields-reordered"
    ),
    pytest.param("contacts", {"Email": "ana@example.com", "Edad": 30, "Nombre": "Ana"}, id="columns-moved"),
]


@pytest.mark.parametrize(("module", "fields"), SAME_KEY)
def test_content_keys_equal_records_have_equal_keys(module: str, fields: dict[str, Any]) -> None:
    assert content_key(module, fields) == content_key("contacts", ANA)


# Records whose key differs from ANA's in "contacts": another value, field, type or module.
OTHER_KEY = [
    pytest.param("contacts", {**ANA, "Nombre": "Eva"}, id="other-value"),
    pytest.param("contacts", {**ANA, "Edad": "30"}, id="number-as-text-is-other-content"),
    pytest.param("contacts", {**ANA, "Notas": None}, id="one-more-field"),
    pytest.param("contacts", {"Nombre": "Ana", "Email": "ana@example.com"}, id="one-field-less"),
    pytest.param("contacts", {"nombre": "Ana", "Email": "ana@example.com", "Edad": 30}, id="field-name-case"),
    pytest.param("leads", dict(ANA), id="other-module"),
]


@pytest.mark.parametrize(("module", "fields"), OTHER_KEY)
def test_content_keys_other_records_have_other_keys(module: str, fields: dict[str, Any]) -> None:
    assert content_key(module, fields).split(":")[0] != content_key("contacts", ANA).split(":")[0]


def test_content_keys_nested_objects_are_sorted_too() -> None:
    nested = {"Direccion": {"type": "address", "value": "Calle 1"}}
    moved = {"Direccion": {"value": "Calle 1", "type": "address"}}
    assert content_key("contacts", nested) == content_key("contacts", moved)


def test_a_content_key_is_stable_across_versions() -> None:
    # A journal written by an earlier try (or release) must be read by the next: the digest is
    # BLAKE2b-80 of the module, a NUL and the record's sorted compact JSON in UTF-8, then the copy.
    assert content_key("contacts", {"Nombre": "Añá", "Edad": 30}) == "00eb4f97dce80de40628:1"


COPIES = [
    pytest.param([ANA], [1], id="one"),
    pytest.param([ANA, ANA, ANA], [1, 2, 3], id="identical-records-are-copies"),
    pytest.param(
        [ANA, {**ANA, "Nombre": "Eva"}, {"Edad": 30, "Email": "ana@example.com", "Nombre": "Ana"}],
        [1, 1, 2],
        id="counted-per-content-in-any-field-order",
    ),
]


@pytest.mark.parametrize(("inputs", "copies"), COPIES)
def test_content_keys_count_the_copies_of_one_input(inputs: list[dict[str, Any]], copies: list[int]) -> None:
    keys = ContentKeys("contacts")
    assigned = [content_key("contacts", fields, keys) for fields in inputs]
    assert [int(key.split(":")[1]) for key in assigned] == copies
    digest, _, _ = assigned[0].partition(":")
    assert re.fullmatch("[0-9a-f]{20}", digest)  # 10 bytes, in hex
    # A new input (a later try) counts from 1 again: its records get the same keys.
    again = ContentKeys("contacts")
    assert [content_key("contacts", fields, again) for fields in inputs] == assigned
