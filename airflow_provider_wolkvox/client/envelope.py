"""Read the API's response envelope and map failures to typed errors.

Rules (``shared/wolkvox-api.md``): ``code`` may be a number or a string; ``error`` is JSON null or
the string ``"null"`` on success; an error body can come with HTTP 200, so a body ``code`` >= 400 or
a non-null ``error`` is a failure whatever the HTTP status. Every string of a decoded answer is
redacted before it is read, and ids are taken only in the form ``RECORD_ID`` accepts.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from airflow_provider_wolkvox import api
from airflow_provider_wolkvox.exceptions import (
    WolkvoxAuthError,
    WolkvoxBadRequestError,
    WolkvoxConcurrencyLimitError,
    WolkvoxError,
    WolkvoxMaintenanceError,
    WolkvoxMalformedResponseError,
    WolkvoxQuotaExceededError,
    WolkvoxRateLimitError,
    WolkvoxServerError,
    WolkvoxUnreadableIdError,
)

if TYPE_CHECKING:
    from airflow_provider_wolkvox.client.redaction import Redactor

# How much of an unexpected body an error message quotes.
BODY_QUOTE_LIMIT = 200
_STATUS_BY_ERROR = {api.ERROR_UNAUTHORIZED: 401, api.ERROR_FORBIDDEN: 403}
#: The record ids accepted (docs/connection.md): letters, digits, ``-`` and ``_``, at most 64; the CRM
#: sends 24 hexadecimal characters.
RECORD_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")


@dataclass(frozen=True)
class TokenInfo:
    """The token's daily quota figures, from ``tokenInformation.php``."""

    token_limit: int
    token_use_today: int
    calls_left: int
    hours_to_reset: float | None
    description: str | None = None


def read_envelope(
    status: int, body: str, *, endpoint: str, module: str | None = None, redactor: Redactor | None = None
) -> Any:
    """Return the envelope's ``data`` for a successful answer, or raise the matching ``WolkvoxError``.

    ``body`` must already be free of the token (the client redacts it); ``redactor`` redacts every
    string of the decoded answer too, since JSON escapes can hide the token from the raw text.
    """
    try:
        envelope = json.loads(body)
    except ValueError:
        envelope, shown = None, quote(body)
    else:
        # Without escapes every decoded string stands verbatim in the body, already redacted.
        if redactor is not None and "\\" in body:
            envelope = redactor.value(envelope)
        shown = shown_value(envelope)
    if not isinstance(envelope, dict):
        if status >= 400:
            raise error_for(status, None, shown, endpoint=endpoint, module=module)
        raise WolkvoxMalformedResponseError(
            f"wolkvox {endpoint}{_for(module)}: HTTP {status} with a body that is not the JSON envelope: "
            f"{shown!r}",
            status_code=status,
            endpoint=endpoint,
            module=module,
        )
    code = _as_int(envelope.get("code"))
    error = envelope.get("error")
    error_text = None if error is None or str(error).strip().lower() in ("", api.ERROR_NONE) else str(error)
    msg = envelope.get("msg")
    msg_text = None if msg is None else str(msg)
    failed_status = max(status, code or 0)
    if failed_status >= 400 or error_text is not None:
        if failed_status < 400:
            # An error body under 2xx codes everywhere: its `error` says what kind of refusal it is.
            failed_status = _STATUS_BY_ERROR.get((error_text or "").strip().upper(), 400)
        raise error_for(failed_status, error_text, msg_text, endpoint=endpoint, module=module)
    return envelope.get("data")


def error_for(
    status: int, error: str | None, msg: str | None, *, endpoint: str, module: str | None = None
) -> WolkvoxError:
    """Build the typed error for a refused request; 403s are told apart by ``msg``."""
    text = (msg or "").upper()
    kind: type[WolkvoxError]
    if status == 401:
        kind = WolkvoxAuthError
    elif status == 403:
        if api.MSG_QUOTA_EXCEEDED in text:
            kind = WolkvoxQuotaExceededError
        elif "SIMULTANEOUS" in text:
            kind = WolkvoxConcurrencyLimitError
        elif any(marker in text for marker in api.MAINTENANCE_MARKERS):
            kind = WolkvoxMaintenanceError
        else:
            # Invalid token, and any 403 we cannot read: retrying a refused token cannot help.
            kind = WolkvoxAuthError
    elif status == 429:
        kind = WolkvoxRateLimitError
    elif status == 503:
        kind = WolkvoxMaintenanceError
    elif status >= 500:
        kind = WolkvoxServerError
    else:
        kind = WolkvoxBadRequestError
    detail = " ".join(part for part in (error, msg) if part) or "no details"
    return kind(
        f"wolkvox {endpoint}{_for(module)}: HTTP {status}: {detail}",
        status_code=status,
        error=error,
        msg=msg,
        endpoint=endpoint,
        module=module,
    )


def is_record_id(value: Any) -> bool:
    """True for an id in the form ``RECORD_ID`` accepts."""
    return isinstance(value, str) and RECORD_ID.fullmatch(value) is not None


def record_id(data: Any, *, endpoint: str, module: str | None) -> str:
    """The ``wolkvox_id`` of a single insert's ``data``.

    :raises WolkvoxMalformedResponseError: a success without an id (the outcome is unknown).
    :raises WolkvoxUnreadableIdError: the record was created, but its id is not one ``RECORD_ID`` accepts.
    """
    wolkvox_id = data.get(api.ID_FIELD) if isinstance(data, dict) else None
    if wolkvox_id is None or wolkvox_id == "":
        raise WolkvoxMalformedResponseError(
            f"wolkvox {endpoint}{_for(module)}: success answer without a wolkvox_id: {shown_value(data)!r}",
            status_code=200,
            endpoint=endpoint,
            module=module,
        )
    if not is_record_id(wolkvox_id):
        raise WolkvoxUnreadableIdError(
            f"wolkvox {endpoint}{_for(module)}: the record was created, but the id in the answer is "
            f"unreadable ({shown_value(wolkvox_id)} is not 1 to 64 letters, digits, '-' or '_')",
            status_code=200,
            endpoint=endpoint,
            module=module,
        )
    return wolkvox_id


def record_ids(data: Any, count: int) -> list[str] | None:
    """The ids of a batch insert, in input order, or None when they cannot be matched one-to-one:
    not one readable id per record, or one id given for several records."""
    if not isinstance(data, list) or len(data) != count:
        return None
    ids = [entry.get(api.ID_FIELD) if isinstance(entry, dict) else None for entry in data]
    if not all(is_record_id(wolkvox_id) for wolkvox_id in ids) or len(set(ids)) != count:
        return None
    return ids  # type: ignore[return-value]


def query_records(data: Any, endpoint: str) -> list[dict[str, Any]]:
    """The records of a query answer; no match may come as an empty list, object or string.

    :raises WolkvoxMalformedResponseError: not a list of records, each with a readable id.
    """
    if data in (None, "", {}):
        return []
    if not isinstance(data, list) or not all(
        isinstance(record, dict) and is_record_id(record.get(api.ID_FIELD)) for record in data
    ):
        raise WolkvoxMalformedResponseError(
            f"wolkvox {endpoint}: answer data is not a list of records with readable ids: "
            f"{shown_value(data)!r}",
            endpoint=endpoint,
        )
    return data


def token_info(data: Any) -> TokenInfo:
    """The quota figures of a ``tokenInformation.php`` answer."""
    try:
        limit = int(data["token_limit"])
        used = int(data["token_use_today"])
        left = int(data.get("available_consumition_options", limit - used))
        hours = data.get("hours_to_restart_count")
        return TokenInfo(
            token_limit=limit,
            token_use_today=used,
            calls_left=left,
            hours_to_reset=None if hours is None else float(hours),
            description=data.get("description"),
        )
    except (TypeError, KeyError, ValueError):
        raise WolkvoxMalformedResponseError(
            f"wolkvox tokenInformation.php: answer lacks the quota figures: {shown_value(data)!r}",
            endpoint="tokenInformation.php",
        ) from None


def quote(body: str) -> str:
    """At most ``BODY_QUOTE_LIMIT`` characters of ``body``, marked when cut."""
    return body if len(body) <= BODY_QUOTE_LIMIT else body[:BODY_QUOTE_LIMIT] + "…"


def shown_value(value: Any) -> str:
    """A decoded (and redacted) value as an error message quotes it: JSON without escapes, cut short.

    Quoted from the decoded value, not the raw text, whose ``\\uXXXX`` escapes could spell the token.
    """
    return quote(json.dumps(value, ensure_ascii=False))


def _as_int(code: Any) -> int | None:
    if isinstance(code, bool):
        return None
    if isinstance(code, int):
        return code
    if isinstance(code, str) and code.strip().isdigit():
        return int(code.strip())
    return None


def _for(module: str | None) -> str:
    return f" (module {module!r})" if module else ""
