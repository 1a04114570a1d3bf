"""A real ``airflow api-server`` in a subprocess, on loopback, with a throw-away sqlite DB.

It is the Airflow 3 web server users open: the REST API, the UI's private endpoints and the
React UI itself, so the tests see the connection form exactly as a user would.
"""

from __future__ import annotations

import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from types import TracebackType

import requests

STARTUP_TIMEOUT = 120.0
STOP_TIMEOUT = 20.0
MIGRATE_TIMEOUT = 300.0


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now (the server binds it a moment later)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def airflow_environment(home: Path, port: int) -> dict[str, str]:
    """The environment of the server: this process's, minus any Airflow setting the tests made.

    The test session configures Airflow through ``AIRFLOW__*`` and ``AIRFLOW_CONN_*`` variables of
    its own; the server gets a clean set, so what it shows comes from the metadata DB only.
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
            "AIRFLOW__API__BASE_URL": f"http://127.0.0.1:{port}",
        }
    )
    return env


class AirflowApiServer:
    """Migrate a fresh DB under ``home``, then run ``airflow api-server`` on ``127.0.0.1``.

    Use it as a context manager; leaving stops the server and every process it started.
    """

    def __init__(self, home: Path) -> None:
        self.home = home
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = home / "api-server.log"
        self._env = airflow_environment(home, self.port)
        self._airflow = str(Path(sys.executable).with_name("airflow"))
        self._process: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> AirflowApiServer:
        migrate = subprocess.run(
            [self._airflow, "db", "migrate"],
            env=self._env,
            capture_output=True,
            text=True,
            timeout=MIGRATE_TIMEOUT,
        )
        if migrate.returncode != 0:
            raise RuntimeError(f"airflow db migrate failed:\n{(migrate.stdout + migrate.stderr)[-4000:]}")
        with self.log_path.open("wb") as log:
            self._process = subprocess.Popen(
                [
                    self._airflow,
                    "api-server",
                    "--host",
                    "127.0.0.1",
                    "--port",
                    str(self.port),
                    "--workers",
                    "1",
                ],
                env=self._env,
                stdout=log,
                stderr=subprocess.STDOUT,
                # Its own process group, so that stopping it reaches any worker it forks.
                start_new_session=True,
            )
        try:
            self._wait_until_healthy()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    def _wait_until_healthy(self) -> None:
        assert self._process is not None
        deadline = time.monotonic() + STARTUP_TIMEOUT
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise RuntimeError(
                    f"airflow api-server exited with {self._process.returncode}:\n{self.log_tail()}"
                )
            try:
                health = requests.get(f"{self.url}/api/v2/monitor/health", timeout=2)
            except requests.ConnectionError:
                health = None
            if health is not None and health.ok and health.json()["metadatabase"]["status"] == "healthy":
                return
            time.sleep(0.25)
        raise TimeoutError(f"airflow api-server not healthy after {STARTUP_TIMEOUT:g} s:\n{self.log_tail()}")

    def stop(self) -> None:
        """Stop the server's process group: SIGTERM, then SIGKILL if it lingers."""
        process, self._process = self._process, None
        if process is None or process.poll() is not None:
            return
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=STOP_TIMEOUT)

    def log_tail(self, size: int = 4000) -> str:
        """The end of the server's output, for failure messages."""
        return self.log_path.read_text(errors="replace")[-size:] if self.log_path.exists() else ""
