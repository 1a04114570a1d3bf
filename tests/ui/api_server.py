"""A real ``airflow api-server`` in a subprocess, on loopback, with a throw-away sqlite DB.

It is the Airflow 3 web server users open: the REST API, the UI's private endpoints and the
React UI itself, so the tests see the connection form exactly as a user would.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from types import TracebackType

import requests

from tests.airflow_processes import AirflowProcess, airflow_environment, free_port, run_airflow, wait_for

STARTUP_TIMEOUT = 120.0
MIGRATE_TIMEOUT = 300.0


class AirflowApiServer:
    """Migrate a fresh DB under ``home``, then run ``airflow api-server`` on ``127.0.0.1``.

    Use it as a context manager; leaving stops the server and every process it started.

    :param extra_env: settings added to the environment of :func:`airflow_environment`.
    """

    def __init__(self, home: Path, *, extra_env: Mapping[str, str] | None = None) -> None:
        self.home = home
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = {**airflow_environment(home, self.port), **(extra_env or {})}
        self.process = AirflowProcess(
            ["api-server", "--host", "127.0.0.1", "--port", str(self.port), "--workers", "1"],
            self.env,
            home / "api-server.log",
        )

    def __enter__(self) -> AirflowApiServer:
        run_airflow(["db", "migrate"], self.env, self.home / "db-migrate.log", MIGRATE_TIMEOUT)
        self.process.start()
        try:
            wait_for(
                self._healthy,
                STARTUP_TIMEOUT,
                "airflow api-server healthy",
                logs=self.log_tail,
                interval=0.25,
            )
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

    def _healthy(self) -> bool:
        if self.process.exit_code() is not None:
            raise RuntimeError(
                f"airflow api-server exited with {self.process.exit_code()}:\n{self.log_tail()}"
            )
        try:
            health = requests.get(f"{self.url}/api/v2/monitor/health", timeout=2)
        except requests.ConnectionError:
            return False
        return health.ok and health.json()["metadatabase"]["status"] == "healthy"

    def stop(self) -> None:
        """Stop the server's process group: SIGTERM, then SIGKILL if it lingers."""
        self.process.stop()

    def log_tail(self) -> str:
        """The end of the server's output, for failure messages."""
        return self.process.log_tail()
