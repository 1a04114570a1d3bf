"""Run the fake wolkvox CRM from a shell, for demos and manual tests, and look into a running one.

``python -m airflow_provider_wolkvox.testing serve --port 8765`` prints the server's URL and the
``AIRFLOW_CONN_WOLKVOX_DEFAULT`` line that points Airflow at it, then serves until Ctrl-C or SIGTERM.

``python -m airflow_provider_wolkvox.testing records --url http://127.0.0.1:8765 --module contacts``
prints the records of a module of a running fake, one JSON object per line, from the fake-only path
``/__fake__/records`` (no token; not charged, counted or logged). The real CRM has no such path.
"""

from __future__ import annotations

import argparse
import json
import shlex
import signal
import sys
import threading
import urllib.error
import urllib.request
from collections.abc import Sequence
from urllib.parse import urlencode

from airflow_provider_wolkvox.api import DEFAULT_DAILY_QUOTA
from airflow_provider_wolkvox.testing.server import (
    CONN_ENV_VAR,
    DEMO_OPERATION,
    DEMO_TOKEN,
    RECORDS_PATH,
    FakeWolkvoxServer,
)

# Seconds to wait for a running fake's answer.
_TIMEOUT = 30.0


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
    records = commands.add_parser(
        "records",
        help="print the records of a module of a running fake, one JSON object per line",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    records.add_argument("--url", required=True, help="the running fake's base URL")
    records.add_argument("--module", required=True, help="the module")
    records.add_argument("--operation", help="the operation; default the fake's first token's")
    return parser


def _serve(args: argparse.Namespace) -> int:
    """Serve a fake until interrupted; return the exit status."""
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


def _records(args: argparse.Namespace) -> int:
    """Print the records of a module of a running fake, one JSON object per line; return the exit status."""
    query = {"module": args.module, **({} if args.operation is None else {"operation": args.operation})}
    url = f"{args.url.rstrip('/')}{RECORDS_PATH}?{urlencode(query)}"
    # No proxy from the environment between the command and a fake on loopback.
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(url, timeout=_TIMEOUT) as response:
            records = json.load(response)["data"]
    except urllib.error.HTTPError as error:  # before URLError, its base class
        with error:
            problem = f"refused the request: {_refusal_text(error)}"
    except (urllib.error.URLError, OSError) as error:
        problem = f"cannot be reached: {getattr(error, 'reason', error)}"
    except (ValueError, KeyError, TypeError):
        problem = "did not answer as a fake wolkvox CRM does"
    else:
        for record in records:
            print(json.dumps(record, ensure_ascii=False))
        return 0
    print(f"the fake wolkvox CRM at {args.url} {problem}", file=sys.stderr)
    return 1


def _refusal_text(error: urllib.error.HTTPError) -> str:
    """Return the ``msg`` of a refusal's envelope, or its HTTP status when it has none."""
    try:
        return str(json.load(error)["msg"])
    except (ValueError, KeyError, TypeError):
        return f"HTTP {error.code}"


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the exit status."""
    args = _parser().parse_args(argv)
    return _serve(args) if args.command == "serve" else _records(args)


if __name__ == "__main__":
    sys.exit(main())
