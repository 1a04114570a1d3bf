"""Airflow commands in subprocesses, for the tests that need real Airflow processes.

Each process runs in a session of its own, so that stopping it reaches every process it forked,
and writes its output to a log file whose tail failure messages quote.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TypeVar

#: The ``airflow`` command of the interpreter running the tests.
AIRFLOW = str(Path(sys.executable).with_name("airflow"))
STOP_TIMEOUT = 20.0
LOG_TAIL_SIZE = 4000
POLL_INTERVAL = 0.05

T = TypeVar("T")


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now (the server binds it a moment later)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def airflow_environment(home: Path, port: int) -> dict[str, str]:
    """The environment of Airflow processes under ``home`` whose api-server listens on ``port``.

    It is this process's, minus any Airflow setting the tests made: the test session configures
    Airflow through ``AIRFLOW__*`` and ``AIRFLOW_CONN_*`` variables of its own; these processes get
    a clean set, so what they use comes from ``home`` and the metadata DB there.
    """
    from cryptography.fernet import Fernet  # an Airflow dependency

    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("AIRFLOW__", "AIRFLOW_CONN_", "AIRFLOW_VAR_"))
    }
    dags = home / "dags"
    dags.mkdir(parents=True, exist_ok=True)
    env.update(
        {
            "AIRFLOW_HOME": str(home),
            "AIRFLOW__CORE__DAGS_FOLDER": str(dags),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home}/airflow.db",
            "AIRFLOW__CORE__AUTH_MANAGER": (
                "airflow.api_fastapi.auth.managers.simple.simple_auth_manager.SimpleAuthManager"
            ),
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "True",
            # The Test button and POST /connections/test are off by default.
            "AIRFLOW__CORE__TEST_CONNECTION": "Enabled",
            # Encrypt stored passwords as a real deployment does.
            "AIRFLOW__CORE__FERNET_KEY": Fernet.generate_key().decode(),
            "AIRFLOW__API_AUTH__JWT_SECRET": secrets.token_urlsafe(32),
            # Also where the workers reach the Execution API: {base_url}/execution/.
            "AIRFLOW__API__BASE_URL": f"http://127.0.0.1:{port}",
        }
    )
    return env


class AirflowProcess:
    """``airflow <args>`` in a subprocess of its own session, its output in ``log_path``.

    :param args: the arguments after ``airflow``.
    :param env: the whole environment of the process.
    :param log_path: where its stdout and stderr go (overwritten).
    """

    def __init__(self, args: Sequence[str], env: Mapping[str, str], log_path: Path) -> None:
        self.args = list(args)
        self.env = dict(env)
        self.log_path = log_path
        self._process: subprocess.Popen[bytes] | None = None

    def start(self) -> AirflowProcess:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("wb") as log:
            self._process = subprocess.Popen(
                [AIRFLOW, *self.args],
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        return self

    @property
    def pid(self) -> int:
        return self._started().pid

    def exit_code(self) -> int | None:
        """The exit status, or None while the process runs."""
        return self._started().poll()

    def is_running(self) -> bool:
        return self.exit_code() is None

    def wait(self, timeout: float) -> int:
        """Wait for the end of the process; return its exit status.

        :raises TimeoutError: it still runs after ``timeout`` seconds (it is then stopped).
        """
        try:
            return self._started().wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.stop()
            raise TimeoutError(
                f"airflow {' '.join(self.args)} did not end within {timeout:g} s:\n{self.log_tail()}"
            ) from None

    def kill(self) -> None:
        """SIGKILL the process itself (not its group): a crash, as the tests mean it."""
        os.kill(self.pid, signal.SIGKILL)
        self._started().wait(timeout=STOP_TIMEOUT)

    def terminate(self) -> None:
        """SIGTERM the process group, without waiting; does nothing once it is gone."""
        if self._process is not None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self._process.pid, signal.SIGTERM)

    def stop(self) -> None:
        """Stop the process group: SIGTERM, then SIGKILL if it lingers. Does nothing once stopped."""
        process = self._process
        if process is None:
            return
        self.terminate()
        try:
            process.wait(timeout=STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=STOP_TIMEOUT)

    def log_tail(self, size: int = LOG_TAIL_SIZE) -> str:
        """The end of the process's output, for failure messages."""
        text = self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
        return f"--- last lines of {self.log_path}:\n{text[-size:]}"

    def _started(self) -> subprocess.Popen[bytes]:
        if self._process is None:
            raise RuntimeError(f"airflow {' '.join(self.args)} was not started")
        return self._process


def run_airflow(args: Sequence[str], env: Mapping[str, str], log_path: Path, timeout: float) -> None:
    """Run ``airflow <args>`` to its end.

    :raises RuntimeError: it exited with a non-zero status.
    :raises TimeoutError: it did not end within ``timeout`` seconds.
    """
    process = AirflowProcess(args, env, log_path).start()
    if process.wait(timeout) != 0:
        raise RuntimeError(f"airflow {' '.join(args)} failed:\n{process.log_tail()}")


def wait_for(
    probe: Callable[[], T | None],
    timeout: float,
    what: str,
    *,
    logs: Callable[[], str] | None = None,
    interval: float = POLL_INTERVAL,
) -> T:
    """Call ``probe`` until it returns something other than None or False; return that.

    :param what: what is awaited, for the error message.
    :param logs: the log tails to quote when the wait expires.
    :raises TimeoutError: ``timeout`` seconds passed first.
    """
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if value is not None and value is not False:
            return value
        if time.monotonic() >= deadline:
            raise TimeoutError(f"{what}: not reached within {timeout:g} s\n{logs() if logs else ''}")
        time.sleep(interval)
