"""Learning which keys the CRM holds: a ``query.php`` call per key, or a scan of the whole module.

A per-key look-up costs one call per key; a scan reads the module by creation date
(``queryDates.php``), about ``ceil(M / 1000)`` calls for a module of M records, whatever the number
of keys. Both check each returned record's key themselves: the CRM's matching rules are not public.
"""

from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from airflow_provider_wolkvox import api
from airflow_provider_wolkvox.client.client import WolkvoxClient
from airflow_provider_wolkvox.loads.compare import key_holders, key_text
from airflow_provider_wolkvox.loads.pipeline import ordered
from airflow_provider_wolkvox.loads.sync.index import SyncIndex
from airflow_provider_wolkvox.loads.windows import WindowUnreadable, created_between

log = logging.getLogger(__name__)

# The widest creation window: the CRM created no record before 1970 nor after 2200 (its clock's
# zone does not matter then).
_ALL_TIME = (0, 7_258_118_400)


def look_up_keys(
    client: WolkvoxClient,
    operation: str,
    module: str,
    key_field: str,
    index: SyncIndex,
    *,
    in_flight: int,
    unfound_only: bool = False,
) -> int:
    """Look the index's keys to look up up with ``query.php``; return how many were looked up."""

    def query(item: tuple[str, Any]) -> tuple[str, list[dict[str, Any]]]:
        key, value = item
        matches = client.query(operation, module, key_field, value)
        return key, key_holders(matches, key_field, key)

    looked_up = 0
    with ThreadPoolExecutor(in_flight, thread_name_prefix="wolkvox-lookup") as pool:
        keys = index.to_look_up(unfound_only=unfound_only)
        for key, holders in ordered(pool, query, keys, ahead=in_flight):
            index.found(key, holders)
            looked_up += 1
    return looked_up


def scan_module(
    client: WolkvoxClient, operation: str, module: str, key_field: str, index: SyncIndex
) -> tuple[int, bool]:
    """Read the whole module and note the records holding a key to look up.

    :return: the module's record count as read, and whether it was read whole (a second holding
        more records than an answer shows cannot be).
    """
    records = 0
    try:
        for page in created_between(client, operation, module, *_ALL_TIME):
            records += len(page)
            for record in page:
                key = key_text(record.get(key_field))
                if key is not None and record.get(api.ID_FIELD) and index.looks_up(key):
                    index.found(key, [record])
    except WindowUnreadable as error:
        log.warning("wolkvox: the scan of module %r could not read it whole (%s)", module, error)
        return records, False
    return records, True
