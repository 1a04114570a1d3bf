"""OpenLineage for the insert operators: the CRM module they wrote to, with the record count.

Imported lazily by the operators, and importing OpenLineage only inside the call, so that nothing of
it is loaded where ``apache-airflow-providers-openlineage`` is absent.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit


@dataclass(frozen=True)
class LineageTarget:
    """Where a task wrote: the CRM server, operation and module, and how many records it created."""

    base_url: str
    operation: str
    module: str
    records: int


def operator_lineage(target: LineageTarget | None) -> Any:
    """An ``OperatorLineage`` with one output dataset, ``wolkvox://<host>`` / ``<operation>.<module>``.

    None when the task wrote nothing or OpenLineage is not installed.
    """
    if target is None:
        return None
    try:
        from airflow.providers.common.compat.openlineage.facet import (
            OutputDataset,
            OutputStatisticsOutputDatasetFacet,
        )
        from airflow.providers.openlineage.extractors import OperatorLineage
    except ImportError:
        return None
    dataset = OutputDataset(
        namespace=f"wolkvox://{urlsplit(target.base_url).netloc}",
        name=f"{target.operation}.{target.module}",
        outputFacets={"outputStatistics": OutputStatisticsOutputDatasetFacet(rowCount=target.records)},
    )
    return OperatorLineage(outputs=[dataset])
