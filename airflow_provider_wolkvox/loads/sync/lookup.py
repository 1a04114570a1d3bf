"""Learning which keys the CRM holds: a ``query.php`` call per key, or a scan of the whole module.

A per-key look-up costs one call per key; a scan reads the module by creation date
(``queryDates.php``), about ``ceil(M / 1000)`` calls for a module of M records, whatever the number
of keys. Both name a key by its identity (``compare.key_text``): a look-up sends that text, and both
check each returned record's key themselves, the CRM's matching rules being not public. A record
holding its key in another form (``"a@x.com "``, ``"5.0"`` where the identity is ``"5"``) is found by
a scan; whether ``query.php`` finds it depends on those rules.
"""

from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from airflow_provider_wolkvox import api
from airflow_provider_wolkvox.client.client import WolkvoxClient
from airflow_provider_wolkvox.loads.compare import key_holders, key_text
from airflow_provider_wolkvox.loads.pipeline import ordered
from airflow_provider_wolkvox.loads.progress import Progress
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
    progress: Progress | None = None,
) -> int:
    """Look the index's keys to look up up with ``query.php``, each by its identity's text; return
    how many were looked up.

    :param progress: ticked with the count of keys looked up so far.
    """

    def query(key: str) -> tuple[str, list[dict[str, Any]]]:
        return key, look_up_key(client, operation, module, key_field, key)

    looked_up = 0
    with ThreadPoolExecutor(in_flight, thread_name_prefix="wolkvox-lookup") as pool:
        keys = index.to_look_up(unfound_only=unfound_only)
        for key, holders in ordered(pool, query, keys, ahead=in_flight):
            index.found(key, holders)
            looked_up += 1
            if progress is not None:
                progress.tick(looked_up)
    return looked_up


def look_up_key(
    client: WolkvoxClient, operation: str, module: str, key_field: str, key: str
) -> list[dict[str, Any]]:
    """The CRM records holding ``key`` (an identity, ``compare.key_text``), by one ``query.php`` call
    that sends that text."""
    return key_holders(client.query(operation, module, key_field, key), key_field, key)


def scan_module(
    client: WolkvoxClient, operation: str, module: str, key_field: str, index: SyncIndex
) -> tuple[int, bool]:
    """Read the whole module and note the records holding a key to look up.

    The module is read by creation windows, whatever the order ``queryDates.php`` lists records in
    (``windows.created_between``): each record is seen once.

    :return: the module's record count as read, and whether it was read whole (a second holding
        more records than an answer shows cannot be; the rest of the module is read all the same).
    """
    records = 0
    calls_before = client.calls
    try:
        for page in created_between(client, operation, module, *_ALL_TIME):
            records += len(page)
            for record in page:
                key = key_text(record.get(key_field))
                if key is not None and record.get(api.ID_FIELD) and index.looks_up(key):
                    index.found(key, [record])
    except WindowUnreadable as error:
        log.warning(
            "wolkvox: the scan of module %r read %d records (queryDates.php calls: %d) but not the whole "
            "module: %s; the keys it did not see are looked up one by one",
            module,
            records,
            client.calls - calls_before,
            error,
        )
        return records, False
    log.info(
        "wolkvox: scanned module %r: %d records (queryDates.php calls: %d)",
        module,
        records,
        client.calls - calls_before,
    )
    return records, True
