"""A sync's options, and its plan: which keys to look up, how, and what that costs in calls."""

from __future__ import annotations

from dataclasses import dataclass

from airflow_provider_wolkvox import api
from airflow_provider_wolkvox.exceptions import WolkvoxInputError
from airflow_provider_wolkvox.loads.options import DEFAULT_BATCH_SIZE, DEFAULT_PROGRESS_INTERVAL, LoadOptions
from airflow_provider_wolkvox.loads.records import PreparedRecord
from airflow_provider_wolkvox.loads.results import RecordResult

MODES = ("upsert", "insert_only", "update_only", "mirror")
LOOKUPS = ("auto", "query", "scan")
#: With ``lookup="auto"`` and no module size known, at most this many keys are looked up one by one.
AUTO_QUERY_LIMIT = 100
# A scan reads the boundary second of each page again: a margin on the ideal ceil(M / limit).
_SCAN_MARGIN = 1.2
#: A mirror sync deletes at most this fraction of the keys its state tracks unless told otherwise...
DEFAULT_MAX_DELETES = 0.1
#: ...and a fraction allows at least this many deletes, so that a small state can lose a few keys.
MIN_DELETES_ALLOWED = 10


@dataclass(frozen=True, kw_only=True)
class SyncOptions:
    """How a sync runs.

    :param key_field: the field that names a record in both the input and the CRM (an e-mail, an id).
    :param mode: ``"upsert"`` (create absent keys, update present ones), ``"insert_only"`` (create
        absent keys, skip present ones), ``"update_only"`` (update present keys, skip absent ones:
        never create) or ``"mirror"`` (as ``upsert``, and delete the records of the keys the sync
        state tracks that the input no longer holds; needs a sync state).
    :param lookup: how to learn which keys the CRM holds: ``"query"`` (one ``query.php`` call per
        key), ``"scan"`` (read the module by creation date) or ``"auto"`` (the cheaper, see docs/syncs.md).
    :param refresh: look every key up in the CRM, ignoring what the sync state says.
    :param batch_size: records per ``insertMany.php`` call of the creates.
    :param max_in_flight: requests in flight at once, 1 or 2.
    :param progress_interval: seconds between progress lines in the log.
    :param dry_run: look up what the sync needs, write nothing (no create, update, delete, nor the
        state), and say what it would write and at what cost (``SyncLoad.dry_run``).
    :param max_deletes: the most deletes a ``"mirror"`` sync may make: a count, or a fraction (0 to
        1) of the keys its state tracks, allowing at least :data:`MIN_DELETES_ALLOWED`. More, and the
        sync stops before its first call (``WolkvoxDeleteGuardError``).
    :raises WolkvoxInputError: an option out of range.
    """

    key_field: str
    mode: str = "upsert"
    lookup: str = "auto"
    refresh: bool = False
    batch_size: int = DEFAULT_BATCH_SIZE
    max_in_flight: int = api.MAX_IN_FLIGHT_PER_TOKEN
    progress_interval: float = DEFAULT_PROGRESS_INTERVAL
    dry_run: bool = False
    max_deletes: int | float = DEFAULT_MAX_DELETES

    def __post_init__(self) -> None:
        if not isinstance(self.key_field, str) or not self.key_field.strip():
            raise WolkvoxInputError(f"key_field must be a field name, got {self.key_field!r}")
        if self.mode not in MODES:
            raise WolkvoxInputError(f"mode must be one of {', '.join(MODES)}, got {self.mode!r}")
        if self.lookup not in LOOKUPS:
            raise WolkvoxInputError(f"lookup must be one of {', '.join(LOOKUPS)}, got {self.lookup!r}")
        if not isinstance(self.dry_run, bool):
            raise WolkvoxInputError(f"dry_run must be True or False, got {self.dry_run!r}")
        self.delete_limit(0)  # checks max_deletes
        self.load_options  # noqa: B018 - checks batch_size and max_in_flight

    def delete_limit(self, tracked: int) -> int:
        """The most deletes ``max_deletes`` allows a mirror sync whose state tracks ``tracked`` keys.

        :raises WolkvoxInputError: ``max_deletes`` neither a count nor a fraction from 0 to 1.
        """
        limit = self.max_deletes
        if type(limit) is int and limit >= 0:
            return limit
        if type(limit) is float and 0.0 <= limit <= 1.0:
            return max(MIN_DELETES_ALLOWED, int(limit * tracked))
        raise WolkvoxInputError(
            "max_deletes must be a number of deletes (an int, 0 or more) or a fraction of the tracked "
            f"keys (a float from 0.0 to 1.0), got {limit!r}"
        )

    @property
    def load_options(self) -> LoadOptions:
        """The options of the sync's creates: lost answers are settled by the key."""
        return LoadOptions(
            batch_size=self.batch_size,
            max_in_flight=self.max_in_flight,
            dedupe_field=self.key_field,
            progress_interval=self.progress_interval,
        )


@dataclass
class Decision:
    """What to do with one record: a result already, or a create, or an update of ``fields``."""

    record: PreparedRecord
    key: str
    result: RecordResult | None = None
    update_id: str | None = None
    fields: tuple[str, ...] = ()
    #: The result is an earlier try's (by the journal): no work of this try.
    recalled: bool = False


@dataclass
class SyncPlan:
    """What a sync knows before its first call, and what it will do to learn the rest."""

    records: int = 0
    #: Records an earlier try of the task wrote (by its journal): nothing to look up or write.
    done: int = 0
    #: Keys the sync state knows, and of those the records whose values changed since.
    known: int = 0
    changed: int = 0
    #: Keys to look up in the CRM, and how: "query", "scan" or "none".
    to_look_up: int = 0
    lookup: str = "none"
    #: The module's record count as the last sync saw it, if known.
    module_size: int | None = None
    #: A mirror sync's keys tracked by the state, and of those the keys absent from the input.
    tracked: int = 0
    to_delete: int = 0

    def choose(self, lookup: str) -> None:
        """Pick the look-up: as asked, or for ``"auto"`` the one of fewer calls."""
        if self.to_look_up == 0:
            self.lookup = "none"
        elif lookup != "auto":
            self.lookup = lookup
        elif self.module_size is None:
            self.lookup = "query" if self.to_look_up <= AUTO_QUERY_LIMIT else "scan"
        else:
            self.lookup = "scan" if self.scan_calls < self.to_look_up else "query"

    @property
    def scan_calls(self) -> int:
        """Calls a scan of the module costs, about; 1 when its size is not known."""
        size = self.module_size or 0
        return max(1, -(-int(size * _SCAN_MARGIN) // api.QUERY_DATES_LIMIT))

    @property
    def lookup_calls(self) -> int:
        return {"none": 0, "query": self.to_look_up, "scan": self.scan_calls}[self.lookup]

    def describe(
        self, module: str, key_field: str, *, mode: str = "upsert", batch_size: int = DEFAULT_BATCH_SIZE
    ) -> str:
        """The plan for the log in plain words, with the calls it will cost, e.g. "wolkvox sync of module
        'contacts' by 'Email': 20,000 keys: 19,800 known from the state (150 changed), 200 to look up
        (200 query.php calls), then about 2 insertMany and 150 update calls, plus one update call per
        looked-up key found changed."

        The writes are an estimate before the look-ups: as if every looked-up key were new (``mode``
        permitting), each of them found changed adding an update call.
        """
        parts = []
        if self.done:
            parts.append(f"{self.done:,} written by an earlier try (no call)")
        if self.known:
            parts.append(f"{self.known:,} known from the state ({self.changed:,} changed)")
        if self.lookup == "query":
            parts.append(f"{self.to_look_up:,} to look up ({_calls(self.to_look_up, 'query.php')})")
        elif self.lookup == "scan":
            size = (
                f"about {_calls(self.scan_calls, 'queryDates.php')} to read its {self.module_size:,} records"
                if self.module_size is not None
                else "about one queryDates.php call per 1,000 records, its size not known yet"
            )
            parts.append(
                f"{self.to_look_up:,} to look up by a scan of the module ({size}, "
                f"instead of {_calls(self.to_look_up, 'query.php')})"
            )
        else:
            parts.append("nothing to look up")
        creates = -(-self.to_look_up // batch_size) if mode != "update_only" else 0
        updates = self.changed if mode != "insert_only" else 0
        writes = [(count, name) for count, name in ((creates, "insertMany"), (updates, "update")) if count]
        tail = ""
        if writes:
            listed = " and ".join(f"{count:,} {name}" for count, name in writes)
            tail = f"then {'about ' if creates else ''}{listed} call{'' if writes[-1][0] == 1 else 's'}"
        if self.to_look_up and mode != "insert_only":
            more = "one update call per looked-up key found changed"
            tail = f"{tail}, plus {more}" if tail else f"then {more}"
        parts.append(tail or "nothing to write")
        if mode == "mirror" and not self.to_delete:
            parts.append("and no tracked key to delete")
        elif mode == "mirror":
            deletes = _calls(-(-self.to_delete // batch_size), "delete.php")
            parts.append(
                f"and {self.to_delete:,} of the {self.tracked:,} tracked keys to delete (about {deletes})"
            )
        head = f"wolkvox sync of module {module!r} by {key_field!r}: {self.records:,} keys"
        return f"{head}: {', '.join(parts)}."


def _calls(count: int, endpoint: str) -> str:
    return f"{count:,} {endpoint} call{'' if count == 1 else 's'}"
