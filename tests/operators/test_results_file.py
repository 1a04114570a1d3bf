"""Results lines joinable to their source (position, key, try) and a results file that keeps every try.

Both operators against the fake CRM on loopback; the fake's store is the truth.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from airflow.providers.common.compat.sdk import AirflowFailException

from airflow_provider_wolkvox.loads import RecordResult, RecordStatus
from airflow_provider_wolkvox.operators.insert import WolkvoxInsertManyOperator
from airflow_provider_wolkvox.operators.results_file import ResultLines
from airflow_provider_wolkvox.operators.upsert import WolkvoxUpsertOperator
from airflow_provider_wolkvox.testing import CONN_ENV_VAR, FakeWolkvoxServer
from tests.conftest import OPERATION, TOKEN, DictStateStore, RecordingTaskInstance
from tests.sql_db import sqlite_connection, sqlite_db


@pytest.fixture
def server(monkeypatch: pytest.MonkeyPatch, fast_retries: object) -> Iterator[FakeWolkvoxServer]:
    with FakeWolkvoxServer({TOKEN: OPERATION}, unique_fields={"contacts": ["Email"]}) as fake:
        monkeypatch.setenv(CONN_ENV_VAR, fake.airflow_connection())
        yield fake


def contacts(count: int) -> list[dict[str, Any]]:
    return [{"Nombre": f"C{n}", "Email": f"c{n}@example.com"} for n in range(count)]


def execute(
    operator: Any, *, try_number: int = 1, store: DictStateStore | None = None
) -> tuple[Any, RecordingTaskInstance]:
    """Run ``operator`` as try ``try_number`` of its task, with ``store`` as its task state store."""
    ti = RecordingTaskInstance()
    ti.try_number = try_number
    context: dict[str, Any] = {"ti": ti}
    if store is not None:
        context["task_state_store"] = store
    try:
        return operator.execute(context), ti
    except AirflowFailException as error:
        error.ti = ti  # type: ignore[attr-defined]
        raise


def load(**kwargs: Any) -> WolkvoxInsertManyOperator:
    # One request at a time, so that the first of two equal e-mails is the one stored.
    return WolkvoxInsertManyOperator(
        task_id="load", module="contacts", batch_size=10, max_in_flight=1, **kwargs
    )


def sync(**kwargs: Any) -> WolkvoxUpsertOperator:
    return WolkvoxUpsertOperator(task_id="sync", module="contacts", key_field="Email", **kwargs)


def read_lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def ids_by_email(server: FakeWolkvoxServer) -> dict[str, str]:
    return {record["Email"]: record["wolkvox_id"] for record in server.records("contacts")}


def test_file_lines_carry_the_line_each_record_starts_on_its_key_and_the_try(
    server: FakeWolkvoxServer, tmp_path: Path
) -> None:
    # A CSV whose second record spans three lines (a quoted cell with line breaks) and whose last
    # repeats the first e-mail: lines are not record numbers plus one.
    source = tmp_path / "contacts.csv"
    with source.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["Nombre", "Email", "Notas"])
        writer.writerow(["Ana", "ana@example.com", "-"])
        writer.writerow(["Luis", "luis@example.com", "first\nsecond\nthird"])
        writer.writerow(["Eva", " eva@example.com ", "-"])
        writer.writerow(["Ana again", "ana@example.com", "-"])
    results = tmp_path / "results.jsonl"

    summary, ti = execute(
        load(records_path=str(source), results_path=str(results), dedupe_field="Email", max_failed_records=1)
    )

    assert (summary["created"], summary["rejected"]) == (3, 1)
    ids = ids_by_email(server)
    lines = read_lines(results)
    assert [(line["line"], line["key"], line["try"], line["status"]) for line in lines] == [
        (2, "ana@example.com", 1, "created"),
        (3, "luis@example.com", 1, "created"),
        (6, "eva@example.com", 1, "created"),  # the key as a sync names it: surrounding blanks dropped
        (7, "ana@example.com", 1, "rejected"),
    ]
    assert [line["wolkvox_id"] for line in lines[:3]] == [
        ids[e] for e in ("ana@example.com", "luis@example.com")
    ] + [ids[" eva@example.com "]]
    assert all("index" not in line for line in lines)
    assert ti.pushed["failed_records"] == [lines[3]]  # the XCom lists the same lines
    assert list(lines[3]) == ["line", "key", "try", "status", "wolkvox_id", "error", "msg"]


def test_list_lines_carry_the_index_and_the_dedupe_key(server: FakeWolkvoxServer, tmp_path: Path) -> None:
    records = [*contacts(3), {"Nombre": "again", "Email": "c1@example.com"}, {"Nombre": "no e-mail"}]
    results = tmp_path / "results.jsonl"

    ids, ti = execute(
        load(records=records, results_path=str(results), dedupe_field="Email", max_failed_records=1)
    )

    lines = read_lines(results)
    assert [(line["index"], line.get("key"), line["try"], line["status"]) for line in lines] == [
        (0, "c0@example.com", 1, "created"),
        (1, "c1@example.com", 1, "created"),
        (2, "c2@example.com", 1, "created"),
        (3, "c1@example.com", 1, "rejected"),
        (4, None, 1, "created"),  # no value of the dedupe field: no key
    ]
    assert "key" not in lines[4]
    assert [line["wolkvox_id"] for line in lines] == ids
    assert ti.pushed["failed_records"] == [lines[3]]


def test_without_a_dedupe_field_a_load_line_has_no_key(server: FakeWolkvoxServer, tmp_path: Path) -> None:
    results = tmp_path / "results.jsonl"
    execute(load(records=contacts(2), results_path=str(results)))

    assert [list(line) for line in read_lines(results)] == [["index", "try", "status", "wolkvox_id"]] * 2


def test_sync_lines_carry_the_line_or_index_and_the_key_field_key(
    server: FakeWolkvoxServer, tmp_path: Path
) -> None:
    source = tmp_path / "contacts.jsonl"
    # A blank line between the records: the second record starts on line 3.
    source.write_text(
        json.dumps(contacts(1)[0]) + "\n\n" + json.dumps(contacts(2)[1]) + "\n", encoding="utf-8"
    )
    from_file, from_list = tmp_path / "file.results.jsonl", tmp_path / "list.results.jsonl"

    execute(sync(records_path=str(source), results_path=str(from_file)), try_number=3)
    execute(sync(records=contacts(3), results_path=str(from_list)))

    assert [(line["line"], line["key"], line["try"], line["status"]) for line in read_lines(from_file)] == [
        (1, "c0@example.com", 3, "created"),
        (3, "c1@example.com", 3, "created"),
    ]
    assert [(line["index"], line["key"], line["try"], line["status"]) for line in read_lines(from_list)] == [
        (0, "c0@example.com", 1, "unchanged"),
        (1, "c1@example.com", 1, "unchanged"),
        (2, "c2@example.com", 1, "created"),
    ]


def test_a_failing_sync_names_the_line_and_lists_the_same_lines_in_the_xcom(
    monkeypatch: pytest.MonkeyPatch, fast_retries: object, tmp_path: Path
) -> None:
    source = tmp_path / "contacts.jsonl"
    source.write_text("".join(json.dumps(r) + "\n" for r in [*contacts(2), {"Email": "twice@example.com"}]))
    results = tmp_path / "results.jsonl"

    with FakeWolkvoxServer({TOKEN: OPERATION}) as server:  # no unique field: a key held twice
        server.add_records("contacts", [{"Email": "twice@example.com"}, {"Email": "twice@example.com"}])
        monkeypatch.setenv(CONN_ENV_VAR, server.airflow_connection())
        with pytest.raises(AirflowFailException, match="line 3: ambiguous") as raised:
            execute(sync(records_path=str(source), results_path=str(results)))

    [ambiguous] = [line for line in read_lines(results) if line["status"] == "ambiguous"]
    assert (ambiguous["line"], ambiguous["key"], ambiguous["try"]) == (3, "twice@example.com", 1)
    assert raised.value.ti.pushed["failed_records"] == [ambiguous]  # type: ignore[attr-defined]


def test_a_later_try_appends_so_the_rejections_of_the_earlier_one_stay(
    server: FakeWolkvoxServer, tmp_path: Path
) -> None:
    # Try 1 rejects line 3 (an e-mail already used on line 1); the file is fixed, the task cleared.
    source = tmp_path / "contacts.jsonl"
    records = [*contacts(2), {"Nombre": "C2", "Email": "c0@example.com"}]
    source.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    results, store = tmp_path / "results.jsonl", DictStateStore()
    with pytest.raises(AirflowFailException, match="line 3: rejected"):
        execute(load(records_path=str(source), results_path=str(results), dedupe_field="Email"), store=store)
    first = read_lines(results)
    calls = server.calls()

    records[2]["Email"] = "c2@example.com"
    source.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    summary, ti = execute(
        load(records_path=str(source), results_path=str(results), dedupe_field="Email"),
        try_number=2,
        store=store,
    )

    assert summary["created"] == 3
    assert server.calls() == calls + 1  # only the fixed record was sent: the journal knew the others
    lines = read_lines(results)
    assert lines[:3] == first
    assert [(line["line"], line["key"], line["try"], line["status"]) for line in lines] == [
        (1, "c0@example.com", 1, "created"),
        (2, "c1@example.com", 1, "created"),
        (3, "c0@example.com", 1, "rejected"),
        (1, "c0@example.com", 2, "created"),
        (2, "c1@example.com", 2, "created"),
        (3, "c2@example.com", 2, "created"),
    ]
    assert lines[3]["wolkvox_id"] == lines[0]["wolkvox_id"]
    assert ti.pushed["failed_records"] == []


def test_a_run_of_the_same_try_replaces_its_own_lines_and_keeps_the_earlier_tries(
    server: FakeWolkvoxServer, tmp_path: Path
) -> None:
    # As after a wait for the quota: the run after the wait writes every record again, in the same try.
    results, store = tmp_path / "results.jsonl", DictStateStore()
    for try_number in (1, 2, 2):
        execute(load(records=contacts(3), results_path=str(results)), try_number=try_number, store=store)

    assert [(line["index"], line["try"]) for line in read_lines(results)] == [
        (0, 1),
        (1, 1),
        (2, 1),
        (0, 2),
        (1, 2),
        (2, 2),
    ]
    assert len(server.records("contacts")) == 3


def test_a_line_cut_short_by_a_killed_try_is_dropped(server: FakeWolkvoxServer, tmp_path: Path) -> None:
    results = tmp_path / "results.jsonl"
    earlier = json.dumps({"index": 0, "try": 1, "status": "created", "wolkvox_id": "a" * 24})
    results.write_text(earlier + '\n{"index": 1, "try": 1, "sta', encoding="utf-8")  # the buffer cut mid-line

    execute(load(records=contacts(2), results_path=str(results)), try_number=2)

    lines = read_lines(results)  # every line parses
    assert lines[0] == json.loads(earlier)
    assert [(line["index"], line["try"]) for line in lines[1:]] == [(0, 2), (1, 2)]


def test_a_file_url_is_appended_to_and_an_object_store_url_rewritten_with_the_earlier_tries(
    server: FakeWolkvoxServer, tmp_path: Path
) -> None:
    try:
        from airflow.sdk.io.store import attach
    except ImportError:  # Airflow 2
        from airflow.io.store import attach  # type: ignore[no-redef]
    from airflow.providers.common.compat.sdk import ObjectStoragePath
    from fsspec.implementations.memory import MemoryFileSystem

    attach("memory", fs=MemoryFileSystem())
    remote = "memory://wolkvox-test-results/results.jsonl"
    local = f"file://{tmp_path}/results.jsonl"
    for url in (remote, local):
        store, records = (
            DictStateStore(),
            [{"Email": f"{n}@{url.split(':')[0]}.example.com"} for n in range(2)],
        )
        for try_number in (1, 2):
            execute(load(records=records, results_path=url), try_number=try_number, store=store)
        lines = [json.loads(line) for line in ObjectStoragePath(url).read_text().splitlines()]
        assert [(line["index"], line["try"]) for line in lines] == [(0, 1), (1, 1), (0, 2), (1, 2)], url
        ObjectStoragePath(url).unlink()


@pytest.mark.parametrize(
    ("pairs", "expected"),
    [
        ([(1, {}), (2, {}), (3, {})], [1, 2, 3]),  # JSON Lines, or a SQL spool: row = line
        ([(2, {}), (5, {}), (6, {}), (9, {})], [2, 5, 6, 9]),  # cells over several lines
    ],
    ids=["one-a-line", "irregular"],
)
def test_positions_are_found_for_every_pass_of_a_sync(
    pairs: list[tuple[int, Any]], expected: list[int]
) -> None:
    lines = ResultLines("line", 1)
    for _ in range(2):  # a sync reads its input twice: the second pass adds nothing
        assert list(lines.track(pairs)) == pairs
    results = [RecordResult(index, RecordStatus.CREATED, "x") for index in range(len(pairs))]
    assert [lines.line(result)["line"] for result in results] == expected
    assert len(lines._starts) <= len(pairs)


def test_sql_lines_carry_the_row_number_for_loads_and_syncs(
    server: FakeWolkvoxServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    database = sqlite_db(
        tmp_path / "crm.sqlite",
        "CREATE TABLE contacts (id INTEGER PRIMARY KEY, email TEXT, name TEXT)",
        [(1, "a@example.com", "A"), (2, "b@example.com", "B"), (3, "a@example.com", "A again")],
        "INSERT INTO contacts (id, email, name) VALUES (?, ?, ?)",
    )
    query = 'SELECT email AS "Email", name AS "Nombre" FROM contacts ORDER BY id'
    monkeypatch.setenv("AIRFLOW_CONN_CRM_DB", sqlite_connection(database))
    loaded, synced = tmp_path / "load.results.jsonl", tmp_path / "sync.results.jsonl"
    _, ti = execute(
        load(
            sql=query,
            sql_conn_id="crm_db",
            results_path=str(loaded),
            dedupe_field="Email",
            max_failed_records=1,
        ),
        try_number=2,
    )
    sync_query = query.replace("ORDER BY id", "WHERE id < 3 ORDER BY id")
    execute(sync(sql=sync_query, sql_conn_id="crm_db", results_path=str(synced)))

    lines = read_lines(loaded)
    assert [(line["row"], line["key"], line["try"], line["status"]) for line in lines] == [
        (1, "a@example.com", 2, "created"),
        (2, "b@example.com", 2, "created"),
        (3, "a@example.com", 2, "rejected"),
    ]
    assert ti.pushed["failed_records"] == [lines[2]]
    assert [(line["row"], line["key"], line["status"]) for line in read_lines(synced)] == [
        (1, "a@example.com", "unchanged"),
        (2, "b@example.com", "unchanged"),
    ]
