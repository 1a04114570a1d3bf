"""Data syncs: create, update or skip each record by a key field, spending calls only on what changed."""

from __future__ import annotations

from airflow_provider_wolkvox.client.sync.engine import UpsertLoad
from airflow_provider_wolkvox.client.sync.plan import SyncOptions, SyncPlan

__all__ = ["SyncOptions", "SyncPlan", "UpsertLoad"]
