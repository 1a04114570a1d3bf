"""Lineage of the operators: the CRM module they wrote to, for OpenLineage and for Airflow Assets.

The operators import this module at module level; it imports OpenLineage only inside
:func:`operator_lineage`, so that nothing of it is loaded at DAG parse, nor anywhere
``apache-airflow-providers-openlineage`` is absent.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from airflow_provider_wolkvox.assets import SCHEME, module_uri, openlineage_name

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class LineageTarget:
    """Where a task wrote: the CRM server, operation and module, and how many records it wrote."""

    base_url: str
    operation: str
    module: str
    records: int

    @property
    def uri(self) -> str:
        """The module's asset URI, ``wolkvox://<host>/<operation>/<module>``."""
        return module_uri(self.base_url, self.operation, self.module)


def operator_lineage(target: LineageTarget | None) -> Any:
    """An ``OperatorLineage`` with one output dataset, named as the module's asset is.

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
    namespace, name = openlineage_name(target.uri)
    dataset = OutputDataset(
        namespace=namespace,
        name=name,
        outputFacets={"outputStatistics": OutputStatisticsOutputDatasetFacet(rowCount=target.records)},
    )
    return OperatorLineage(outputs=[dataset])


def record_outlet_counts(
    outlets: Iterable[Any], context: Any, target: LineageTarget, counts: Mapping[str, Any]
) -> None:
    """Attach ``counts`` to the outlet event of each ``wolkvox://`` asset in ``outlets``."""
    for outlet in outlets:
        uri = getattr(outlet, "uri", "") or ""
        if not uri.startswith(f"{SCHEME}://"):
            continue
        if uri != target.uri:
            log.warning(
                "outlet %s is not the module this task wrote to (%s); its event gets the counts",
                uri,
                target.uri,
            )
        context["outlet_events"][outlet].extra.update(counts)
