"""A small threaded HTTP/1.1 server: keep-alive connections, a thread each, and a stop that ends them all."""

from __future__ import annotations

import contextlib
import socket
import socketserver
import threading
from collections.abc import Callable
from typing import Any

from airflow_provider_wolkvox.testing._wire import Reply

#: Handles one request: (method, target, headers by lower-case name, body) to the answer, or None to
#: close the connection without one.
Handler = Callable[[str, str, dict[str, str], bytes], Reply | None]

# How often the accept loop looks whether stop() was called: often, so that stop() is quick.
_POLL_INTERVAL = 0.01
# Limits of a request's head, as http.server sets them.
_MAX_LINE = 65536
_MAX_HEADERS = 100
_MALFORMED_REQUEST = Reply(400, b"Bad Request", "text/plain")


class HTTPServer(socketserver.TCPServer):
    """Serves ``handler`` on ``address`` from a background thread, a thread per connection.

    Built on ``TCPServer`` rather than ``http.server.HTTPServer``, whose bind makes a slow reverse
    DNS lookup. Connections are tracked so that :meth:`stop` can close idle keep-alive ones too.

    :param address: (host, port); port 0 picks a free one, see ``server_address``.
    :param handler: answers each request.
    :raises OSError: the address cannot be bound.
    """

    allow_reuse_address = True
    request_queue_size = 128

    def __init__(self, address: tuple[str, int], handler: Handler) -> None:
        self.handler = handler
        self._connections: dict[socket.socket, threading.Thread] = {}
        self._connections_lock = threading.Lock()
        super().__init__(address, _Connection)
        self._accepting = threading.Thread(
            target=self.serve_forever,
            kwargs={"poll_interval": _POLL_INTERVAL},
            name=f"wolkvox-fake-{self.server_address[1]}",
            daemon=True,
        )

    def start(self) -> None:
        """Start accepting connections in the background."""
        self._accepting.start()

    def stop(self) -> None:
        """Stop accepting, shut every connection down, join every thread and close the socket."""
        self.shutdown()
        self._accepting.join()
        with self._connections_lock:
            connections = list(self._connections.items())
        for sock, _ in connections:
            with contextlib.suppress(OSError):  # already closed by its thread
                # Ends a read waiting for the next request on an idle keep-alive connection.
                sock.shutdown(socket.SHUT_RDWR)
        for _, thread in connections:
            thread.join()
        self.server_close()

    def process_request(self, request: Any, client_address: Any) -> None:
        thread = threading.Thread(
            target=self._serve_connection,
            args=(request, client_address),
            name=f"wolkvox-fake-connection-{client_address[1]}",
            daemon=True,
        )
        with self._connections_lock:
            # Forget finished connections here, in the accept loop's own thread, so the map stays small.
            self._connections = {sock: t for sock, t in self._connections.items() if t.is_alive()}
            self._connections[request] = thread
        thread.start()

    def _serve_connection(self, request: Any, client_address: Any) -> None:
        try:
            self.finish_request(request, client_address)
        except OSError:  # the client, or stop(), closed the connection
            pass
        except Exception:  # a bug in the fake: show the traceback
            self.handle_error(request, client_address)
        finally:
            self.shutdown_request(request)


class _Connection(socketserver.StreamRequestHandler):
    """Serves the HTTP/1.1 requests of one keep-alive connection, one after the other.

    A small parser of its own rather than ``http.server``'s, whose e-mail header parser costs more
    than all the rest of a request: the fake shares the benchmarks' process and CPU.
    """

    disable_nagle_algorithm = True
    server: HTTPServer

    def handle(self) -> None:
        while self._serve_one():
            pass

    def _serve_one(self) -> bool:
        """Read, handle and answer one request; return whether the connection stays open."""
        request_line = self.rfile.readline(_MAX_LINE + 1)
        if not request_line:
            return False  # the client closed the connection between requests
        try:
            method, target, version = request_line.decode("latin-1").split()
            headers = self._read_headers()
            if headers.get("expect", "").lower() == "100-continue":  # curl asks so for large bodies
                self.wfile.write(b"HTTP/1.1 100 Continue\r\n\r\n")
            body = self._read_body(headers)
        except ValueError:  # a malformed request: the rest of the stream cannot be trusted
            self._write(_MALFORMED_REQUEST, keep_alive=False)
            return False
        keep_alive = version == "HTTP/1.1" and "close" not in headers.get("connection", "").lower()
        reply = self.server.handler(method, target, headers, body)
        return reply is not None and self._write(reply, keep_alive=keep_alive) and keep_alive

    def _read_headers(self) -> dict[str, str]:
        """Return the header fields by lower-case name."""
        headers: dict[str, str] = {}
        for _ in range(_MAX_HEADERS):
            line = self.rfile.readline(_MAX_LINE + 1)
            if line in (b"\r\n", b"\n"):
                return headers
            name, colon, value = line.decode("latin-1").partition(":")
            if not colon or len(line) > _MAX_LINE:
                raise ValueError("malformed or truncated header field")
            headers[name.strip().lower()] = value.strip()
        raise ValueError("too many header fields")

    def _read_body(self, headers: dict[str, str]) -> bytes:
        if "chunked" in headers.get("transfer-encoding", "").lower():
            return self._read_chunks()
        length = int(headers.get("content-length") or 0)
        if length < 0:
            raise ValueError("negative Content-Length")
        body = self.rfile.read(length)
        if len(body) < length:
            raise ValueError("truncated body")
        return body

    def _read_chunks(self) -> bytes:
        """Decode a chunked body, as a client streaming a generator sends it."""
        chunks = []
        while size := int(self.rfile.readline(_MAX_LINE + 1).split(b";", 1)[0], 16):
            chunks.append(self.rfile.read(size))
            self.rfile.readline(_MAX_LINE + 1)  # the CRLF that ends the chunk
        while self.rfile.readline(_MAX_LINE + 1) not in (b"\r\n", b"\n", b""):  # unused trailer fields
            pass
        return b"".join(chunks)

    def _write(self, reply: Reply, *, keep_alive: bool) -> bool:
        """Send ``reply`` in one write (one segment for small answers); return whether it went out.

        Without ``keep_alive`` the answer says ``Connection: close``: clients such as ``http.client``
        would otherwise put the connection back in their pool and find it closed on the next request.
        """
        try:
            self.wfile.write(reply.head(keep_alive=keep_alive) + reply.body)
        except OSError:  # the client went away, e.g. after its read timeout during a SLOW answer
            return False
        return True
