"""What a dry run of a sync found: what the sync would write, and what that costs in calls.

A dry run makes every look-up the sync needs (none for keys its state knows), decides every record
as the sync would, and writes nothing: no create, update or delete, no sync state, no journal note.
It counts the writes the way the sync sends them: creates in the same groups, so the same
``insertMany.php`` batches; one ``update.php`` call per update; deletes ``batch_size`` ids per
``delete.php`` call. Then it reads the token's quota (one call).

The promise: a real run right after, with nothing changed in the input or the CRM in between and no
answer lost, makes exactly :attr:`DryRunPlan.write_calls` write calls (plus its own look-ups, the
same as the dry run's). What can add calls: a write the CRM refuses (its batch is split, its key
looked up), a record deleted or edited in the CRM since the sync state was written (the state is
trusted by both runs alike), a lost answer settled.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from airflow_provider_wolkvox.loads.results import RecordStatus
from airflow_provider_wolkvox.loads.sync.plan import Decision

#: The updates a dry run lists with the fields they would send (names only: values are personal data).
SHOWN_UPDATES = 10

_COUNTED = {
    RecordStatus.UNCHANGED: "unchanged",
    RecordStatus.SKIPPED: "skip",
    RecordStatus.AMBIGUOUS: "ambiguous",
}


@dataclass
class DryRunPlan:
    """What a sync would do: records by what it would do with them, the calls its writes would take,
    and what the dry run itself spent. :meth:`as_dict` is JSON-ready (the operator's XCom)."""

    module: str
    key_field: str
    mode: str
    batch_size: int
    #: Input records, and what the sync would do with each.
    records: int = 0
    create: int = 0
    update: int = 0
    unchanged: int = 0
    skip: int = 0
    ambiguous: int = 0
    #: Records an earlier try of the task wrote (by its journal): nothing more to write.
    done: int = 0
    #: A mirror sync's keys to delete: tracked by the state, absent from the input.
    delete: int = 0
    insert_calls: int = 0
    update_calls: int = 0
    delete_calls: int = 0
    #: How the keys were looked up ("none", "query", "scan"), and the calls the dry run made in all
    #: (look-ups and the token-information call).
    lookup: str = "none"
    calls_used: int = 0
    #: The token's calls left today, read after the look-ups.
    quota_left: int | None = None
    #: A mirror sync's delete guard: the deletes ``max_deletes`` allows, and whether the run would
    #: stop on it (``WolkvoxDeleteGuardError``) before its first call.
    max_deletes: int | None = None
    exceeds_max_deletes: bool = False
    #: The first updates, each (key, the names of the fields it would send).
    updates: list[tuple[str, tuple[str, ...]]] = field(default_factory=list)

    @property
    def write_calls(self) -> int:
        """The write calls the sync would make: ``insertMany.php``, ``update.php`` and ``delete.php``."""
        return self.insert_calls + self.update_calls + self.delete_calls

    def count(self, group: list[Decision]) -> None:
        """Count one group of decisions, as the sync would write it (one batch of creates at most)."""
        creates = 0
        for decision in group:
            self.records += 1
            if decision.result is not None:
                name = _COUNTED.get(decision.result.status, "done")
                setattr(self, name, getattr(self, name) + 1)
            elif decision.update_id is not None:
                self.update += 1
                if len(self.updates) < SHOWN_UPDATES:
                    self.updates.append((decision.key, decision.fields))
            else:
                creates += 1
        self.create += creates
        self.insert_calls += -(-creates // self.batch_size)
        self.update_calls = self.update

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready, for XCom: every count, the calls, the quota and the first updates' field names."""
        return {
            "module": self.module,
            "key_field": self.key_field,
            "mode": self.mode,
            "records": self.records,
            "create": self.create,
            "update": self.update,
            "unchanged": self.unchanged,
            "skip": self.skip,
            "ambiguous": self.ambiguous,
            "done": self.done,
            "delete": self.delete,
            "write_calls": self.write_calls,
            "insert_calls": self.insert_calls,
            "update_calls": self.update_calls,
            "delete_calls": self.delete_calls,
            "lookup": self.lookup,
            "calls_used": self.calls_used,
            "quota_left": self.quota_left,
            "max_deletes": self.max_deletes,
            "exceeds_max_deletes": self.exceeds_max_deletes,
            "updates": [{"key": key, "fields": list(fields)} for key, fields in self.updates],
        }

    def table(self) -> str:
        """The plan for the log, as a table, with the fields the first updates would send (their
        names only, never their values)."""
        rows: list[tuple[str, int | None, str]] = [
            ("create", self.create, _calls(self.insert_calls, "insertMany.php")),
            ("update", self.update, _calls(self.update_calls, "update.php")),
            ("unchanged", self.unchanged, ""),
            ("skip", self.skip, ""),
            (
                "ambiguous",
                self.ambiguous,
                "nothing written: the key matches several records" * bool(self.ambiguous),
            ),
            ("done", self.done, "written by an earlier try" * bool(self.done)),
        ]
        if self.mode == "mirror":
            guard = f"max_deletes allows {self.max_deletes:,}" if self.max_deletes is not None else ""
            if self.exceeds_max_deletes:
                guard += ": the sync would stop before its first call"
            calls = _calls(self.delete_calls, "delete.php")
            rows.append(("delete", self.delete, ", ".join(part for part in (calls, guard) if part)))
        rows += [
            ("write calls", self.write_calls, "what the sync's writes would take"),
            ("calls used", self.calls_used, f"by this dry run: look-ups ({self.lookup}), reading the quota"),
            ("quota left", self.quota_left, "calls left today"),
        ]
        width = max(len(f"{count:,}") if isinstance(count, int) else 1 for _, count, _ in rows)
        lines = [
            f"wolkvox sync plan of module {self.module!r} by {self.key_field!r} (mode {self.mode}; "
            f"a dry run: nothing written), {self.records:,} records:"
        ]
        for name, count, note in rows:
            shown = f"{count:,}" if isinstance(count, int) else "?"
            lines.append(f"  {name:<12} {shown:>{width}}  {note}".rstrip())
        if self.updates:
            lines.append(f"fields each update would send (the first {len(self.updates)}, names only):")
            lines.extend(f"  {key}: {', '.join(fields)}" for key, fields in self.updates)
        return "\n".join(lines)


def _calls(count: int, endpoint: str) -> str:
    return f"{count:,} {endpoint} call{'' if count == 1 else 's'}" if count else ""
