"""The per-token concurrency gate: at most ``MAX_IN_FLIGHT_PER_TOKEN`` requests in flight.

The CRM refuses a third simultaneous request per token, so every client of the process that uses
the same token shares one gate, whatever URL it names the server by. Keys are a digest of the
token, not the token itself.
"""

from __future__ import annotations

import hashlib
import threading

from airflow_provider_wolkvox.api import MAX_IN_FLIGHT_PER_TOKEN

_gates: dict[str, threading.BoundedSemaphore] = {}
_gates_lock = threading.Lock()


def gate_for(token: str) -> threading.BoundedSemaphore:
    """The process-wide gate of ``token``."""
    key = hashlib.sha256(token.encode()).hexdigest()
    with _gates_lock:
        gate = _gates.get(key)
        if gate is None:
            gate = _gates[key] = threading.BoundedSemaphore(MAX_IN_FLIGHT_PER_TOKEN)
        return gate
