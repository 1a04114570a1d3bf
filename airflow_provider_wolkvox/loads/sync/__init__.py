"""Data syncs: create, update or skip each record by a key field (and, mirroring, delete what left the
input), spending calls only on what changed."""

from __future__ import annotations

from airflow_provider_wolkvox.loads.sync.dry_run import DryRunPlan
from airflow_provider_wolkvox.loads.sync.engine import Source as SyncSource
from airflow_provider_wolkvox.loads.sync.engine import SyncLoad, sync_source
from airflow_provider_wolkvox.loads.sync.plan import DEFAULT_MAX_DELETES, SyncOptions, SyncPlan

__all__ = [
    "DEFAULT_MAX_DELETES",
    "DryRunPlan",
    "SyncLoad",
    "SyncOptions",
    "SyncPlan",
    "SyncSource",
    "sync_source",
]
