"""Fault injection: what can go wrong while the server handles an admitted request."""

from __future__ import annotations

import enum
import random
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from typing import Any

from airflow_provider_wolkvox.api import (
    ERROR_BAD_REQUEST,
    ERROR_FORBIDDEN,
    MAINTENANCE_MARKERS,
    MSG_QUOTA_EXCEEDED,
    MSG_TOO_MANY_SIMULTANEOUS,
)
from airflow_provider_wolkvox.testing._wire import Reply, error_reply, raw_reply

# Seconds a SLOW answer (or a DROP_THEN_STORE store) waits when the test does not say: past any
# sensible test read timeout.
DEFAULT_SLOW_DELAY = 1.0


class Fault(enum.Enum):
    """A failure the server simulates for one request, after admitting it (token and concurrency checked).

    :attr:`stores` tells whether the server processes the request first, so that a valid insert is
    stored although the client cannot learn it; tests compare the client's claims with that truth.
    """

    #: Answer the given status and body verbatim; nothing is processed.
    RESPOND = "respond"
    #: Close the connection without answering; nothing is processed (the request never arrived).
    DROP_BEFORE = "drop_before"
    #: Process (store) the request, then close the connection without answering.
    STORE_THEN_DROP = "store_then_drop"
    #: Close the connection without answering, then process (store) the request ``delay`` seconds
    #: later, as a back end behind a gateway that gave up on it may. The request keeps its slot of
    #: the token's requests in flight until then, and is logged then.
    DROP_THEN_STORE = "drop_then_store"
    #: Process (store) the request, then answer HTTP 500 with an error envelope.
    STORE_THEN_500 = "store_then_500"
    #: Process (store) the request, then hold the normal answer for ``delay`` seconds.
    SLOW = "slow"
    #: Process (store) the request, then answer HTTP 200 with an HTML page, as a proxy in front might.
    NON_JSON_200 = "non_json_200"
    #: Answer HTTP 200 with an error envelope (body ``code`` 400); nothing is processed.
    ERROR_BODY_200 = "error_body_200"
    #: Answer the maintenance 403 (its ``msg`` holds ``MAINTENANCE``); nothing is processed.
    MAINTENANCE = "maintenance"
    #: Answer the documented 403 for too many simultaneous requests; nothing is processed.
    SIMULTANEOUS = "simultaneous"
    #: Answer the documented 403 for a spent quota, without spending it; nothing is processed.
    QUOTA = "quota"

    @property
    def stores(self) -> bool:
        """Whether the request is processed (a valid insert stored) before the fault hits the answer."""
        return self in _PROCESSED

    @property
    def charges(self) -> bool:
        """Whether the request counts against the token's quota.

        Faults that model a request the server refused or never saw do not; the others were handled.
        """
        return self not in _UNCHARGED


_PROCESSED = frozenset(
    {Fault.STORE_THEN_DROP, Fault.DROP_THEN_STORE, Fault.STORE_THEN_500, Fault.SLOW, Fault.NON_JSON_200}
)
_UNCHARGED = frozenset({Fault.DROP_BEFORE, Fault.MAINTENANCE, Fault.SIMULTANEOUS, Fault.QUOTA})
# Faults that send no answer of their own: they close the connection or send the normal answer late.
_NO_OWN_ANSWER = frozenset({Fault.DROP_BEFORE, Fault.STORE_THEN_DROP, Fault.DROP_THEN_STORE, Fault.SLOW})
_DELAYED = frozenset({Fault.SLOW, Fault.DROP_THEN_STORE})
# Left out of random faults unless named: RESPOND needs an answer; a late store, a delay that suits.
_NOT_RANDOM = frozenset({Fault.RESPOND, Fault.DROP_THEN_STORE})

# The answers of the faults that have one; the vendor's texts for these cases are not public, so the
# wording is ours except for the documented rows.
_PROXY_ERROR_PAGE = (
    "<html><head><title>502 Bad Gateway</title></head><body><h1>502 Bad Gateway</h1></body></html>"
)
_CANNED: dict[Fault, Reply] = {
    Fault.STORE_THEN_500: error_reply(
        500, "INTERNAL SERVER ERROR", "THE SERVER COULD NOT COMPLETE THE REQUEST"
    ),
    Fault.NON_JSON_200: raw_reply(200, _PROXY_ERROR_PAGE),
    Fault.ERROR_BODY_200: raw_reply(
        200,
        {"code": 400, "error": ERROR_BAD_REQUEST, "msg": "THE REQUEST COULD NOT BE PROCESSED", "data": []},
    ),
    Fault.MAINTENANCE: error_reply(
        403, ERROR_FORBIDDEN, f"THE API IS PAUSED FOR {MAINTENANCE_MARKERS[0]}, TRY AGAIN LATER"
    ),
    Fault.SIMULTANEOUS: error_reply(403, ERROR_FORBIDDEN, MSG_TOO_MANY_SIMULTANEOUS),
    Fault.QUOTA: error_reply(403, ERROR_FORBIDDEN, MSG_QUOTA_EXCEEDED),
}


@dataclass(frozen=True)
class Injection:
    """How one faulted request is answered.

    :param fault: the fault.
    :param reply: the fault's own answer; None when it has none (see :data:`_NO_OWN_ANSWER`).
    :param delay: extra seconds before answering (SLOW), or before storing (DROP_THEN_STORE).
    """

    fault: Fault
    reply: Reply | None
    delay: float = 0.0


def make_injection(
    fault: Fault,
    status: int | None = None,
    body: Mapping[str, Any] | str | bytes | None = None,
    delay: float | None = None,
) -> Injection:
    """Check a test's fault arguments and resolve them to an :class:`Injection`.

    ``status`` and ``body`` replace the fault's canned answer; RESPOND has none, so it needs both.
    """
    if delay is not None and fault not in _DELAYED:
        raise ValueError(f"delay applies to Fault.SLOW and Fault.DROP_THEN_STORE only, not to {fault}")
    if fault in _NO_OWN_ANSWER:
        if status is not None or body is not None:
            raise ValueError(f"{fault} sends no answer of its own: status and body do not apply")
        if fault in _DELAYED:
            return Injection(fault, None, DEFAULT_SLOW_DELAY if delay is None else delay)
        return Injection(fault, None)
    canned = _CANNED.get(fault)
    if canned is None:
        if status is None or body is None:
            raise ValueError(f"{fault} needs both status and body")
        return Injection(fault, raw_reply(status, body))
    reply = canned if body is None else raw_reply(canned.status, body)
    return Injection(fault, reply if status is None else replace(reply, status=status))


@dataclass
class _Scripted:
    injection: Injection
    path: str | None
    remaining: int | None  # None: until cleared
    skip: int = 0  # matching requests to let through first


@dataclass
class _RandomRule:
    rate: float
    injections: tuple[Injection, ...]
    rng: random.Random
    path: str | None


class FaultSchedule:
    """The faults a server has been told to inject: scripted ones first, then one random rule.

    Thread-safe; :meth:`draw` is called once per admitted request, in arrival order.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._scripted: list[_Scripted] = []
        self._rule: _RandomRule | None = None

    def script(self, injection: Injection, *, path: str | None, times: int | None, after: int = 0) -> None:
        """Apply ``injection`` to ``times`` requests on ``path`` (None: any path, forever), once
        ``after`` matching requests went through."""
        if times is not None and times < 1:
            raise ValueError(f"times must be at least 1 (or None for ever), not {times}")
        if after < 0:
            raise ValueError(f"after must not be negative, not {after}")
        with self._lock:
            self._scripted.append(_Scripted(injection, path, times, after))

    def randomize(
        self,
        rate: float,
        faults: Iterable[Fault] | None,
        *,
        seed: int | None,
        path: str | None,
        delay: float | None,
    ) -> None:
        """Replace the random rule: each request on ``path`` fails with probability ``rate``."""
        if not 0.0 <= rate <= 1.0:
            raise ValueError(f"rate must be between 0 and 1, not {rate}")
        chosen = [fault for fault in Fault if fault not in _NOT_RANDOM] if faults is None else list(faults)
        if not chosen:
            raise ValueError("faults must name at least one fault")
        injections = tuple(make_injection(f, delay=delay if f in _DELAYED else None) for f in chosen)
        with self._lock:
            self._rule = _RandomRule(rate, injections, random.Random(seed), path)

    def clear(self) -> None:
        """Forget every scripted fault and the random rule."""
        with self._lock:
            self._scripted.clear()
            self._rule = None

    def draw(self, path: str) -> Injection | None:
        """Return the fault for the next request on ``path``, or None when it goes well."""
        with self._lock:
            for scripted in self._scripted:
                if scripted.path is None or scripted.path == path:
                    if scripted.skip:
                        scripted.skip -= 1
                        continue
                    if scripted.remaining is not None:
                        scripted.remaining -= 1
                        if not scripted.remaining:
                            self._scripted.remove(scripted)
                    return scripted.injection
            rule = self._rule
            if rule is not None and rule.path in (None, path) and rule.rng.random() < rule.rate:
                return rule.rng.choice(rule.injections)
            return None


class FaultInjection:
    """The fault injection methods of the fake server, over its :class:`FaultSchedule`."""

    def __init__(self) -> None:
        self._faults = FaultSchedule()

    def inject(
        self,
        fault: Fault,
        *,
        path: str | None = None,
        times: int | None = 1,
        status: int | None = None,
        body: Mapping[str, Any] | str | bytes | None = None,
        delay: float | None = None,
        after: int = 0,
    ) -> None:
        """Make the next ``times`` admitted requests on ``path`` suffer ``fault``.

        Scripted faults apply in the order they were injected, before any random rule.

        :param path: an endpoint path; None for any.
        :param times: how many requests; None until :meth:`clear_faults`.
        :param status: replaces the fault's HTTP status (RESPOND needs it).
        :param body: replaces the fault's body (RESPOND needs it): a mapping is sent as JSON, text or
            bytes verbatim.
        :param delay: seconds a SLOW answer is held, or a DROP_THEN_STORE store put off (default 1 s).
        :param after: let this many matching requests through first (a fault in the middle of a load).
        :raises ValueError: arguments that do not apply to ``fault``.
        """
        self._faults.script(make_injection(fault, status, body, delay), path=path, times=times, after=after)

    def inject_random(
        self,
        rate: float,
        faults: Iterable[Fault] | None = None,
        *,
        seed: int | None = None,
        path: str | None = None,
        delay: float | None = None,
    ) -> None:
        """Make each admitted request on ``path`` suffer a fault with probability ``rate``.

        Replaces the previous random rule. The fault is chosen uniformly from ``faults`` (default:
        every fault but RESPOND and DROP_THEN_STORE, whose store no client can settle unless it
        comes within the client's timeout); with a ``seed`` the sequence of draws is reproducible.

        :param delay: seconds a SLOW answer is held, or a DROP_THEN_STORE store put off (default 1 s).
        """
        self._faults.randomize(rate, faults, seed=seed, path=path, delay=delay)

    def clear_faults(self) -> None:
        """Stop injecting faults."""
        self._faults.clear()
