"""Shared pieces of the benchmarks: the fake CRM in a child process, child runs, tables and targets.

The fake server runs in its own process, as a real CRM is remote: in the benchmark's process it
would take the GIL from the client being measured. The parent drives it over a ``Pipe`` with a
small set of commands (see :class:`ServerProcess`). Children are started with ``spawn``, so they
inherit neither the parent's threads nor its memory (a forked child's RSS would count the parent's
pages it shares).

The scripts import this module as a sibling (``from _harness import ...``): Python puts a script's
own directory first on ``sys.path``, and ``spawn`` children get the parent's ``sys.path``.
"""

from __future__ import annotations

import contextlib
import datetime
import logging
import multiprocessing
import resource
import signal
import sys
import traceback
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from multiprocessing.connection import Connection
from types import FrameType, TracebackType
from typing import Any

from airflow_provider_wolkvox.testing import FakeWolkvoxServer, Fault

TOKEN = "benchmark-token"
OPERATION = "benchmark"
MODULE = "contacts"
HOST = "127.0.0.1"
# The benchmarks send far more calls than a real token's daily quota (4,800): they measure speed.
UNLIMITED_QUOTA = 10**9
# Seconds to wait for the server child to start, stop or answer a command (a scan of a large store
# included); past that it is taken as hung.
SERVER_TIMEOUT = 60.0

_SPAWN = multiprocessing.get_context("spawn")


def contact(number: int) -> dict[str, str]:
    """The ``number``-th test contact; its Email is unique to it."""
    return {"Nombre": f"Contacto {number}", "Email": f"c{number}@example.com", "Ciudad": "Medellín"}


# Server child

# What the parent may ask of the server child, by name: a closed set, so that a command is a plain
# picklable tuple and the child never runs anything else.
_COMMANDS: dict[str, Callable[..., Any]] = {
    "set_latency": lambda server, seconds: setattr(server, "latency", seconds),
    "reset": lambda server: server.reset(),
    "record_count": lambda server, module: server.record_count(module),
    "records": lambda server, module, fields: [
        tuple(record.get(name) for name in fields) for record in server.records(module)
    ],
    "duplicates": lambda server, module, field: _extra_copies(server.records(module), field),
    "max_in_flight": lambda server, token: server.max_in_flight(token),
    "calls": lambda server, path: server.calls(path),
    "inject_random": lambda server, rate, faults, seed, path, delay: server.inject_random(
        rate, faults, seed=seed, path=path, delay=delay
    ),
    "clear_faults": lambda server: server.clear_faults(),
    "seed": lambda server, module, count, days: _seed(server, module, count, days),
    "peak_rss_mb": lambda server: peak_rss_mb(),
    "stats": lambda server: server.stats(),
    "faults": lambda server: dict(
        Counter(
            f"{entry.fault.name} on {entry.path.rsplit('/', 1)[-1]}"
            for entry in server.request_log
            if entry.fault is not None
        )
    ),
}


def _seed(server: FakeWolkvoxServer, module: str, count: int, days: float) -> None:
    """Store ``contact(0)`` to ``contact(count - 1)``, created evenly over the past ``days`` days."""
    now = server.crm_now()
    step = datetime.timedelta(days=days) / max(count, 1)
    created = [now - step * (count - number) for number in range(count)]
    server.add_records(module, [contact(number) for number in range(count)], created_at=created)


def _extra_copies(records: Iterable[dict[str, Any]], field: str) -> int:
    """Records beyond the first of each value of ``field``: the duplicates a load created."""
    counts = Counter(record.get(field) for record in records)
    return sum(count - 1 for count in counts.values())


def _serve(conn: Connection, options: dict[str, Any]) -> None:
    """The server child: start the fake, send its URL, then answer commands until told to stop."""
    # Ctrl-C reaches the whole process group; the parent decides when this child stops.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        server = FakeWolkvoxServer({TOKEN: OPERATION}, host=HOST, **options).start()
    except Exception:
        conn.send((False, traceback.format_exc()))
        return
    try:
        conn.send((True, server.url))
        while True:
            try:
                name, args = conn.recv()
            except EOFError:  # the parent died: nobody left to serve
                return
            if name == "stop":
                return
            try:
                conn.send((True, _COMMANDS[name](server, *args)))
            except Exception:
                conn.send((False, traceback.format_exc()))
    finally:
        server.stop()


class ServerProcess:
    """A :class:`FakeWolkvoxServer` for token :data:`TOKEN` in a child process, driven over a pipe.

    Use it as a context manager: the child is stopped on exit, error and Ctrl-C alike.

    :param latency: seconds every admitted request waits before its answer (settable later).
    :param options: further ``FakeWolkvoxServer`` options (``unique_fields``...).
    """

    def __init__(self, *, latency: float = 0.0, **options: Any) -> None:
        # No request log unless asked for (the soak counts its faults in it): with a million records
        # it would hold their ids.
        self._options = {"latency": latency, "quota": UNLIMITED_QUOTA, "log_size": 0, **options}
        self._conn: Connection | None = None
        self._process: multiprocessing.process.BaseProcess | None = None
        self.url = ""

    def __enter__(self) -> ServerProcess:
        conn, child_conn = _SPAWN.Pipe()
        self._conn = conn
        self._process = _SPAWN.Process(
            target=_serve, args=(child_conn, self._options), name="wolkvox-fake", daemon=True
        )
        self._process.start()
        child_conn.close()
        try:
            self.url = self._receive()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def stop(self) -> None:
        """Ask the child to stop; terminate it if it does not within :data:`SERVER_TIMEOUT`."""
        if self._conn is not None:
            with contextlib.suppress(OSError):  # the child is gone already
                self._conn.send(("stop", ()))
            self._conn.close()
            self._conn = None
        if self._process is not None:
            _end(self._process, SERVER_TIMEOUT)
            self._process = None

    def set_latency(self, seconds: float) -> None:
        self._call("set_latency", seconds)

    def reset(self) -> None:
        """Forget records, call counters, the in-flight peak and faults."""
        self._call("reset")

    def record_count(self, module: str = MODULE) -> int:
        return int(self._call("record_count", module))

    def records(self, fields: Sequence[str], module: str = MODULE) -> list[tuple[Any, ...]]:
        """The stored records, oldest first, each reduced to the values of ``fields``."""
        return list(self._call("records", module, tuple(fields)))

    def duplicates(self, field: str, module: str = MODULE) -> int:
        """Stored records beyond the first of each value of ``field``."""
        return int(self._call("duplicates", module, field))

    def seed(self, count: int, *, days: float, module: str = MODULE) -> None:
        """A module of ``count`` contacts created over the past ``days`` days, as a CRM's grows."""
        self._call("seed", module, count, days)

    def max_in_flight(self, token: str = TOKEN) -> int:
        return int(self._call("max_in_flight", token))

    def calls(self, path: str | None = None) -> int:
        """Requests that arrived on ``path`` (any when None), refused ones included."""
        return int(self._call("calls", path))

    def inject_random(
        self,
        rate: float,
        faults: Iterable[Fault] | None = None,
        *,
        seed: int | None = None,
        path: str | None = None,
        delay: float | None = None,
    ) -> None:
        """See ``FakeWolkvoxServer.inject_random``."""
        self._call("inject_random", rate, None if faults is None else tuple(faults), seed, path, delay)

    def clear_faults(self) -> None:
        self._call("clear_faults")

    def faults(self) -> dict[str, int]:
        """Faults injected, by fault and endpoint, as far as the request log (``log_size``) reaches."""
        return dict(self._call("faults"))

    def stats(self) -> dict[str, Any]:
        """The fake's counts (``FakeWolkvoxServer.stats``): calls, refusals, quota used per token."""
        return self._call("stats")  # type: ignore[no-any-return]

    def peak_rss_mb(self) -> float:
        """The server child's peak RSS in MB: the records it holds, not the client's memory."""
        return float(self._call("peak_rss_mb"))

    def _call(self, name: str, *args: Any) -> Any:
        if self._conn is None:
            raise RuntimeError("the server process is not running")
        self._conn.send((name, args))
        return self._receive()

    def _receive(self) -> Any:
        assert self._conn is not None
        if not self._conn.poll(SERVER_TIMEOUT):
            raise TimeoutError(f"the fake server process gave no answer within {SERVER_TIMEOUT:.0f} s")
        ok, value = self._conn.recv()
        if not ok:
            raise RuntimeError(f"the fake server process failed:\n{value}")
        return value


def _end(process: multiprocessing.process.BaseProcess, timeout: float) -> None:
    """Join ``process``; terminate, then kill it, if it does not end in time."""
    process.join(timeout)
    if process.is_alive():
        process.terminate()
        process.join(5)
    if process.is_alive():
        process.kill()
        process.join()


# Measurements in a fresh child


def _run_child(conn: Connection, function: Callable[..., Any], args: tuple[Any, ...]) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent stops this child on Ctrl-C
    try:
        conn.send((True, function(*args)))
    except Exception:
        conn.send((False, traceback.format_exc()))


def run_in_child(function: Callable[..., Any], *args: Any, timeout: float) -> Any:
    """Return ``function(*args)`` computed in a fresh spawned process, ended when done or on error.

    ``function`` must be importable by name (a module-level function, ``__main__`` included).

    :raises TimeoutError: no result within ``timeout`` seconds.
    :raises RuntimeError: the function raised; the message holds the child's traceback.
    """
    conn, child_conn = _SPAWN.Pipe()
    process = _SPAWN.Process(target=_run_child, args=(child_conn, function, args), daemon=True)
    process.start()
    child_conn.close()
    answered = False
    try:
        if not conn.poll(timeout):
            raise TimeoutError(f"{function.__name__} gave no result within {timeout:.0f} s")
        try:
            ok, value = conn.recv()
        except EOFError:
            raise RuntimeError(f"{function.__name__}: the child process died") from None
        answered = True
        if not ok:
            raise RuntimeError(f"{function.__name__} failed in the child process:\n{value}")
        return value
    finally:
        conn.close()
        # A child that answered ends by itself; one still working (timeout, Ctrl-C) is stopped now.
        _end(process, 10 if answered else 0)


def peak_rss_mb() -> float:
    """This process's own peak resident set size so far, in MB (Linux ``VmHWM``)."""
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    raise RuntimeError("no VmHWM in /proc/self/status")


def maxrss_mb() -> float:
    """``getrusage(RUSAGE_SELF).ru_maxrss`` in MB (Linux reports KB).

    Linux keeps it across ``exec``: in a spawned child it is at least the parent's RSS at the spawn,
    whatever the child itself uses; :func:`peak_rss_mb` is the child's own peak.
    """
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def rss_mb() -> float:
    """This process's resident set size now, in MB (Linux)."""
    with open("/proc/self/statm", encoding="ascii") as statm:
        return int(statm.read().split()[1]) * resource.getpagesize() / 2**20


# Time bound


@contextlib.contextmanager
def time_limit(seconds: float) -> Iterator[None]:
    """Raise ``TimeoutError`` in the main thread once ``seconds`` have passed."""

    def expire(signum: int, frame: FrameType | None) -> None:
        raise TimeoutError(f"time limit of {seconds:.0f} s exceeded")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


# Output


def provider_logs(verbose: bool) -> None:
    """Show the provider's log lines (retries, splits, progress) only when ``verbose``.

    Importing Airflow sends log lines to stdout, where they would break up the tables; errors (a
    stopped load) are shown in any case.
    """
    logging.getLogger("airflow_provider_wolkvox").setLevel(logging.INFO if verbose else logging.ERROR)


def print_table(header: Sequence[str], rows: Iterable[Sequence[object]]) -> None:
    """Print ``rows`` under ``header``, the first column left-aligned, the others right-aligned."""
    cells = [list(header), *([str(cell) for cell in row] for row in rows)]
    widths = [max(len(row[column]) for row in cells) for column in range(len(header))]
    for number, row in enumerate(cells):
        print(
            "  ".join(
                cell.ljust(width) if column == 0 else cell.rjust(width)
                for column, (cell, width) in enumerate(zip(row, widths, strict=True))
            )
        )
        if number == 0:
            print("  ".join("-" * width for width in widths))


def check(label: str, met: bool) -> bool:
    """Print whether a target is met; return ``met``."""
    print(f"target met: {'yes' if met else 'no '}  {label}")
    return met


def verdict(measure: Callable[[], bool]) -> int:
    """Run ``measure`` (True when every target is met) and print the verdict; return the script's exit
    code: 0 all met, 1 one missed or the run stopped (the time limit, a hung child), 130 interrupted."""
    try:
        met = measure()
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except TimeoutError as error:
        print(f"stopped: {error}", file=sys.stderr)
        return 1
    print(f"\nall targets met: {'yes' if met else 'no'}")
    return 0 if met else 1
