"""Real databases for the SQL input tests: SQLite files and a throw-away PostgreSQL cluster.

The PostgreSQL cluster is made once per test session, when the server's binaries are installed
(``initdb`` and ``pg_ctl`` on ``PATH`` or in Debian's ``/usr/lib/postgresql/<version>/bin``): in a
temporary folder (``initdb --auth=trust``), listening on a free loopback port and a socket in that
folder, never the system's service. It runs as the ``postgres`` user when the session is root (the
server refuses root), and is stopped (``pg_ctl stop -m immediate``) and removed at the end.

Without the binaries the PostgreSQL tests skip, unless ``WOLKVOX_REQUIRE_POSTGRES`` is set (CI sets
it): then they fail.
"""

from __future__ import annotations

import contextlib
import json
import os
import pwd
import shutil
import socket
import sqlite3
import subprocess
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

REQUIRE_ENV_VAR = "WOLKVOX_REQUIRE_POSTGRES"
#: The server's user when the test session runs as root.
SERVER_USER = "postgres"
#: Seconds any one step of the cluster (initdb, start, stop) may take.
STEP_TIMEOUT = 120


def sqlite_connection(path: Path) -> str:
    """The ``AIRFLOW_CONN_*`` value of a SQLite Connection to the database file ``path``."""
    return json.dumps({"conn_type": "sqlite", "host": str(path)})


def sqlite_db(path: Path, script: str, rows: Sequence[Sequence[Any]] = (), insert: str = "") -> Path:
    """A SQLite database file made by ``script``, then ``insert`` run for each of ``rows``."""
    with contextlib.closing(sqlite3.connect(path)) as db, db:
        db.executescript(script)
        if rows:
            db.executemany(insert, rows)
    return path


def _binaries() -> Path | None:
    """The folder holding ``initdb`` and ``pg_ctl``: on ``PATH``, or Debian's newest version."""
    found = shutil.which("initdb")
    if found and shutil.which("pg_ctl"):
        return Path(found).parent
    debian = sorted(
        Path("/usr/lib/postgresql").glob("*/bin"),
        key=lambda path: int(path.parent.name) if path.parent.name.isdigit() else 0,
    )
    for folder in reversed(debian):
        if (folder / "initdb").is_file() and (folder / "pg_ctl").is_file():
            return folder
    return None


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class PostgresCluster:
    """A running throw-away cluster: user ``postgres``, no password, database ``postgres``."""

    bin: Path
    folder: Path
    port: int
    as_user: str | None

    @property
    def data(self) -> Path:
        return self.folder / "data"

    def connection(self, **extra: Any) -> str:
        """The ``AIRFLOW_CONN_*`` value of a Connection to the cluster's ``postgres`` database."""
        return json.dumps(
            {
                "conn_type": "postgres",
                "host": "127.0.0.1",
                "port": self.port,
                "login": "postgres",
                "schema": "postgres",
                "extra": extra,
            }
        )

    def execute(self, *statements: str) -> None:
        """Run ``statements`` in one transaction, through psycopg2."""
        import psycopg2

        connect = psycopg2.connect(host="127.0.0.1", port=self.port, user="postgres", dbname="postgres")
        with contextlib.closing(connect) as db, db, db.cursor() as cursor:
            for statement in statements:
                cursor.execute(statement)

    def run(self, *command: str) -> None:
        """Run one of the server's binaries, as the server's user."""
        argv = [str(self.bin / command[0]), *command[1:]]
        if self.as_user is not None:
            argv = ["runuser", "-u", self.as_user, "--", *argv]
        done = subprocess.run(argv, capture_output=True, text=True, timeout=STEP_TIMEOUT, check=False)
        if done.returncode != 0:
            log = self.folder / "server.log"
            server_log = log.read_text(errors="replace")[-2000:] if log.exists() else ""
            raise RuntimeError(
                f"{' '.join(command)} failed ({done.returncode}):\n{done.stdout}\n{done.stderr}\n{server_log}"
            )

    def stop(self) -> None:
        self.run("pg_ctl", "-D", str(self.data), "stop", "-m", "immediate", "-w", "-t", "60")


def _start_cluster() -> tuple[PostgresCluster | None, str]:
    """A new running cluster, or None and the reason there is none."""
    binaries = _binaries()
    if binaries is None:
        return None, "no PostgreSQL server binaries (initdb, pg_ctl): apt-get install postgresql"
    as_user = None
    if os.geteuid() == 0:
        try:
            owner = pwd.getpwnam(SERVER_USER)
        except KeyError:
            return None, f"the session is root and there is no {SERVER_USER!r} user to run the server"
        as_user = SERVER_USER
    folder = Path(tempfile.mkdtemp(prefix="wolkvox-tests-postgres-"))
    if as_user is not None:
        os.chown(folder, owner.pw_uid, owner.pw_gid)
    cluster = PostgresCluster(binaries, folder, _free_port(), as_user)
    try:
        cluster.run(
            "initdb", "-D", str(cluster.data), "-U", "postgres", "--auth=trust", "--no-sync",
            "--encoding=UTF8", "--locale=C",
        )  # fmt: skip
        # Started with "-w" (pg_ctl waits for the server to accept connections); "start" itself
        # comes last, after the options.
        cluster.run(
            "pg_ctl", "-D", str(cluster.data), "-l", str(folder / "server.log"), "-w", "-t", "60",
            "-o", (
                f"-p {cluster.port} -k {folder} -c listen_addresses=127.0.0.1 -c fsync=off "
                "-c full_page_writes=off -c shared_buffers=16MB -c max_connections=20"
            ),
            "start",
        )  # fmt: skip
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)
        raise
    return cluster, ""


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresCluster]:
    """A throw-away PostgreSQL cluster for the session; skips without the binaries (fails with
    ``WOLKVOX_REQUIRE_POSTGRES`` set)."""
    cluster, reason = _start_cluster()
    if cluster is None:
        if os.environ.get(REQUIRE_ENV_VAR):
            pytest.fail(f"{reason} ({REQUIRE_ENV_VAR} is set)")
        pytest.skip(reason)
    try:
        yield cluster
    finally:
        try:
            cluster.stop()
        finally:
            shutil.rmtree(cluster.folder, ignore_errors=True)
