"""Run the fake wolkvox CRM from a shell, for demos and manual tests, and look into a running one.

``python -m airflow_provider_wolkvox.testing serve --port 8765`` prints the server's URL and the
``AIRFLOW_CONN_WOLKVOX_DEFAULT`` line that points Airflow at it, then serves until Ctrl-C or SIGTERM.
``--latency``, ``--quota`` and ``--unique MODULE:FIELD`` (repeatable) set the server's ``latency``,
``quota`` and ``unique_fields``.

``python -m airflow_provider_wolkvox.testing records --url http://127.0.0.1:8765 --module contacts``
prints the records of a module of a running fake, one JSON object per line, from the fake-only path
``/__fake__/records``; ``... stats --url http://127.0.0.1:8765`` prints its calls per endpoint, the
quota each token used and the refusals, from the fake-only path ``/__fake__/stats`` (``--json``: as
the fake answers them). Neither path needs a token, nor is charged, counted or logged; the real
CRM has no such paths.
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
from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import urlencode

from airflow_provider_wolkvox.api import DEFAULT_DAILY_QUOTA
from airflow_provider_wolkvox.testing.server import (
    CONN_ENV_VAR,
    DEMO_OPERATION,
    DEMO_TOKEN,
    RECORDS_PATH,
    STATS_PATH,
    FakeWolkvoxServer,
)

# Seconds to wait for a running fake's answer.
_TIMEOUT = 30.0
_NOT_A_FAKE = "did not answer as a fake wolkvox CRM does"


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
    serve.add_argument(
        "--unique",
        type=_unique_field,
        action="append",
        default=[],
        metavar="MODULE:FIELD",
        help="a field whose values must not repeat in the module, e.g. contacts:Email (repeatable)",
    )
    records = commands.add_parser(
        "records",
        help="print the records of a module of a running fake, one JSON object per line",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    records.add_argument("--url", required=True, help="the running fake's base URL")
    records.add_argument("--module", required=True, help="the module")
    records.add_argument("--operation", help="the operation; default the fake's first token's")
    stats = commands.add_parser(
        "stats",
        help="print the calls per endpoint, the quota used and the refusals of a running fake",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    stats.add_argument("--url", required=True, help="the running fake's base URL")
    stats.add_argument("--json", action="store_true", help="print the counts as the fake answers them")
    return parser


def _unique_field(text: str) -> tuple[str, str]:
    """Parse ``MODULE:FIELD`` (the field may hold colons, the module not)."""
    module, _, field = text.partition(":")
    if not module.strip() or not field.strip():
        raise argparse.ArgumentTypeError(f"expected MODULE:FIELD, e.g. contacts:Email, got {text!r}")
    return module, field


def _unique_fields(pairs: Sequence[tuple[str, str]]) -> dict[str, list[str]]:
    fields: dict[str, list[str]] = {}
    for module, field in pairs:
        fields.setdefault(module, []).append(field)
    return fields


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
        unique_fields=_unique_fields(args.unique),
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


class _Unreadable(Exception):
    """A running fake's fake-only path could not be read; the message says why."""


def _read(base_url: str, path: str, query: Mapping[str, str] | None = None) -> Any:
    """GET a fake-only path of a running fake; return its JSON answer.

    :raises _Unreadable: the fake cannot be reached, refused the request or answered no JSON.
    """
    url = f"{base_url.rstrip('/')}{path}" + (f"?{urlencode(query)}" if query else "")
    # No proxy from the environment between the command and a fake on loopback.
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(url, timeout=_TIMEOUT) as response:
            return json.load(response)
    except urllib.error.HTTPError as error:  # before URLError, its base class
        with error:
            raise _Unreadable(f"refused the request: {_refusal_text(error)}") from None
    except (urllib.error.URLError, OSError) as error:
        raise _Unreadable(f"cannot be reached: {getattr(error, 'reason', error)}") from None
    except ValueError:
        raise _Unreadable(_NOT_A_FAKE) from None


def _records(args: argparse.Namespace) -> int:
    """Print the records of a module of a running fake, one JSON object per line; return the exit status."""
    query = {"module": args.module, **({} if args.operation is None else {"operation": args.operation})}
    try:
        answer = _read(args.url, RECORDS_PATH, query)
        try:
            records = answer["data"]
            lines = [json.dumps(record, ensure_ascii=False) for record in records]
        except (KeyError, TypeError):
            raise _Unreadable(_NOT_A_FAKE) from None
    except _Unreadable as problem:
        print(f"the fake wolkvox CRM at {args.url} {problem}", file=sys.stderr)
        return 1
    for line in lines:
        print(line)
    return 0


def _stats(args: argparse.Namespace) -> int:
    """Print the counts of a running fake; return the exit status."""
    try:
        counts = _read(args.url, STATS_PATH)
        try:
            lines = [json.dumps(counts, indent=2)] if args.json else _stats_lines(args.url, counts)
        except (KeyError, TypeError, ValueError):
            raise _Unreadable(_NOT_A_FAKE) from None
    except _Unreadable as problem:
        print(f"the fake wolkvox CRM at {args.url} {problem}", file=sys.stderr)
        return 1
    print("\n".join(lines))
    return 0


def _stats_lines(url: str, counts: Mapping[str, Any]) -> list[str]:
    """The counts of ``GET /__fake__/stats`` in words, one line each."""
    endpoints: Mapping[str, Mapping[str, int]] = counts["endpoints"]
    total = sum(endpoint["calls"] for endpoint in endpoints.values())
    lines = [f"fake wolkvox CRM at {url.rstrip('/')}: {_plural(total, 'call')}"]
    width = max((len(path) for path in endpoints), default=0)
    if endpoints:
        lines.append("calls per endpoint (refused and unanswered ones included):")
    for path, endpoint in endpoints.items():
        notes = [f"{endpoint[name]} {name}" for name in ("refused", "unanswered") if endpoint.get(name, 0)]
        lines.append(
            f"  {path:<{width}}  {endpoint['calls']:>6}" + (f"  ({', '.join(notes)})" if notes else "")
        )
    lines.append("quota used:")
    for token in counts["tokens"]:
        lines.append(
            f"  operation {token['operation']}: {token['quota_used']} of {token['quota']} calls, "
            f"at most {token['max_in_flight']} in flight at once"
        )
    refusals = counts["refusals"]
    refused = sum(refusal["count"] for refusal in refusals)
    lines.append(f"refusals: {refused}" + ("" if refusals else " (none)"))
    for refusal in refusals:
        lines.append(f"  {refusal['count']:>6}  {refusal['status']} {refusal['msg']}")
    return lines


def _plural(count: int, noun: str) -> str:
    return f"{count} {noun}" + ("" if count == 1 else "s")


def _refusal_text(error: urllib.error.HTTPError) -> str:
    """Return the ``msg`` of a refusal's envelope, or its HTTP status when it has none."""
    try:
        return str(json.load(error)["msg"])
    except (ValueError, KeyError, TypeError):
        return f"HTTP {error.code}"


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the exit status."""
    args = _parser().parse_args(argv)
    commands = {"serve": _serve, "records": _records, "stats": _stats}
    return commands[args.command](args)


if __name__ == "__main__":
    sys.exit(main())
