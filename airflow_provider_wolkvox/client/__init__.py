"""The client layer: HTTP, envelope, errors, retries, the token gate and bulk loads. No Airflow tasks."""

from __future__ import annotations

from airflow_provider_wolkvox.client.bulk import BulkLoad
from airflow_provider_wolkvox.client.client import WolkvoxClient
from airflow_provider_wolkvox.client.journal import Journal
from airflow_provider_wolkvox.client.options import LoadOptions
from airflow_provider_wolkvox.client.results import (
    InsertManyResult,
    LoadSummary,
    RecordResult,
    RecordStatus,
    TokenInfo,
)
from airflow_provider_wolkvox.client.retry import RetryPolicy

__all__ = [
    "BulkLoad",
    "InsertManyResult",
    "Journal",
    "LoadOptions",
    "LoadSummary",
    "RecordResult",
    "RecordStatus",
    "RetryPolicy",
    "TokenInfo",
    "WolkvoxClient",
]
