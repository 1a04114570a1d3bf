"""Input records of the re-run tests, their files, and the check against the fake CRM's store.

Records are told apart by their ``Email``, unique per input record, so the store's content shows
every record that was created twice or never.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from airflow_provider_wolkvox.testing import FakeWolkvoxServer

MODULE = "contacts"
KEY = "Email"


def contacts(count: int, first: int = 0) -> list[dict[str, Any]]:
    """``count`` contact records, numbered from ``first``; each ``Email`` names its number."""
    return [{"Nombre": f"Contacto {n}", KEY: f"c{n}@example.com"} for n in range(first, first + count)]


def write_jsonl(path: Path, records: Iterable[Mapping[str, Any]]) -> None:
    with path.open("w", encoding="utf-8") as handle:
        handle.writelines(json.dumps(record) + "\n" for record in records)


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    with path.open(encoding="utf-8") as handle:
        return [json.loads(line) for line in handle if line.strip()]


def last_try(results: Sequence[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """The lines of a results file written by its last try (each try appends its own)."""
    latest = max((result["try"] for result in results), default=None)
    return [result for result in results if result["try"] == latest]


def ids_by_key(records: Sequence[Mapping[str, Any]], results: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    """The ``wolkvox_id`` of each result, by the ``Email`` of the input record on its ``line``
    (``records`` as written one a line by :func:`write_jsonl`)."""
    return {records[result["line"] - 1][KEY]: result["wolkvox_id"] for result in results}


class LoadFiles:
    """The files of one load of the re-run test DAGs (``dags/wolkvox_reruns.py``) in ``folder``."""

    def __init__(self, folder: Path) -> None:
        self.records_path = folder / "records.jsonl"
        self.results_path = folder / "results.jsonl"
        self.pause_marker = folder / "executed"

    def conf(self, *, pause: bool) -> dict[str, str]:
        """The DAG run conf; ``pause`` holds the first try after ``execute`` returned."""
        return {
            "records_path": str(self.records_path),
            "results_path": str(self.results_path),
            "pause_marker": str(self.pause_marker) if pause else "",
        }

    def write(self, records: Iterable[Mapping[str, Any]]) -> None:
        """Write the input file (again)."""
        write_jsonl(self.records_path, records)

    def returned_ids(self, records: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
        """The ids the last try wrote to the results file, by ``Email`` of ``records``, its input."""
        return ids_by_key(records, last_try(read_jsonl(self.results_path)))


def assert_stored_once(
    server: FakeWolkvoxServer, records: Sequence[Mapping[str, Any]], returned_ids: Mapping[str, Any]
) -> None:
    """The store holds every input record exactly once, and the ids the load returned are the stored ones.

    :param returned_ids: the id the load reported for each record, by ``Email``.
    """
    stored = server.records(MODULE)
    copies = Counter(record[KEY] for record in stored)
    expected = [record[KEY] for record in records]
    duplicates = sum(count - 1 for count in copies.values())
    missing = [key for key in expected if key not in copies]
    assert (duplicates, missing, len(stored)) == (0, [], len(expected)), (
        f"{len(stored)} records stored for {len(expected)} input records: {duplicates} duplicates, "
        f"{len(missing)} missing {missing[:3]}"
    )
    stored_ids = {record[KEY]: record["wolkvox_id"] for record in stored}
    wrong = sorted(key for key in expected if returned_ids.get(key) != stored_ids[key])
    assert not wrong, (
        f"{len(wrong)} of {len(expected)} returned ids are not the stored ones (first: {wrong[:3]})"
    )
