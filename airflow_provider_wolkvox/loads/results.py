"""What the client returns: per-record outcomes, bulk-load summaries, token figures."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from airflow_provider_wolkvox.exceptions import WolkvoxError


class RecordStatus(str, enum.Enum):
    """The one state every input record ends in."""

    CREATED = "created"
    #: Created by a batch whose answer could not be matched one-to-one to its records.
    CREATED_ID_UNKNOWN = "created_id_unknown"
    REJECTED = "rejected"
    #: The answer was lost: the record may or may not exist in the CRM.
    OUTCOME_UNKNOWN = "outcome_unknown"
    #: Never stored: the load stopped before it (spent quota, refused token, CRM unavailable).
    NOT_SENT = "not_sent"
    #: A sync changed the fields named in ``fields`` of the record ``wolkvox_id``.
    UPDATED = "updated"
    #: A sync found the CRM holding these values already: nothing was written.
    UNCHANGED = "unchanged"
    #: A sync left the record alone by its mode (present in insert_only, absent in update_only).
    SKIPPED = "skipped"
    #: A sync found several CRM records holding the key (``matches``): nothing was written.
    AMBIGUOUS = "ambiguous"
    #: A mirror sync deleted the record ``wolkvox_id`` of a tracked key absent from its input.
    DELETED = "deleted"
    #: A mirror sync found the record of a tracked key absent from its input gone already.
    ALREADY_ABSENT = "already_absent"


#: States that count as a failure of the record.
FAILED_STATUSES = frozenset(
    {RecordStatus.REJECTED, RecordStatus.OUTCOME_UNKNOWN, RecordStatus.NOT_SENT, RecordStatus.AMBIGUOUS}
)
#: The states of a mirror sync's deletes that leave the key out of the CRM (and of the sync state).
GONE_STATUSES = frozenset({RecordStatus.DELETED, RecordStatus.ALREADY_ABSENT})
#: A result that is no input record's: a tracked key a mirror sync deleted (or failed to); its
#: results line names no position.
NOT_IN_INPUT = -1
#: The states of an insert's records (a sync's take every state).
INSERT_STATUSES = (
    RecordStatus.CREATED,
    RecordStatus.CREATED_ID_UNKNOWN,
    RecordStatus.REJECTED,
    RecordStatus.OUTCOME_UNKNOWN,
    RecordStatus.NOT_SENT,
)


@dataclass(frozen=True, slots=True)
class RecordResult:
    """The outcome of input record ``index`` (0-based position in the input), or of a mirror sync's
    delete of a tracked key absent from the input (``index`` :data:`NOT_IN_INPUT`)."""

    index: int
    status: RecordStatus
    wolkvox_id: str | None = None
    error: str | None = None
    msg: str | None = None
    #: The error behind a failed record, for callers that raise it (not serialised).
    cause: WolkvoxError | None = field(default=None, compare=False, repr=False)
    #: A sync's key of the record.
    key: str | None = None
    #: The fields an update sent.
    fields: tuple[str, ...] | None = None
    #: The ids of the CRM records an ambiguous key matches.
    matches: tuple[str, ...] | None = None

    @property
    def failed(self) -> bool:
        return self.status in FAILED_STATUSES

    @property
    def in_input(self) -> bool:
        """False for the result of a mirror sync's delete, which is no input record's."""
        return self.index != NOT_IN_INPUT

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form, for XCom and results files."""
        row: dict[str, Any] = {
            "index": self.index,
            "status": self.status.value,
            "wolkvox_id": self.wolkvox_id,
        }
        if self.key is not None:
            row["key"] = self.key
        if self.fields is not None:
            row["fields"] = list(self.fields)
        if self.matches is not None:
            row["matches"] = list(self.matches)
        if self.error is not None or self.msg is not None:
            row["error"] = self.error
            row["msg"] = self.msg
        return row


@dataclass
class LoadSummary:
    """Counts of a bulk load, by record status, with the API calls it used and its duration.

    ``calls`` are the requests the CRM took (what its quota charges: lost answers included), and
    ``refused_busy`` apart the requests it refused as a third one in flight on the token (403
    simultaneous, retried by the client; the fake does not charge them, and whether the CRM does is
    not documented).
    """

    counts: dict[RecordStatus, int] = field(default_factory=lambda: dict.fromkeys(INSERT_STATUSES, 0))
    calls: int = 0
    refused_busy: int = 0
    elapsed_seconds: float = 0.0
    #: Why the load stopped before the end of the input, if it did.
    stopped_reason: str | None = None

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    @property
    def failed(self) -> int:
        return sum(self.counts.get(status, 0) for status in FAILED_STATUSES)

    @classmethod
    def of_sync(cls) -> LoadSummary:
        """An empty summary counting every state a sync's records can end in."""
        return cls(dict.fromkeys(RecordStatus, 0))

    @property
    def created(self) -> int:
        """Records created, with or without a known id."""
        return self.counts[RecordStatus.CREATED] + self.counts[RecordStatus.CREATED_ID_UNKNOWN]

    def add(self, result: RecordResult) -> None:
        self.counts[result.status] += 1

    def as_dict(self) -> dict[str, Any]:
        return {
            "total": self.total,
            **{status.value: count for status, count in self.counts.items()},
            "failed": self.failed,
            "calls": self.calls,
            "refused_busy": self.refused_busy,
            "elapsed_seconds": round(self.elapsed_seconds, 3),
            "stopped_reason": self.stopped_reason,
        }


@dataclass
class InsertManyResult:
    """Every record's result in input order, plus the summary."""

    results: list[RecordResult]
    summary: LoadSummary

    @property
    def ids(self) -> list[str | None]:
        """The ``wolkvox_id`` of every input record in order; None where none is known."""
        return [result.wolkvox_id for result in self.results]

    @property
    def failed(self) -> list[RecordResult]:
        return [result for result in self.results if result.failed]


@dataclass
class UpsertResult(InsertManyResult):
    """A sync's results in input order, its summary and the plan it followed."""

    plan: Any = None

    @property
    def ids_by_key(self) -> dict[str, str]:
        """The ``wolkvox_id`` of every key the CRM now holds (created, updated, unchanged, skipped)."""
        return {
            r.key: r.wolkvox_id
            for r in self.results
            if r.key is not None and r.wolkvox_id is not None and r.in_input
        }
