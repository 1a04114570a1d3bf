"""The fake's HTTP/1.1 server: ``http.server`` with keep-alive, a thread per connection, and a stop
that ends idle connections too.

``http.server`` does the HTTP. What it lacks is kept here as small pieces: closing a connection
without any answer (:data:`Handler` returning None), tracking connections so that :meth:`HTTPServer.stop`
can end idle keep-alive ones, and a bind without the reverse-DNS lookup of
``http.server.HTTPServer.server_bind`` (``getfqdn`` can take seconds on a machine without DNS).

Requests ``http.server`` refuses itself (malformed, an unsupported method, a ``Transfer-Encoding``)
never reach the handler: they get the standard library's error page and the connection is closed.
"""

from __future__ import annotations

import contextlib
import http.server
import socket
import socketserver
import threading
from collections.abc import Callable
from http import HTTPStatus
from typing import Any

from airflow_provider_wolkvox.testing._wire import Reply

#: Handles one request: (method, target, headers by lower-case name, body) to the answer, or None to
#: close the connection without one.
Handler = Callable[[str, str, dict[str, str], bytes], Reply | None]

# How often the accept loop looks whether stop() was called: often, so that stop() is quick.
_POLL_INTERVAL = 0.01


class HTTPServer(socketserver.TCPServer):
    """Serves ``handler`` on ``address`` from a background thread, a thread per connection.

    A ``TCPServer`` with ``http.server``'s request handler rather than ``http.server.HTTPServer``,
    whose bind only adds the reverse-DNS lookup of the server's name (which nothing here uses).

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


class _Connection(http.server.BaseHTTPRequestHandler):
    """Serves the requests of one keep-alive connection, one after the other."""

    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True
    # A buffered writer, flushed by http.server after each request: an answer leaves in one write
    # (one segment for small answers) instead of one for the head and one for the body.
    wbufsize = -1
    server: HTTPServer

    def _serve(self) -> None:
        """Read the body, let the server's handler answer, and send its reply (or nothing)."""
        if "Transfer-Encoding" in self.headers:
            # http.server does not decode chunked request bodies, and the fake parses no HTTP itself.
            self.send_error(HTTPStatus.LENGTH_REQUIRED, explain="Send the body with a Content-Length.")
            return
        try:
            length = int(self.headers.get("Content-Length") or 0)
            if length < 0:
                raise ValueError(length)
        except ValueError:
            self.send_error(HTTPStatus.BAD_REQUEST, explain="Bad Content-Length.")
            return
        body = self.rfile.read(length)
        if len(body) < length:  # the client went away mid-body
            self.close_connection = True
            return
        headers = {name.lower(): value for name, value in self.headers.items()}
        reply = self.server.handler(self.command, self.path, headers, body)
        if reply is None:  # a fault that closes the connection without an answer
            self.close_connection = True
            return
        self.send_response(reply.status)
        self.send_header("Content-Type", reply.content_type)
        self.send_header("Content-Length", str(len(reply.body)))
        if self.close_connection:
            # Else clients such as http.client put the connection back in their pool and find it
            # closed on the next request.
            self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(reply.body)

    # The endpoints' methods, and the other methods a client may send by mistake (the fake answers
    # them 405); any other method gets http.server's 501.
    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _serve

    def handle_expect_100(self) -> bool:
        accepted = super().handle_expect_100()
        self.wfile.flush()  # the interim answer must not wait in the buffer for the final one
        return accepted

    def log_message(self, format: str, *args: Any) -> None:
        """Log nothing: the fake logs each request itself, without the request line's values."""
