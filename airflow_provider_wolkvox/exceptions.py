"""Every error the provider raises, in one module.

``WolkvoxError`` carries what the server sent (``status_code``, ``error``, ``msg``; None where there
was no response) plus where it happened (``endpoint``, ``module``). ``fail_fast`` tells whether a
retry can help: the operators turn a fail-fast error into ``AirflowFailException`` so that Airflow
does not burn task retries on it. No message ever contains the token: server texts are redacted by
the client before they reach these classes.
"""

from __future__ import annotations

from typing import Any, ClassVar

from airflow.providers.common.compat.sdk import AirflowException


class WolkvoxError(AirflowException):
    """Base of every error the provider raises about the wolkvox API or its input."""

    #: True when retrying the same call cannot succeed (bad token, bad input, spent quota).
    fail_fast: ClassVar[bool] = False

    def __init__(
        self,
        message: str,
        *,
        status_code: int | None = None,
        error: str | None = None,
        msg: str | None = None,
        endpoint: str | None = None,
        module: str | None = None,
    ) -> None:
        # AirflowException types status_code as HTTPStatus; here it is what the server sent, or None.
        self.status_code = status_code  # type: ignore[assignment]
        self.error = error
        self.msg = msg
        self.endpoint = endpoint
        self.module = module
        super().__init__(message)


class WolkvoxConfigError(WolkvoxError):
    """The Connection or the call is set up wrongly (no host, no token, no operation, insecure URL)."""

    fail_fast = True


class WolkvoxTLSError(WolkvoxConfigError):
    """The TLS handshake failed before the request was sent: an untrusted certificate, or no TLS server.

    No retry can fix it: the Connection's Host or the worker's CA bundle must change.
    """


class WolkvoxInputError(WolkvoxError, ValueError):
    """A record or argument is invalid; raised before any request is sent.

    ``record`` is the record's index (or file line), ``field`` the offending field name, when known.
    For a bad record found in the middle of a lazy input, ``results`` holds the results of every
    record before it (set by ``WolkvoxHook.insert_many``).
    """

    fail_fast = True

    def __init__(self, message: str, *, record: int | str | None = None, field: str | None = None) -> None:
        self.record = record
        self.field = field
        self.results: list[Any] | None = None
        super().__init__(message)


class WolkvoxAuthError(WolkvoxError):
    """The token is missing (401), wrong, expired or not of this operation (403)."""

    fail_fast = True


class WolkvoxQuotaExceededError(WolkvoxError):
    """The token's daily quota is spent (403 TOKEN LIMIT EXCEEDED); it resets the next day."""

    fail_fast = True


class WolkvoxQuotaReserveError(WolkvoxQuotaExceededError):
    """The load used its share of today's quota: the calls left are the reserve kept for the token's
    other users (``quota_reserve``). Nothing was sent for it."""


class WolkvoxBadRequestError(WolkvoxError):
    """The server rejected the request itself (400 and other 4xx): path, parameters or a record."""

    fail_fast = True


class WolkvoxTransientError(WolkvoxError):
    """The server refused the request without processing it; the same request may succeed later."""


class WolkvoxConcurrencyLimitError(WolkvoxTransientError):
    """A third request ran while two were in flight on the token (403 SIMULTANEOUS)."""


class WolkvoxRateLimitError(WolkvoxTransientError):
    """The client IP is rate-limited (429)."""


class WolkvoxMaintenanceError(WolkvoxTransientError):
    """The API is paused for maintenance (403 maintenance or 503)."""


class WolkvoxConnectionError(WolkvoxTransientError):
    """The request never reached the server (connection refused, DNS, connect timeout, proxy unreachable)."""


class WolkvoxUncertainError(WolkvoxError):
    """The request reached the server, which may have processed it, but no usable answer came back.

    Reads are retried on it; an insert turns it into :class:`WolkvoxOutcomeUnknownError`.
    """

    #: When the CRM is done with the request at the latest (epoch seconds: the request's start plus
    #: the timeout), if it may still be working on it: no answer came, or a gateway's instead.
    busy_until: float | None = None


class WolkvoxNoAnswerError(WolkvoxUncertainError):
    """The request was sent but no complete answer came (deadline passed, connection reset or closed,
    an answer that is not HTTP)."""


class WolkvoxServerError(WolkvoxUncertainError):
    """The server failed while handling the request (5xx other than 503)."""


class WolkvoxMalformedResponseError(WolkvoxUncertainError):
    """A success answer that is not the documented envelope (not JSON, no id where one is due)."""


class WolkvoxUnreadableIdError(WolkvoxError):
    """The CRM answered that it created the record, but the id in its answer is not a readable
    record id (docs/connection.md): the id is never returned or stored. Not retried, since the
    record exists; with ``dedupe_field`` the hook looks the record up instead."""

    fail_fast = True


class WolkvoxOutcomeUnknownError(WolkvoxError):
    """An insert may or may not have created its record(s): the answer was lost or unreadable.

    Never retried blindly, since the CRM offers no idempotency key; a task retry could duplicate
    the record, hence fail-fast. Set ``dedupe_field`` to let the hook resolve such outcomes.
    ``busy_until`` is the cause's (see :class:`WolkvoxUncertainError`).
    """

    fail_fast = True
    busy_until: float | None = None


class WolkvoxStateLockedError(WolkvoxConfigError):
    """Another sync holds the sync state (its lock) for longer than this one waits for it.

    One sync at a time per state: two at once would both look up the same new keys and create them
    twice. ``holder`` describes the other sync (host, pid, since when) as its lock file names it.
    """

    def __init__(self, message: str, *, state: str, holder: str) -> None:
        self.state = state
        self.holder = holder
        super().__init__(message)


class WolkvoxDeleteGuardError(WolkvoxError):
    """A mirror sync would delete more records than ``max_deletes`` allows: it stopped before its
    first call, having written nothing. A truncated source (an export cut short, a query that lost a
    join) looks like a source whose records left: a retry of the same input cannot help.

    ``deletes`` is how many tracked keys the input lacks, ``allowed`` what ``max_deletes`` allows,
    ``tracked`` how many keys the sync state tracks.
    """

    fail_fast = True

    def __init__(self, message: str, *, deletes: int, allowed: int, tracked: int) -> None:
        self.deletes = deletes
        self.allowed = allowed
        self.tracked = tracked
        super().__init__(message)


class WolkvoxStateWriteError(WolkvoxError):
    """The sync's writes to the CRM are done but its state could not be written: the CRM is right,
    the state is behind.

    Not fail-fast: a task retry runs the sync again, which is safe (nothing is created twice: the
    keys are looked up, or recalled from the task's journal) and writes the state once it can.
    """
