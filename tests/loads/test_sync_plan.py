"""A sync's plan (``loads/sync/plan.py``): the look-up it chooses, its cost in calls, its log line.

The rules (``SyncPlan.choose`` and docs/syncs.md): nothing to look up → no look-up; ``"query"`` and
``"scan"`` as asked; ``"auto"`` with the module's size known scans when the scan costs fewer calls
than one ``query.php`` per key, and with no size known looks up at most 100 keys one by one and
scans beyond that. A scan costs about one call per 1,000 records, with a 20 % margin.
"""

from __future__ import annotations

from typing import Any

import pytest

from airflow_provider_wolkvox.loads.sync.plan import SyncPlan

CHOOSE = [
    # Nothing to look up: no look-up, whatever was asked.
    pytest.param(0, None, "auto", "none", id="nothing-auto"),
    pytest.param(0, None, "query", "none", id="nothing-query"),
    pytest.param(0, 5000, "scan", "none", id="nothing-scan"),
    # As asked, even when the other would cost fewer calls.
    pytest.param(5, None, "query", "query", id="query-asked"),
    pytest.param(5000, 10, "query", "query", id="query-asked-scan-cheaper"),
    pytest.param(5, None, "scan", "scan", id="scan-asked"),
    pytest.param(5, 1_000_000, "scan", "scan", id="scan-asked-query-cheaper"),
    # "auto" with no module size: at most 100 keys one by one, a scan beyond.
    pytest.param(1, None, "auto", "query", id="auto-unknown-size-one-key"),
    pytest.param(100, None, "auto", "query", id="auto-unknown-size-at-the-limit"),
    pytest.param(101, None, "auto", "scan", id="auto-unknown-size-past-the-limit"),
    # "auto" with the size: a scan only when it costs fewer calls (10,000 records: 12 calls).
    pytest.param(12, 10_000, "auto", "query", id="auto-a-tie-is-a-query"),
    pytest.param(13, 10_000, "auto", "scan", id="auto-scan-one-call-cheaper"),
    pytest.param(500, 1_000_000, "auto", "query", id="auto-many-keys-in-a-huge-module"),
    pytest.param(5, 100, "auto", "scan", id="auto-few-keys-in-a-small-module"),
    pytest.param(1, 0, "auto", "query", id="auto-empty-module-one-key"),
    pytest.param(2, 0, "auto", "scan", id="auto-empty-module-two-keys"),
]


@pytest.mark.parametrize(("to_look_up", "module_size", "asked", "expected"), CHOOSE)
def test_choose(to_look_up: int, module_size: int | None, asked: str, expected: str) -> None:
    plan = SyncPlan(records=to_look_up, to_look_up=to_look_up, module_size=module_size)
    plan.choose(asked)
    assert plan.lookup == expected


SCAN_CALLS = [
    pytest.param(None, 1, id="size-unknown"),
    pytest.param(0, 1, id="empty-module"),
    pytest.param(833, 1, id="with-margin-under-one-answer"),
    pytest.param(834, 1, id="with-margin-one-full-answer"),
    pytest.param(835, 2, id="with-margin-over-one-answer"),
    pytest.param(2500, 3, id="2500"),
    pytest.param(10_000, 12, id="10000"),
    pytest.param(1_000_000, 1200, id="a-million"),
]


@pytest.mark.parametrize(("module_size", "expected"), SCAN_CALLS)
def test_scan_calls(module_size: int | None, expected: int) -> None:
    assert SyncPlan(module_size=module_size).scan_calls == expected


LOOKUP_CALLS = [
    pytest.param("none", 0, None, 0, id="none"),
    pytest.param("query", 40, 10_000, 40, id="query-one-per-key"),
    pytest.param("scan", 40, 10_000, 12, id="scan-by-the-module-size"),
    pytest.param("scan", 4000, None, 1, id="scan-size-unknown"),
]


@pytest.mark.parametrize(("lookup", "to_look_up", "module_size", "expected"), LOOKUP_CALLS)
def test_lookup_calls(lookup: str, to_look_up: int, module_size: int | None, expected: int) -> None:
    plan = SyncPlan(to_look_up=to_look_up, lookup=lookup, module_size=module_size)
    assert plan.lookup_calls == expected


HEAD = "wolkvox sync of module 'contacts' by 'Email': "
DESCRIBE = [
    pytest.param(
        SyncPlan(records=10, known=10, changed=2),
        {},
        "10 keys: 10 known from the state (2 changed), nothing to look up, then 2 update calls.",
        id="nothing-to-look-up",
    ),
    pytest.param(
        SyncPlan(records=10, known=10),
        {},
        "10 keys: 10 known from the state (0 changed), nothing to look up, nothing to write.",
        id="nothing-to-do",
    ),
    pytest.param(
        SyncPlan(records=20, done=5, known=3, changed=1, to_look_up=12, lookup="query"),
        {},
        "20 keys: 5 written by an earlier try (no call), 3 known from the state (1 changed), "
        "12 to look up (12 query.php calls), then about 1 insertMany and 1 update call, "
        "plus one update call per looked-up key found changed.",
        id="query-after-an-earlier-try",
    ),
    pytest.param(
        SyncPlan(records=20_000, known=19_800, changed=150, to_look_up=200, lookup="query"),
        {},
        "20,000 keys: 19,800 known from the state (150 changed), 200 to look up (200 query.php calls), "
        "then about 2 insertMany and 150 update calls, plus one update call per looked-up key found changed.",
        id="the-issue's-example",
    ),
    pytest.param(
        SyncPlan(records=3000, to_look_up=3000, lookup="scan", module_size=10_000),
        {"batch_size": 500},
        "3,000 keys: 3,000 to look up by a scan of the module (about 12 queryDates.php calls to read its "
        "10,000 records, instead of 3,000 query.php calls), then about 6 insertMany calls, "
        "plus one update call per looked-up key found changed.",
        id="scan-size-known",
    ),
    pytest.param(
        SyncPlan(records=500, known=4, changed=4, to_look_up=496, lookup="scan"),
        {"mode": "update_only"},
        "500 keys: 4 known from the state (4 changed), 496 to look up by a scan of the module (about one "
        "queryDates.php call per 1,000 records, its size not known yet, instead of 496 query.php calls), "
        "then 4 update calls, plus one update call per looked-up key found changed.",
        id="scan-size-unknown-update-only",
    ),
    pytest.param(
        SyncPlan(records=101, known=100, changed=7, to_look_up=1, lookup="query"),
        {"mode": "insert_only"},
        "101 keys: 100 known from the state (7 changed), 1 to look up (1 query.php call), "
        "then about 1 insertMany call.",
        id="insert-only-never-updates",
    ),
    pytest.param(
        SyncPlan(records=3, to_look_up=3, lookup="query"),
        {"mode": "update_only"},
        "3 keys: 3 to look up (3 query.php calls), then one update call per looked-up key found changed.",
        id="update-only-nothing-known",
    ),
]


@pytest.mark.parametrize(("plan", "options", "expected"), DESCRIBE)
def test_describe(plan: SyncPlan, options: dict[str, Any], expected: str) -> None:
    assert plan.describe("contacts", "Email", **options) == HEAD + expected
