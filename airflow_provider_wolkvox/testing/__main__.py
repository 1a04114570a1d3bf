"""Run the fake wolkvox CRM from a shell, for demos and manual tests.

``python -m airflow_provider_wolkvox.testing serve --port 8765`` prints the server's URL and the
``AIRFLOW_CONN_WOLKVOX_DEFAULT`` line that points Airflow at it, then serves until Ctrl-C or SIGTERM.
"""

from __future__ import annotations

import argparse
import shlex
import signal
import sys
import threading
from collections.abc import Sequence

from airflow_provider_wolkvox.api import DEFAULT_DAILY_QUOTA
from airflow_provider_wolkvox.testing.server import (
    CONN_ENV_VAR,
    DEMO_OPERATION,
    DEMO_TOKEN,
    FakeWolkvoxServer,
)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m airflow_provider_wolkvox.testing",
        description="The embedded fake wolkvox CRM.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser(
        "serve",
        help="serve the fake CRM until interrupted",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    serve.add_argument("--host", default="127.0.0.1", help="address to listen on")
    serve.add_argument("--port", type=int, default=8765, help="port; 0 picks a free one")
    serve.add_argument("--token", default=DEMO_TOKEN, help="the accepted Wolkvox-Token")
    serve.add_argument("--operation", default=DEMO_OPERATION, help="the token's operation")
    serve.add_argument("--quota", type=int, default=DEFAULT_DAILY_QUOTA, help="daily quota")
    serve.add_argument("--latency", type=float, default=0.0, help="seconds per request")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the exit status."""
    args = _parser().parse_args(argv)
    stopped = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stopped.set())
    server = FakeWolkvoxServer(
        {args.token: args.operation},
        host=args.host,
        port=args.port,
        quota=args.quota,
        latency=args.latency,
    )
    try:
        server.start()
    except OSError as error:
        print(f"cannot listen on {args.host}:{args.port}: {error}", file=sys.stderr)
        return 1
    try:
        print(f"Fake wolkvox CRM serving at {server.url} (Ctrl-C stops it); point Airflow at it with:")
        print(f"{CONN_ENV_VAR}={shlex.quote(server.airflow_connection())}", flush=True)
        stopped.wait()
    finally:
        server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
