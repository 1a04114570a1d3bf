"""The retry policy (``client/retry.py``) on an injected clock and jitter: no waits, exact values.

The rules (its docstrings and docs/retries-and-crash-safety.md): exponential backoff with full
jitter, ``base_delay`` doubling up to ``max_delay`` per wait, for as long as the time budget from
the first try allows (the wait included), ``max_attempts`` tries at most; at most one log line a
minute per request. Refusals that were not processed are retried for any call; failures after the
request was sent only for idempotent calls; fail-fast errors never.
"""

from __future__ import annotations

from typing import Any

import pytest

from airflow_provider_wolkvox.client import retry
from airflow_provider_wolkvox.client.retry import RETRY_LOG_INTERVAL, Backoff, RetryPolicy, is_retryable
from airflow_provider_wolkvox.exceptions import (
    WolkvoxAuthError,
    WolkvoxBadRequestError,
    WolkvoxConcurrencyLimitError,
    WolkvoxConfigError,
    WolkvoxConnectionError,
    WolkvoxDeleteGuardError,
    WolkvoxError,
    WolkvoxInputError,
    WolkvoxMaintenanceError,
    WolkvoxMalformedResponseError,
    WolkvoxNoAnswerError,
    WolkvoxOutcomeUnknownError,
    WolkvoxQuotaExceededError,
    WolkvoxQuotaReserveError,
    WolkvoxRateLimitError,
    WolkvoxServerError,
    WolkvoxStateLockedError,
    WolkvoxStateWriteError,
    WolkvoxTLSError,
    WolkvoxTransientError,
    WolkvoxUncertainError,
    WolkvoxUnreadableIdError,
)

START = 1000.0


class Clock:
    """``time.monotonic`` as the test sets it."""

    def __init__(self) -> None:
        self.now = START

    def monotonic(self) -> float:
        return self.now


class Jitter:
    """``random.uniform`` drawing ``fraction`` of the way from its low to its high bound."""

    def __init__(self, fraction: float = 1.0) -> None:
        self.fraction = fraction
        self.bounds: list[tuple[float, float]] = []

    def uniform(self, low: float, high: float) -> float:
        self.bounds.append((low, high))
        return low + (high - low) * self.fraction


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    fake = Clock()
    monkeypatch.setattr(retry, "time", fake)
    return fake


@pytest.fixture
def jitter(monkeypatch: pytest.MonkeyPatch) -> Jitter:
    fake = Jitter()
    monkeypatch.setattr(retry, "random", fake)
    return fake


def test_the_default_policy_is_the_documented_one() -> None:
    # docs/retries-and-crash-safety.md: 0.1 s doubling, at most 5 s per wait, a 5-minute budget.
    assert RetryPolicy() == RetryPolicy(base_delay=0.1, max_delay=5.0, time_budget=300.0, max_attempts=None)


DELAYS = [
    # The cap of each wait (what full jitter draws up to): doubling from base_delay, capped at max_delay.
    pytest.param(RetryPolicy(), [0.1, 0.2, 0.4, 0.8, 1.6, 3.2, 5.0, 5.0, 5.0], id="default-doubles-to-5s"),
    pytest.param(RetryPolicy(base_delay=1.0, max_delay=3.0), [1.0, 2.0, 3.0, 3.0], id="capped"),
    pytest.param(RetryPolicy(base_delay=0.0), [0.0, 0.0, 0.0], id="no-wait"),
    # max_attempts counts every try, the first included: n tries are n - 1 waits.
    pytest.param(RetryPolicy(max_attempts=3), [0.1, 0.2, None, None], id="three-tries"),
    pytest.param(RetryPolicy(max_attempts=1), [None], id="one-try"),
    # No attempt limit: as many as the budget allows (the clock stands still here).
    pytest.param(RetryPolicy(max_delay=0.1), [0.1] * 50, id="unlimited-tries"),
]


@pytest.mark.parametrize(("policy", "delays"), DELAYS)
def test_next_delay(clock: Clock, jitter: Jitter, policy: RetryPolicy, delays: list[float | None]) -> None:
    backoff = policy.backoff()
    assert (backoff.policy, backoff.tries, backoff.started) == (policy, 1, START)
    got = [backoff.next_delay() for _ in delays]
    assert got == delays  # exact: doubling a float is exact
    waits = sum(delay is not None for delay in delays)
    assert backoff.tries == 1 + waits  # a try counted per wait given, none for a refusal
    # Full jitter: each wait is drawn from 0 up to its cap.
    assert jitter.bounds == [(0.0, delay) for delay in delays if delay is not None]


def test_a_request_retried_very_often_still_waits_max_delay(clock: Clock, jitter: Jitter) -> None:
    backoff = Backoff(RetryPolicy(time_budget=float("inf")))
    backoff.tries = 5000  # 2 ** 4999 would overflow a float
    assert backoff.next_delay() == 5.0


BUDGET = [
    # (seconds since the first try, the wait expected or None): the wait must end within the budget.
    pytest.param(1.0, [(0.0, 1.0), (7.0, 2.0), (8.5, None)], id="cap-past-the-budget"),
    pytest.param(1.0, [(0.0, 1.0), (8.0, 2.0), (10.0, None)], id="ending-on-the-budget-is-allowed"),
    pytest.param(1.0, [(10.0, None), (0.0, 1.0)], id="a-refusal-counts-no-try"),
    # The drawn wait counts, not its cap: half of 4 s still fits at 8 s.
    pytest.param(0.5, [(0.0, 0.5), (0.0, 1.0), (8.0, 2.0), (9.0, None)], id="the-drawn-wait-counts"),
]


@pytest.mark.parametrize(("fraction", "steps"), BUDGET)
def test_the_time_budget(
    clock: Clock, jitter: Jitter, fraction: float, steps: list[tuple[float, float | None]]
) -> None:
    jitter.fraction = fraction
    backoff = RetryPolicy(base_delay=1.0, max_delay=4.0, time_budget=10.0).backoff()
    got = []
    for elapsed, _ in steps:
        clock.now = START + elapsed
        assert backoff.elapsed == elapsed
        got.append(backoff.next_delay())
    assert got == [delay for _, delay in steps]


def test_due_for_log_once_a_minute(clock: Clock) -> None:
    assert RETRY_LOG_INTERVAL == 60.0
    backoff = RetryPolicy().backoff()
    due = []
    for elapsed in (0.0, 0.5, 59.9, 60.0, 61.0, 119.9, 120.0, 500.0):
        clock.now = START + elapsed
        due.append(backoff.due_for_log())
    # The first retry, then a minute after the last line logged.
    assert due == [True, False, False, True, False, False, True, True]


# Every error the client raises: is it retried for a non-idempotent call (an insert) and for an
# idempotent one (a read, an update)?
RETRYABLE: list[Any] = [
    # Refused without being processed: retried for any call.
    pytest.param(WolkvoxTransientError, True, True, id="transient"),
    pytest.param(WolkvoxConcurrencyLimitError, True, True, id="simultaneous"),
    pytest.param(WolkvoxRateLimitError, True, True, id="429"),
    pytest.param(WolkvoxMaintenanceError, True, True, id="maintenance"),
    pytest.param(WolkvoxConnectionError, True, True, id="could-not-connect"),
    # Reached the server without a usable answer: retried for idempotent calls only.
    pytest.param(WolkvoxUncertainError, False, True, id="uncertain"),
    pytest.param(WolkvoxNoAnswerError, False, True, id="no-answer"),
    pytest.param(WolkvoxServerError, False, True, id="5xx"),
    pytest.param(WolkvoxMalformedResponseError, False, True, id="unreadable-200"),
    pytest.param(WolkvoxError, False, True, id="base-not-fail-fast"),
    # Fail fast: never retried.
    pytest.param(WolkvoxConfigError, False, False, id="config"),
    pytest.param(WolkvoxTLSError, False, False, id="tls"),
    pytest.param(WolkvoxInputError, False, False, id="input"),
    pytest.param(WolkvoxAuthError, False, False, id="token"),
    pytest.param(WolkvoxQuotaExceededError, False, False, id="quota"),
    pytest.param(WolkvoxQuotaReserveError, False, False, id="quota-reserve"),
    pytest.param(WolkvoxBadRequestError, False, False, id="4xx"),
    pytest.param(WolkvoxUnreadableIdError, False, False, id="unreadable-id"),
    pytest.param(WolkvoxStateLockedError, False, False, id="state-locked"),
    pytest.param(WolkvoxStateWriteError, False, True, id="state-write"),
    pytest.param(WolkvoxDeleteGuardError, False, False, id="delete-guard"),
    pytest.param(WolkvoxOutcomeUnknownError, False, False, id="outcome-unknown"),
]


@pytest.mark.parametrize(("error", "for_insert", "for_read"), RETRYABLE)
def test_is_retryable(error: type[WolkvoxError], for_insert: bool, for_read: bool) -> None:
    # Some errors carry what they are about as well.
    about: dict[type[WolkvoxError], dict[str, object]] = {
        WolkvoxStateLockedError: {"state": "s", "holder": "h"},
        WolkvoxDeleteGuardError: {"deletes": 3, "allowed": 1, "tracked": 10},
    }
    made = error("x", **about.get(error, {}))  # type: ignore[arg-type]
    assert is_retryable(made, idempotent=False) is for_insert
    assert is_retryable(made, idempotent=True) is for_read


def test_the_table_names_every_error() -> None:
    import airflow_provider_wolkvox.exceptions as exceptions

    every = {
        value
        for value in vars(exceptions).values()
        if isinstance(value, type) and issubclass(value, WolkvoxError)
    }
    assert every == {param.values[0] for param in RETRYABLE}
