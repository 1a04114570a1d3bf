"""Answers built to break the client, on real loopback sockets: every wait and every read is bounded.

Each server writes raw HTTP after reading the request. The whole-request deadline must hold
whatever the answer's framing and wherever it stalls; interim ``1xx`` answers are skipped; a body
over ``MAX_ANSWER_BYTES``, or in an encoding the client did not ask for, is refused unread.
"""

from __future__ import annotations

import gzip
import json
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler

import pytest

from airflow_provider_wolkvox.client.session import MAX_ANSWER_BYTES
from airflow_provider_wolkvox.exceptions import WolkvoxOutcomeUnknownError
from tests.client import loopback
from tests.client.loopback import INSERTED, NEW_ID, SERVER_TIMEOUT, serving
from tests.client.test_network import FIELDS, client_for
from tests.conftest import OPERATION, TOKEN

DEADLINE = 0.5
# Seconds between two bytes of a dripped answer: far slower than any deadline allows.
DRIP = 0.05


def dripping(head: bytes, tail: Callable[[], Iterator[bytes]]) -> loopback.Answer:
    """An answer that sends ``head`` at once, then ``tail`` one byte per ``DRIP`` seconds."""

    def answer(handler: BaseHTTPRequestHandler, number: int) -> None:
        handler.close_connection = True
        stop = time.monotonic() + SERVER_TIMEOUT
        try:
            handler.wfile.write(head)
            handler.wfile.flush()
            for piece in tail():
                for byte in piece:
                    if time.monotonic() > stop:
                        return
                    handler.wfile.write(bytes([byte]))
                    handler.wfile.flush()
                    time.sleep(DRIP)
        except OSError:
            return  # the client gave up

    return answer


def once(piece: bytes) -> Callable[[], Iterator[bytes]]:
    return lambda: iter([piece])


def endless(piece: bytes) -> Callable[[], Iterator[bytes]]:
    def pieces() -> Iterator[bytes]:
        while True:
            yield piece

    return pieces


FRAMINGS = {
    # The 92-s case: http.client lets go of the socket when the answer will close the connection.
    "content-length, Connection: close": dripping(
        b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: %d\r\n\r\n" % len(INSERTED), once(INSERTED)
    ),
    "read to close, no length": dripping(b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n", once(INSERTED)),
    "HTTP/1.0": dripping(b"HTTP/1.0 200 OK\r\nContent-Length: %d\r\n\r\n" % len(INSERTED), once(INSERTED)),
    "chunked": dripping(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", endless(b"1\r\n{\r\n")),
    "keep-alive": dripping(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % len(INSERTED), once(INSERTED)),
    "stall in the status line": dripping(b"HTTP/1.1 2", endless(b"0")),
    "headers dripped": dripping(b"HTTP/1.1 200 OK\r\n", endless(b"X-Slow: yes\r\n")),
    "endless interim answers": dripping(b"", endless(b"HTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\n")),
}


@pytest.mark.parametrize("answer", FRAMINGS.values(), ids=FRAMINGS.keys())
def test_the_deadline_holds_whatever_the_framing(answer: loopback.Answer) -> None:
    with serving(answer) as server, client_for(server.url, timeout=DEADLINE) as client:
        started = time.monotonic()
        with pytest.raises(WolkvoxOutcomeUnknownError) as raised:
            client.insert(OPERATION, "contacts", FIELDS)
        waited = time.monotonic() - started
    assert DEADLINE <= waited < DEADLINE + 1.5
    assert len(server.requests) == 1
    assert str(raised.value).startswith(
        f"wolkvox insert.php at {server.url} (module 'contacts'): no complete answer within 0.5 s; "
        "the request was sent"
    )


def raw(*parts: bytes) -> loopback.Answer:
    def answer(handler: BaseHTTPRequestHandler, number: int) -> None:
        handler.close_connection = True
        handler.wfile.write(b"".join(parts))

    return answer


FINAL = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s" % (
    len(INSERTED),
    INSERTED,
)


@pytest.mark.parametrize(
    "interim",
    [
        b"HTTP/1.1 103 Early Hints\r\nLink: </style.css>; rel=preload\r\n\r\n",
        b"HTTP/1.1 102 Processing\r\n\r\nHTTP/1.1 103 Early Hints\r\n\r\n",
        b"HTTP/1.1 100 Continue\r\n\r\n",
    ],
    ids=["103", "102 then 103", "100"],
)
def test_interim_answers_are_skipped_never_final(interim: bytes) -> None:
    with serving(raw(interim, FINAL)) as server, client_for(server.url) as client:
        assert client.insert(OPERATION, "contacts", FIELDS) == NEW_ID


GZIP_BOMB = gzip.compress(b"\0" * (16 << 20)) * 64  # about 1 MB that inflates to 1 GiB


def sized(handler: BaseHTTPRequestHandler, number: int, head: bytes, piece: bytes) -> None:
    handler.close_connection = True
    try:
        handler.wfile.write(head)
        for _ in range((10 << 30) // len(piece)):
            handler.wfile.write(piece)
    except OSError:
        return  # the client stopped reading


HUGE = {
    "10 GB declared": lambda h, n: sized(
        h, n, b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % (10 << 30), b"x" * (1 << 20)
    ),
    "10 GB read to close": lambda h, n: sized(
        h, n, b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n", b"x" * (1 << 20)
    ),
    "10 GB chunked": lambda h, n: sized(
        h,
        n,
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n",
        b"100000\r\n" + b"x" * (1 << 20) + b"\r\n",
    ),
    "gzip bomb": raw(
        b"HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nContent-Length: %d\r\n\r\n" % len(GZIP_BOMB), GZIP_BOMB
    ),
}
REFUSALS = {
    "10 GB declared": "with a body of 10,737,418,240 bytes, over the 33,554,432 the client reads; not read",
    "10 GB read to close": "with a body over the 33,554,432 bytes the client reads; not read",
    "10 GB chunked": "with a body over the 33,554,432 bytes the client reads; not read",
    "gzip bomb": "with a body in Content-Encoding 'gzip', which the client did not ask for; not read",
}

# Run in a child process, so that its peak RSS is this request's alone.
PROBE = textwrap.dedent(
    """
    import json, resource, sys, time
    from airflow_provider_wolkvox.client import RetryPolicy, WolkvoxClient
    from airflow_provider_wolkvox.exceptions import WolkvoxError
    url, token, timeout = sys.argv[1], sys.argv[2], float(sys.argv[3])
    once = RetryPolicy(base_delay=0, max_attempts=1)
    client = WolkvoxClient(url, token, timeout=timeout, retry_policy=once)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    started = time.monotonic()
    try:
        client.insert("op", "contacts", {"Nombre": "Ana"})
        error = None
    except WolkvoxError as exc:
        error = f"{type(exc).__name__}: {exc}"
    grown = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before
    print(json.dumps({"error": error, "grown_kib": grown, "seconds": time.monotonic() - started}))
    """
)


@pytest.mark.parametrize("name", HUGE)
def test_a_huge_or_compressed_answer_fails_within_the_timeout_with_bounded_memory(name: str) -> None:
    timeout = 10.0
    with serving(HUGE[name]) as server:
        probe = subprocess.run(
            [sys.executable, "-c", PROBE, server.url, TOKEN, str(timeout)],
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        )
    outcome = json.loads(probe.stdout)
    assert outcome["error"].startswith("WolkvoxOutcomeUnknownError: wolkvox insert.php at ")
    assert REFUSALS[name] in outcome["error"]
    assert outcome["seconds"] < timeout
    assert outcome["grown_kib"] < 100 * 1024
    assert MAX_ANSWER_BYTES == 32 << 20  # the figure the messages above quote
