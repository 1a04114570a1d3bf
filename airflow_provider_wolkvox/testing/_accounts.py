"""The tokens the fake accepts, their quota use and their requests in flight."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import TypeVar

from airflow_provider_wolkvox.api import (
    ERROR_FORBIDDEN,
    MAX_IN_FLIGHT_PER_TOKEN,
    MSG_QUOTA_EXCEEDED,
    MSG_TOO_MANY_SIMULTANEOUS,
)
from airflow_provider_wolkvox.testing._clock import QuotaRestart
from airflow_provider_wolkvox.testing._faults import Injection
from airflow_provider_wolkvox.testing._wire import Refusal

_T = TypeVar("_T")


@dataclass(frozen=True)
class FakeToken:
    """A token the fake accepts.

    :param token: the ``Wolkvox-Token`` header value.
    :param operation: the CRM operation the token belongs to.
    :param quota: the token's daily quota; None for the server's ``quota``.
    """

    token: str = field(repr=False)
    operation: str
    quota: int | None = None


@dataclass
class Account:
    """A token's configuration and counters; guarded by the lock of its :class:`Accounts`."""

    operation: str
    quota: int
    used: int = 0
    in_flight: int = 0
    max_in_flight: int = 0


class Accounts:
    """The accounts of the accepted tokens, thread-safe.

    :param tokens: the tokens; the first one's operation is the default operation.
    :param quota: the quota of the tokens that do not set their own.
    :param restart: when the used counts restart.
    :raises ValueError: no token.
    """

    def __init__(self, tokens: Iterable[FakeToken], quota: int, restart: QuotaRestart) -> None:
        self._by_token = {
            item.token: Account(item.operation, quota if item.quota is None else item.quota)
            for item in tokens
        }
        if not self._by_token:
            raise ValueError("the fake server needs at least one token")
        self.default_token = next(iter(self._by_token))
        self.default_operation = self._by_token[self.default_token].operation
        self.operations = frozenset(account.operation for account in self._by_token.values())
        self._restart = restart
        self._lock = threading.Lock()

    def get(self, token: str | None) -> Account | None:
        """Return the token's account, or None for a missing or unknown token."""
        return None if token is None else self._by_token.get(token)

    def operation(self, token: str) -> str:
        """Return the token's operation.

        :raises KeyError: an unknown token.
        """
        return self._by_token[token].operation

    def begin(self) -> None:
        """Start counting quota periods now (the server starts)."""
        with self._lock:
            self._restart.begin()

    def admit(self, account: Account, draw: Callable[[], Injection | None]) -> Injection | None:
        """Count a request in flight and charge it, unless the token is at its limits; return its fault.

        :param draw: draws the request's fault, under the lock, so that the quota check and the
            charge stay one step (a fault that models a refused request is not charged).
        :raises Refusal: the token has too many requests in flight, or its quota is spent.
        """
        with self._lock:
            self._restart_if_due()
            if account.in_flight >= MAX_IN_FLIGHT_PER_TOKEN:
                raise Refusal(403, ERROR_FORBIDDEN, MSG_TOO_MANY_SIMULTANEOUS)
            if account.used >= account.quota:
                raise Refusal(403, ERROR_FORBIDDEN, MSG_QUOTA_EXCEEDED)
            injection = draw()
            if injection is None or injection.fault.charges:
                account.used += 1
            account.in_flight += 1
            account.max_in_flight = max(account.max_in_flight, account.in_flight)
        return injection

    def release(self, account: Account) -> None:
        """Count an admitted request out of flight."""
        with self._lock:
            account.in_flight -= 1

    def figures(self, account: Account) -> tuple[int, int, float]:
        """Return the token's quota, its use in this period and the hours until the next restart."""
        with self._lock:
            self._restart_if_due()
            return account.quota, account.used, self._restart.hours_left()

    def used(self, token: str) -> int:
        """Return how many of ``token``'s calls counted against its quota in this period."""
        return self._read(token, lambda account: account.used)

    def max_in_flight(self, token: str) -> int:
        """Return the most admitted requests ``token`` had in flight at once."""
        return self._read(token, lambda account: account.max_in_flight)

    def summary(self) -> list[dict[str, object]]:
        """Return each token's operation, quota, use in this period and most requests in flight at
        once, in the order of the tokens; never the token itself."""
        with self._lock:
            self._restart_if_due()
            return [
                {
                    "operation": account.operation,
                    "quota": account.quota,
                    "quota_used": account.used,
                    "max_in_flight": account.max_in_flight,
                }
                for account in self._by_token.values()
            ]

    def restart(self) -> None:
        """Restart every token's used count now."""
        with self._lock:
            self._zero_use()

    def reset(self) -> None:
        """Forget the counters; requests in flight stay counted."""
        with self._lock:
            self._zero_use()
            for account in self._by_token.values():
                account.max_in_flight = account.in_flight

    def _read(self, token: str, value: Callable[[Account], _T]) -> _T:
        account = self._by_token[token]
        with self._lock:
            self._restart_if_due()
            return value(account)

    def _restart_if_due(self) -> None:
        """Restart the used counts when the quota period ended; call with the lock held."""
        if self._restart.due():
            self._zero_use()

    def _zero_use(self) -> None:
        for account in self._by_token.values():
            account.used = 0
