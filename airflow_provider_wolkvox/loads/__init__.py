"""Bulk loads and syncs on top of the HTTP client: batching, journals, settling lost answers, sync plans.

What this package exports is its API for the hook and the operators; everything else is internal.
Storage (the journal's store, the sync state) is passed in: nothing here does file or Airflow I/O.
"""

from __future__ import annotations

from airflow_provider_wolkvox.loads.bulk import BulkLoad
from airflow_provider_wolkvox.loads.compare import key_text
from airflow_provider_wolkvox.loads.journal import Journal
from airflow_provider_wolkvox.loads.options import DEFAULT_BATCH_SIZE, LoadOptions
from airflow_provider_wolkvox.loads.records import check_module
from airflow_provider_wolkvox.loads.results import (
    InsertManyResult,
    LoadSummary,
    RecordResult,
    RecordStatus,
    UpsertResult,
)
from airflow_provider_wolkvox.loads.sender import insert_one
from airflow_provider_wolkvox.loads.sync import (
    DEFAULT_MAX_DELETES,
    DryRunPlan,
    SyncLoad,
    SyncOptions,
    SyncPlan,
    SyncSource,
    sync_source,
)
from airflow_provider_wolkvox.loads.sync.state import StateStorage

__all__ = [
    "DEFAULT_BATCH_SIZE",
    "DEFAULT_MAX_DELETES",
    "BulkLoad",
    "DryRunPlan",
    "InsertManyResult",
    "Journal",
    "LoadOptions",
    "LoadSummary",
    "RecordResult",
    "RecordStatus",
    "StateStorage",
    "SyncLoad",
    "SyncOptions",
    "SyncPlan",
    "SyncSource",
    "UpsertResult",
    "check_module",
    "insert_one",
    "key_text",
    "sync_source",
]
