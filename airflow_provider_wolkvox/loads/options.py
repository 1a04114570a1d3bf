"""How a bulk load sends its records: one options object, checked once, shared by every layer.

It is the one place where a load's settings, their defaults, checks and documentation live: the
hook's ``insert_many``/``iter_insert_many`` and the operators build it by keyword.
"""

from __future__ import annotations

from dataclasses import dataclass

from airflow_provider_wolkvox import api
from airflow_provider_wolkvox.exceptions import WolkvoxInputError

DEFAULT_BATCH_SIZE = 100
#: The vendor's other product takes 10,000 records per upload: the outer bound we accept.
MAX_BATCH_SIZE = 10_000
DEFAULT_PROGRESS_INTERVAL = 10.0
# Percent of a load's calls (at least SETTLE_RESERVE_MIN) its quota check keeps for settling lost answers.
SETTLE_RESERVE_PERCENT = 2
SETTLE_RESERVE_MIN = 2


def settle_reserve(calls: int) -> int:
    """Calls to keep free, beyond ``calls``, for settling the lost answers of a load with a dedupe field."""
    return max(SETTLE_RESERVE_MIN, -(-calls * SETTLE_RESERVE_PERCENT // 100))


@dataclass(frozen=True, kw_only=True)
class LoadOptions:
    """The settings of one bulk load.

    :param batch_size: records per ``insertMany.php`` call (1 to 10,000).
    :param single: one ``insert.php`` call per record instead of batches.
    :param max_in_flight: requests in flight at once, 1 or 2 (the CRM's limit per token).
    :param dedupe_field: a field unique per record: records whose request may have left without an
        answer are looked up by it, and sent again only when absent.
    :param progress_interval: seconds between progress lines in the log.
    :param quota_check: read the token's quota first and fail before inserting anything when the
        calls needed exceed the calls left today (one call; the load needs its record count).
    :raises WolkvoxInputError: an option out of range.
    """

    batch_size: int = DEFAULT_BATCH_SIZE
    single: bool = False
    max_in_flight: int = api.MAX_IN_FLIGHT_PER_TOKEN
    dedupe_field: str | None = None
    progress_interval: float = DEFAULT_PROGRESS_INTERVAL
    quota_check: bool = False

    def __post_init__(self) -> None:
        if type(self.batch_size) is not int or not 1 <= self.batch_size <= MAX_BATCH_SIZE:
            raise WolkvoxInputError(
                f"batch_size must be an integer from 1 to {MAX_BATCH_SIZE}, got {self.batch_size!r}"
            )
        if type(self.max_in_flight) is not int or not 1 <= self.max_in_flight <= api.MAX_IN_FLIGHT_PER_TOKEN:
            raise WolkvoxInputError(
                f"max_in_flight must be 1 or {api.MAX_IN_FLIGHT_PER_TOKEN} (the CRM's limit per token), "
                f"got {self.max_in_flight!r}"
            )
        if self.dedupe_field is not None and (
            not isinstance(self.dedupe_field, str) or not self.dedupe_field
        ):
            raise WolkvoxInputError(f"dedupe_field must be a field name, got {self.dedupe_field!r}")

    @property
    def records_per_request(self) -> int:
        return 1 if self.single else self.batch_size

    def calls_needed(self, records: int) -> int:
        """API calls ``records`` records need when nothing fails."""
        return -(-records // self.records_per_request)
