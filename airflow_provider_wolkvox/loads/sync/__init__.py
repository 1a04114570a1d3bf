"""Data syncs: create, update or skip each record by a key field, spending calls only on what changed."""

from __future__ import annotations

from airflow_provider_wolkvox.loads.sync.engine import Source as SyncSource
from airflow_provider_wolkvox.loads.sync.engine import SyncLoad, sync_source
from airflow_provider_wolkvox.loads.sync.plan import SyncOptions, SyncPlan

__all__ = ["SyncLoad", "SyncOptions", "SyncPlan", "SyncSource", "sync_source"]
