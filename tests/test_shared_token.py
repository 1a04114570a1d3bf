"""Four processes load through one token at once, with no Airflow pool to keep them apart.

Each process keeps at most two requests in flight, so together they send up to eight while the CRM
takes two per token and refuses the others with the 403 for simultaneous requests. The fake answers
slowly, so the refusals are many; every record must still be created, exactly once.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from airflow_provider_wolkvox.testing import CONN_ENV_VAR, FakeWolkvoxServer
from tests.airflow_processes import wait_for
from tests.conftest import OPERATION, REPO_ROOT, TOKEN, simultaneous_refusals
from tests.example_dags.records import assert_stored_once, contacts, read_jsonl
from tests.hook_load import ready_path

pytestmark = pytest.mark.e2e

PROCESSES = 4
RECORDS_EACH = 1000
# Small batches and a slow CRM: many requests, each holding a slot long enough for others to collide.
BATCH_SIZE = 10
LATENCY = 0.025
TIMEOUT = 120.0


class Loader:
    """A child process loading ``RECORDS_EACH`` contacts from ``first`` on, with its log and results."""

    def __init__(self, first: int, folder: Path, env: dict[str, str]) -> None:
        self.first = first
        self.results_path = folder / f"results-{first}.jsonl"
        self.log_path = folder / f"load-{first}.log"
        args = [str(first), str(RECORDS_EACH), str(BATCH_SIZE), str(self.results_path)]
        with self.log_path.open("wb") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "tests.hook_load", *args],
                cwd=REPO_ROOT,
                env=env,
                stdin=subprocess.PIPE,
                stdout=log,
                stderr=subprocess.STDOUT,
            )

    def ready(self) -> bool:
        if self.process.poll() is not None:
            raise RuntimeError(f"the load from {self.first} exited early:\n{self.log_tail()}")
        return ready_path(self.results_path).exists()

    def go(self) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write(b"go\n")
        self.process.stdin.close()

    def log_tail(self) -> str:
        return f"--- {self.log_path}:\n{self.log_path.read_text(errors='replace')[-3000:]}"


@pytest.fixture
def loaders(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[FakeWolkvoxServer, list[Loader]]]:
    with FakeWolkvoxServer({TOKEN: OPERATION}, latency=LATENCY) as server:
        env = {**os.environ, CONN_ENV_VAR: server.airflow_connection()}
        started = [Loader(n * RECORDS_EACH, tmp_path, env) for n in range(PROCESSES)]
        try:
            yield server, started
        finally:
            for loader in started:
                loader.process.kill()
                loader.process.wait(timeout=TIMEOUT)
            print("\n".join(loader.log_tail() for loader in started))  # shown when the test failed


def test_four_processes_on_one_token_create_every_record_once(
    loaders: tuple[FakeWolkvoxServer, list[Loader]],
) -> None:
    server, children = loaders
    wait_for(lambda: all(child.ready() for child in children), TIMEOUT, "every load ready")
    for child in children:
        child.go()
    for child in children:
        assert child.process.wait(timeout=TIMEOUT) == 0, child.log_tail()

    records = contacts(PROCESSES * RECORDS_EACH)
    results = [result for child in children for result in read_jsonl(child.results_path)]
    assert len(results) == len(records)
    not_sent = [result for result in results if result["status"] == "not_sent"]
    assert not not_sent, f"{len(not_sent)} of {len(records)} records not sent: {not_sent[0]['msg']}"
    # Each child numbers its results from 0: its first record is contacts(...)[first].
    returned = {
        records[child.first + result["index"]]["Email"]: result["wolkvox_id"]
        for child in children
        for result in read_jsonl(child.results_path)
    }
    assert_stored_once(server, records, returned)
    # The contention was real: the CRM refused requests for the limit of 2 and they were waited out.
    assert simultaneous_refusals(server) > 0
