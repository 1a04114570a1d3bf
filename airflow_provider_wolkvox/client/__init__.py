"""The HTTP client of the wolkvox API: the session, the envelope, errors, retries, the token gate, redaction.

It knows nothing of loads or syncs (``loads/`` builds on it), and of Airflow only the exception base
class every provider error derives from.
"""

from __future__ import annotations

from airflow_provider_wolkvox.client.client import WolkvoxClient
from airflow_provider_wolkvox.client.envelope import TokenInfo
from airflow_provider_wolkvox.client.retry import RetryPolicy

__all__ = ["RetryPolicy", "TokenInfo", "WolkvoxClient"]
