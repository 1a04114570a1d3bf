"""One owner of the sync state: its lock, the merge of its writes, its format's refusals, a failed
write, the operator's default, and the warning of a missing state; against the fake CRM on loopback.

Run as ``python -m tests.loads.test_sync_state STATE FIRST COUNT GO OUT`` it is the child process of
the two-process test: one ``upsert_many`` of ``contact(FIRST..FIRST+COUNT)`` into ``STATE`` once
the file ``GO`` exists, through the Connection in ``WOLKVOX_TEST_CONN``; the statuses and calls go
to ``OUT`` as JSON.
"""

from __future__ import annotations

import json
import logging
import multiprocessing
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Generator
from pathlib import Path
from typing import Any, cast

import pytest

from airflow_provider_wolkvox.exceptions import (
    WolkvoxInputError,
    WolkvoxStateLockedError,
    WolkvoxStateWriteError,
)
from airflow_provider_wolkvox.hooks.wolkvox import WolkvoxHook
from airflow_provider_wolkvox.loads import RecordStatus
from airflow_provider_wolkvox.loads.sync.state import (
    StateHeader,
    merge_rows,
    read_state,
    write_state,
)
from airflow_provider_wolkvox.operators.upsert import WolkvoxUpsertOperator
from airflow_provider_wolkvox.state_file import LOCK_SUFFIX, StateFile
from airflow_provider_wolkvox.testing import CONN_ENV_VAR, FakeWolkvoxServer
from tests.conftest import OPERATION, REPO_ROOT
from tests.loads.records import MODULE, contact

HEADER = StateHeader(OPERATION, MODULE, "Email")
CHILD_TIMEOUT = 120


@pytest.fixture
def short_lock_wait(monkeypatch: pytest.MonkeyPatch) -> float:
    """A sync that finds its state held gives up after this, not after a minute."""
    monkeypatch.setattr("airflow_provider_wolkvox.state_file.STATE_LOCK_WAIT", 0.3)
    return 0.3


def contacts(first: int, count: int, **changes: Any) -> list[dict[str, Any]]:
    return [contact(n, **changes) for n in range(first, first + count)]


def stored(server: FakeWolkvoxServer) -> dict[str, dict[str, Any]]:
    records = server.records(MODULE)
    by_email = {record["Email"]: record for record in records}
    assert len(by_email) == len(records), "a key is stored twice"
    return by_email


def state_keys(path: str) -> dict[str, str]:
    header, rows = read_state(StateFile(path), HEADER)
    assert header is not None
    return {key: wolkvox_id for key, wolkvox_id, _ in rows}


def upsert(records: list[dict[str, Any]], state: str, **settings: Any) -> list[RecordStatus]:
    result = WolkvoxHook().upsert_many(MODULE, records, key_field="Email", state_path=state, **settings)
    return [r.status for r in result.results]


def leftovers(folder: Path, state: str) -> list[str]:
    """Files of the folder other than the state: temporary files, a lock left behind."""
    return sorted(path.name for path in folder.iterdir() if str(path) != state)


# Overlapping runs


def test_two_processes_syncing_the_same_new_keys_at_once_create_each_key_once(
    server: FakeWolkvoxServer, tmp_path: Path
) -> None:
    state = str(tmp_path / "contacts.sync-state.jsonl")
    go = tmp_path / "go"
    env = {**os.environ, "WOLKVOX_TEST_CONN": server.airflow_connection()}
    children = [
        subprocess.Popen(
            [sys.executable, "-m", "tests.loads.test_sync_state", state, "0", "200", str(go), str(out)],
            cwd=REPO_ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for out in (tmp_path / "a.json", tmp_path / "b.json")
    ]
    deadline = time.monotonic() + CHILD_TIMEOUT
    while not all((tmp_path / f"{name}.json.ready").exists() for name in "ab"):
        assert all(child.poll() is None for child in children), [c.communicate() for c in children]
        assert time.monotonic() < deadline
        time.sleep(0.05)
    # Each answer takes 0.3 s, so the first sync still holds the state when the second asks for it.
    server.latency = 0.3
    go.touch()  # both start their sync now
    logs = ["".join(child.communicate(timeout=CHILD_TIMEOUT)) for child in children]
    assert [child.returncode for child in children] == [0, 0], logs

    outcomes = [json.loads((tmp_path / f"{name}.json").read_text()) for name in "ab"]
    assert sorted(json.dumps(outcome["statuses"]) for outcome in outcomes) == [
        '{"created": 200}',
        '{"unchanged": 200}',
    ]
    assert sorted(outcome["calls"] for outcome in outcomes)[0] == 0  # the second learned all from the state
    assert any("is held by another sync" in log for log in logs), logs  # the second waited for the first
    assert len(stored(server)) == 200  # every key once
    assert set(state_keys(state)) == {f"c{n}@example.com" for n in range(200)}
    assert leftovers(tmp_path, state) == ["a.json", "a.json.ready", "b.json", "b.json.ready", "go"]

    before = server.calls()
    assert upsert(contacts(0, 200), state) == [RecordStatus.UNCHANGED] * 200
    assert server.calls() == before  # a third run: not one call


def test_a_sync_waits_for_the_state_while_another_holds_it_then_goes_on(
    server: FakeWolkvoxServer, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    state = str(tmp_path / "state.jsonl")
    other = StateFile(state)
    other.hold()
    threading.Timer(0.3, other.release).start()
    caplog.set_level(logging.INFO, logger="airflow_provider_wolkvox.state_file")

    assert upsert(contacts(0, 2), state) == [RecordStatus.CREATED] * 2

    assert f"pid {os.getpid()}" in caplog.text
    assert "waiting up to 60 s" in caplog.text
    assert "taken over" not in caplog.text
    assert leftovers(tmp_path, state) == []


def test_a_state_held_past_the_wait_fails_fast_naming_the_state_and_its_holder(
    server: FakeWolkvoxServer, tmp_path: Path, short_lock_wait: float
) -> None:
    state = str(tmp_path / "state.jsonl")
    with StateFile(state).owned():
        holder = json.loads(Path(state + LOCK_SUFFIX).read_text())
        with pytest.raises(WolkvoxStateLockedError) as raised:
            WolkvoxHook().upsert_many(MODULE, contacts(0, 2), key_field="Email", state_path=state)

    message = str(raised.value)
    assert f"the sync state {state!r} is held by another sync" in message
    assert f"host {socket.gethostname()!r}, pid {os.getpid()}, since {holder['since']}" in message
    assert "after waiting 0.3 s" in message
    assert "max_active_tis_per_dag" in message
    assert raised.value.fail_fast
    assert raised.value.state == state
    assert server.calls() == 0  # refused before anything was sent
    assert not Path(state + LOCK_SUFFIX).exists()  # released


def test_a_lock_whose_holder_was_killed_is_taken_over_and_logged(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    state = str(tmp_path / "state.jsonl")
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import fcntl, json, os, sys, time\n"
            f"fd = os.open({state + LOCK_SUFFIX!r}, os.O_RDWR | os.O_CREAT)\n"
            "fcntl.flock(fd, fcntl.LOCK_EX)\n"
            "os.write(fd, json.dumps({'host': 'worker-7', 'pid': os.getpid(), 'since': 'then'}).encode())\n"
            "print('held', flush=True)\n"
            "time.sleep(120)\n",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert holder.stdout is not None
    assert holder.stdout.readline() == "held\n"
    with pytest.raises(WolkvoxStateLockedError, match=f"host 'worker-7', pid {holder.pid}, since then"):
        StateFile(state, lock_wait=0.1).hold()  # alive: its lock holds

    os.kill(holder.pid, signal.SIGKILL)  # dies without releasing: the system drops its flock
    holder.wait()
    caplog.set_level(logging.WARNING, logger="airflow_provider_wolkvox.state_file")
    storage = StateFile(state, lock_wait=0.1)
    with storage.owned():
        assert json.loads(Path(state + LOCK_SUFFIX).read_text())["pid"] == os.getpid()

    assert f"lock taken over from host 'worker-7', pid {holder.pid}, since then" in caplog.text
    assert not Path(state + LOCK_SUFFIX).exists()


def test_the_hold_is_reentrant_and_released_by_a_sync_that_never_ran(
    server: FakeWolkvoxServer, tmp_path: Path, short_lock_wait: float
) -> None:
    state = str(tmp_path / "state.jsonl")
    storage = StateFile(state)
    with storage.owned(), storage.owned():  # write_state inside the engine's hold
        assert Path(state + LOCK_SUFFIX).exists()
    assert not Path(state + LOCK_SUFFIX).exists()

    hook = WolkvoxHook()
    never_run = hook.iter_upsert_many(MODULE, contacts(0, 2), key_field="Email", state_path=state)
    never_run.close()
    with pytest.raises(WolkvoxInputError, match="same key"):  # refused while made: released at once
        hook.iter_upsert_many(MODULE, [contact(0), contact(0)], key_field="Email", state_path=state)
    abandoned = cast(
        Generator[Any, None, None],
        iter(hook.iter_upsert_many(MODULE, contacts(0, 2), key_field="Email", state_path=state)),
    )
    next(abandoned)
    abandoned.close()  # stopped part way: released, the state not written

    assert upsert(contacts(0, 2), state) == [RecordStatus.UNCHANGED] * 2  # found by look-up
    assert len(stored(server)) == 2


# Partitions and concurrent writes


def test_two_partitions_interleaved_into_one_state_keep_every_key(
    server: FakeWolkvoxServer, tmp_path: Path
) -> None:
    # An object-storage URL: no lock there, so both partitions read the state before either writes.
    state = f"file://{tmp_path}/state.jsonl"
    hook = WolkvoxHook()
    first = hook.iter_upsert_many(MODULE, contacts(0, 30), key_field="Email", state_path=state)
    second = hook.iter_upsert_many(MODULE, contacts(100, 30), key_field="Email", state_path=state)
    assert [r.status for r in first] == [RecordStatus.CREATED] * 30
    assert [r.status for r in second] == [RecordStatus.CREATED] * 30

    assert len(state_keys(state)) == 60
    before = server.calls()
    assert upsert(contacts(0, 30), state) == [RecordStatus.UNCHANGED] * 30
    assert upsert(contacts(100, 30), state) == [RecordStatus.UNCHANGED] * 30
    assert server.calls() == before  # their unchanged re-runs: not one call

    # Each partition changes its keys; the one writing last read the other's keys before they changed.
    first = hook.iter_upsert_many(MODULE, contacts(0, 30, Ciudad="Cali"), key_field="Email", state_path=state)
    second = hook.iter_upsert_many(
        MODULE, contacts(100, 30, Ciudad="Cali"), key_field="Email", state_path=state
    )
    assert [r.status for r in first] == [RecordStatus.UPDATED] * 30
    assert [r.status for r in second] == [RecordStatus.UPDATED] * 30
    before = server.calls()
    assert upsert(contacts(0, 30, Ciudad="Cali"), state) == [RecordStatus.UNCHANGED] * 30
    assert upsert(contacts(100, 30, Ciudad="Cali"), state) == [RecordStatus.UNCHANGED] * 30
    assert server.calls() == before
    assert len(stored(server)) == 60


def test_partitions_into_one_local_state_run_one_after_the_other_and_keep_every_key(
    server: FakeWolkvoxServer, tmp_path: Path
) -> None:
    state = str(tmp_path / "state.jsonl")
    errors: list[BaseException] = []

    def partition(first: int) -> None:
        try:
            assert upsert(contacts(first, 40), state) == [RecordStatus.CREATED] * 40
        except BaseException as error:
            errors.append(error)

    threads = [threading.Thread(target=partition, args=(first,)) for first in (0, 100, 200, 300)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert errors == []
    assert len(state_keys(state)) == 160
    assert len(stored(server)) == 160
    before = server.calls()
    for first in (0, 100, 200, 300):
        assert upsert(contacts(first, 40), state) == [RecordStatus.UNCHANGED] * 40
    assert server.calls() == before


def _write_rows(state: str, first: int, count: int) -> None:
    """One writer of the concurrent-writes tests (a thread, or a spawned process): a row at a time."""
    for n in range(first, first + count):
        row = (f"k{n:04d}", f"{n:024x}", {"Email": f"{n:012x}"})
        write_state(StateFile(state), HEADER, [row])


def _ready(_: int) -> int:
    time.sleep(0.2)
    return os.getpid()


def test_concurrent_state_writes_never_fail_lose_a_key_or_leave_an_unreadable_file(tmp_path: Path) -> None:
    state = str(tmp_path / "state.jsonl")
    stop = threading.Event()
    seen: list[int] = []

    def reader() -> None:  # every read of the state meanwhile finds a whole state
        while not stop.is_set():
            if os.path.exists(state):
                seen.append(len(state_keys(state)))

    watcher = threading.Thread(target=reader)
    watcher.start()
    try:
        threads = [threading.Thread(target=_write_rows, args=(state, 20 * t, 20)) for t in range(4)]
        with multiprocessing.get_context("spawn").Pool(2) as pool:
            pool.map(_ready, range(2), chunksize=1)  # both processes up before the writes start
            spawned = pool.starmap_async(_write_rows, [(state, 100, 20), (state, 120, 20)])
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            spawned.get(timeout=CHILD_TIMEOUT)
    finally:
        stop.set()
        watcher.join()

    assert sorted(state_keys(state)) == [f"k{n:04d}" for n in [*range(80), *range(100, 140)]]
    assert seen == sorted(seen)  # never a key lost on the way
    assert leftovers(tmp_path, state) == []


def test_raw_writes_of_one_state_file_from_many_threads_leave_a_whole_file(tmp_path: Path) -> None:
    state = tmp_path / "state.jsonl"
    storage = StateFile(str(state))
    lines = [json.dumps({"n": n}) + "\n" for n in range(500)]

    def write() -> None:
        for _ in range(20):
            storage.write(lines)

    threads = [threading.Thread(target=write) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert state.read_text() == "".join(lines)
    assert leftovers(tmp_path, str(state)) == []


def test_a_written_state_has_the_permissions_of_a_new_file_or_keeps_its_own(tmp_path: Path) -> None:
    state = tmp_path / "state.jsonl"
    umask = os.umask(0o022)
    os.umask(umask)
    StateFile(str(state)).write(["{}\n"])
    assert state.stat().st_mode & 0o777 == 0o666 & ~umask  # not the temporary file's 0600
    state.chmod(0o640)
    StateFile(str(state)).write(["{}\n"])
    assert state.stat().st_mode & 0o777 == 0o640


# The merge


KNOWN = {"Email": "0d5d8a3e71c2"}
NEWER = {"Email": "6d0b3c2a91fe"}


@pytest.mark.parametrize(
    ("current", "ours", "merged"),
    [
        pytest.param([], [("a", "1", KNOWN, True)], [("a", "1", KNOWN)], id="a new state"),
        pytest.param([("a", "1", KNOWN)], [], [("a", "1", KNOWN)], id="a key this run never saw is kept"),
        pytest.param(
            [("a", "1", KNOWN)], [("a", "1", NEWER, True)], [("a", "1", NEWER)], id="this run's write wins"
        ),
        pytest.param(
            [("a", "1", NEWER)],
            [("a", "1", KNOWN, False)],
            [("a", "1", NEWER)],
            id="a key this run only read takes the state's newer entry",
        ),
        pytest.param(
            [("a", "2", None)], [("a", "1", KNOWN, True)], [("a", "1", KNOWN)], id="a new id written wins"
        ),
        pytest.param(
            [], [("a", "1", KNOWN, False)], [("a", "1", KNOWN)], id="a key read, gone since, is kept"
        ),
        pytest.param(
            [("b", "2", KNOWN), ("d", "4", KNOWN)],
            [
                ("a", "1", KNOWN, True),
                ("b", "2", NEWER, False),
                ("c", "3", NEWER, True),
                ("e", "5", None, True),
            ],
            [("a", "1", KNOWN), ("b", "2", KNOWN), ("c", "3", NEWER), ("d", "4", KNOWN), ("e", "5", None)],
            id="interleaved keys, in key order",
        ),
    ],
)
def test_the_merge_overlays_this_runs_entries_key_by_key(
    current: list[tuple[str, str, Any]],
    ours: list[tuple[str, str, Any, bool]],
    merged: list[tuple[str, str, Any]],
) -> None:
    assert list(merge_rows(current, ours)) == merged


def test_the_merge_refuses_entries_out_of_key_order() -> None:
    with pytest.raises(ValueError, match="not in ascending key order: 'a' after 'b'"):
        list(merge_rows([("b", "2", None), ("a", "1", None)], [("c", "3", None, True)]))


def test_a_write_keeps_the_newest_module_size_and_sorts_a_state_not_in_key_order(tmp_path: Path) -> None:
    state = tmp_path / "state.jsonl"
    header = {"format": "wolkvox-sync-state", "version": 1, "operation": OPERATION, "module": MODULE}
    rows = [{"key": key, "wolkvox_id": key.upper(), "fields": None} for key in ("c", "a", "c")]
    state.write_text(
        "".join(
            json.dumps(line) + "\n" for line in [{**header, "key_field": "Email", "module_size": 500}, *rows]
        )
    )

    write_state(StateFile(str(state)), HEADER, [("b", "B", None)])
    found, kept = read_state(StateFile(str(state)), HEADER)
    assert found is not None
    assert found.module_size == 500
    assert list(kept) == [("a", "A", None), ("b", "B", None), ("c", "C", None)]

    write_state(StateFile(str(state)), StateHeader(OPERATION, MODULE, "Email", 700), [])
    assert read_state(StateFile(str(state)), HEADER)[0] == StateHeader(OPERATION, MODULE, "Email", 700)


def test_a_run_that_learns_nothing_new_leaves_the_state_as_it_is(
    server: FakeWolkvoxServer, tmp_path: Path
) -> None:
    state = tmp_path / "state.jsonl"
    upsert(contacts(0, 3), str(state))
    written = state.read_text()
    state_inode = state.stat().st_ino

    assert upsert(contacts(0, 3), str(state)) == [RecordStatus.UNCHANGED] * 3
    assert (state.read_text(), state.stat().st_ino) == (written, state_inode)  # not rewritten

    assert upsert([contact(0, Ciudad="Cali")], str(state)) == [RecordStatus.UPDATED]
    assert state.stat().st_ino != state_inode  # a change is written
    assert len(state_keys(str(state))) == 3


# The format


def write_lines(path: Path, *lines: str) -> None:
    path.write_text("".join(lines), encoding="utf-8")


HEADER_LINE = json.dumps(
    {
        "format": "wolkvox-sync-state",
        "version": 1,
        "operation": OPERATION,
        "module": MODULE,
        "key_field": "Email",
    }
)
ROW_LINE = json.dumps({"key": "c0@example.com", "wolkvox_id": "64cb1f0e2a9d4c0012ab34cd", "fields": None})


@pytest.mark.parametrize(
    ("lines", "says"),
    [
        pytest.param(
            [HEADER_LINE + "\n", ROW_LINE + "\n", ROW_LINE[:30]], "line 3 is not a state row", id="cut short"
        ),
        pytest.param(
            [HEADER_LINE + "\n", "not json\n", ROW_LINE + "\n"], "line 2 is not a state row", id="not JSON"
        ),
        pytest.param([HEADER_LINE + "\n", '{"key": "x"}\n'], "line 2 is not a state row", id="no id"),
        pytest.param([], "the file is empty", id="empty"),
        pytest.param([HEADER_LINE[:40]], "its first line is cut short or broken", id="header cut short"),
        pytest.param(
            [HEADER_LINE.replace('"version": 1', '"version": 2') + "\n"],
            "its format version is 2; this provider reads version 1",
            id="another version",
        ),
    ],
)
def test_a_state_that_cannot_be_read_is_refused_saying_how_to_rebuild_it_and_refresh_rebuilds_it(
    server: FakeWolkvoxServer, tmp_path: Path, caplog: pytest.LogCaptureFixture, lines: list[str], says: str
) -> None:
    state = tmp_path / "state.jsonl"
    write_lines(state, *lines)

    with pytest.raises(WolkvoxInputError) as raised:
        upsert([contact(0)], str(state))
    assert says in str(raised.value)
    assert "rebuild it with refresh=True" in str(raised.value)
    assert "or delete the file" in str(raised.value)
    assert server.calls() == 0  # refused before anything was sent

    caplog.set_level(logging.WARNING)
    assert upsert([contact(0)], str(state), refresh=True) == [RecordStatus.CREATED]
    assert "rewritten" in caplog.text
    assert list(state_keys(str(state))) == ["c0@example.com"]  # rebuilt, readable
    assert leftovers(tmp_path, str(state)) == []


@pytest.mark.parametrize("refresh", [False, True])
def test_a_file_that_is_not_a_sync_state_is_left_alone_even_with_refresh(
    server: FakeWolkvoxServer, tmp_path: Path, refresh: bool
) -> None:
    state = tmp_path / "contacts.csv"
    write_lines(state, "Email,Nombre\n", "c0@example.com,Ana\n")

    with pytest.raises(WolkvoxInputError, match=r"is not a wolkvox sync state .*: it is left alone"):
        upsert([contact(0)], str(state), refresh=refresh)
    assert state.read_text() == "Email,Nombre\nc0@example.com,Ana\n"
    assert server.calls() == 0


# A failed write, a missing state


def test_a_state_write_that_fails_after_the_crm_writes_says_so_and_the_next_run_relearns(
    server: FakeWolkvoxServer, tmp_path: Path
) -> None:
    folder = tmp_path / "states"
    folder.mkdir()
    state = str(folder / "state.jsonl")
    load = WolkvoxHook().iter_upsert_many(MODULE, contacts(0, 3), key_field="Email", state_path=state)
    shutil.rmtree(folder)  # the folder vanishes while the sync runs

    results: list[RecordStatus] = []
    with pytest.raises(WolkvoxStateWriteError) as raised:
        results.extend(r.status for r in load)

    assert results == [RecordStatus.CREATED] * 3  # every record was written and reported
    message = str(raised.value)
    assert "the sync's writes to the CRM succeeded (3 created)" in message
    assert f"could not be written to state_path {state!r} (FileNotFoundError" in message
    assert "the state is behind" in message
    assert "at a cost of about 3 calls" in message
    assert not raised.value.fail_fast  # a retry is safe, and writes the state
    folder.mkdir()
    assert upsert(contacts(0, 3), state) == [RecordStatus.UNCHANGED] * 3  # looked up: not created again
    assert len(stored(server)) == 3
    assert len(state_keys(state)) == 3


def test_a_sync_that_finds_no_state_warns_of_its_cost_and_of_local_paths_on_several_workers(
    server: FakeWolkvoxServer, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    state = str(tmp_path / "state.jsonl")
    caplog.set_level(logging.WARNING, logger="airflow_provider_wolkvox.loads.sync.engine")

    upsert(contacts(0, 5), state, lookup="query")

    [warning] = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert f"no sync state at state_path {state!r}" in warning.message
    assert "5 keys to look up, about 5 calls" in warning.message
    assert (
        "use an object-storage URL (s3://..., gs://...) when tasks may run on several workers"
        in warning.message
    )
    caplog.clear()
    upsert(contacts(0, 5), state)
    assert [r for r in caplog.records if r.levelno == logging.WARNING] == []

    upsert(contacts(100, 150), str(tmp_path / "other.jsonl"))  # a module scan: its size not known
    [warning] = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert (
        "150 keys to look up, a scan of the module, about one call per 1,000 of its records"
        in warning.message
    )


# The operator


@pytest.mark.parametrize(
    ("settings", "expected"),
    [
        pytest.param({"state_path": "/data/contacts.sync-state.jsonl"}, 1, id="with a state: one at a time"),
        pytest.param({}, None, id="without a state: Airflow's default"),
        pytest.param({"state_path": "/data/s.jsonl", "max_active_tis_per_dag": 4}, 4, id="overridden"),
        pytest.param(
            {"state_path": "/data/s.jsonl", "max_active_tis_per_dag": None}, None, id="no limit asked"
        ),
        pytest.param(
            {"state_path": "/data/s.jsonl", "default_args": {"max_active_tis_per_dag": 3}},
            3,
            id="default_args",
        ),
    ],
)
def test_the_operator_with_a_state_runs_one_task_instance_at_a_time(
    settings: dict[str, Any], expected: int | None
) -> None:
    operator = WolkvoxUpsertOperator(task_id="sync", module=MODULE, key_field="Email", records=[], **settings)
    assert operator.max_active_tis_per_dag == expected


def _child() -> None:
    """The child process of the two-process test (see the module's docstring)."""
    state, first, count, go, out = sys.argv[1:]
    os.environ[CONN_ENV_VAR] = os.environ["WOLKVOX_TEST_CONN"]
    logging.basicConfig(level=logging.INFO, stream=sys.stderr)
    hook = WolkvoxHook()
    hook.operation_for()  # reads the Connection now, not after the start signal
    Path(out + ".ready").touch()
    deadline = time.monotonic() + CHILD_TIMEOUT
    while not Path(go).exists() and time.monotonic() < deadline:
        time.sleep(0.01)
    result = hook.upsert_many(MODULE, contacts(int(first), int(count)), key_field="Email", state_path=state)
    statuses = Counter(r.status.value for r in result.results)
    Path(out).write_text(json.dumps({"statuses": statuses, "calls": result.summary.calls}))


if __name__ == "__main__":
    _child()
