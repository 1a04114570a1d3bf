"""What the fake server sends: HTTP replies and the wolkvox JSON envelope."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

JSON_CONTENT_TYPE = "application/json"
HTML_CONTENT_TYPE = "text/html; charset=utf-8"


@dataclass(frozen=True)
class Reply:
    """One HTTP answer, already encoded.

    :param status: the HTTP status code.
    :param body: the body bytes, sent with an exact ``Content-Length``.
    :param content_type: the ``Content-Type`` header.
    :param msg: the envelope's ``msg`` of an error answer, for the request log.
    """

    status: int
    body: bytes
    content_type: str = JSON_CONTENT_TYPE
    msg: str | None = None


def json_reply(status: int, payload: Any) -> Reply:
    """Encode ``payload`` compactly, as the vendor's PHP ``json_encode`` does (ASCII, no spaces)."""
    return Reply(status, json.dumps(payload, separators=(",", ":")).encode("ascii"))


def error_reply(status: int, error: str, msg: str) -> Reply:
    """Build an error envelope.

    The vendor does not document ``data`` on errors; the fake sends an empty list, as PHP encodes an
    empty array, so that clients cannot depend on ``data`` being absent or null.
    """
    reply = json_reply(status, {"code": status, "error": error, "msg": msg, "data": []})
    return Reply(reply.status, reply.body, reply.content_type, msg)


def raw_reply(status: int, body: Mapping[str, Any] | str | bytes) -> Reply:
    """Build a reply from a test's body: a mapping is sent as JSON, text or bytes verbatim as HTML."""
    if isinstance(body, Mapping):
        return json_reply(status, body)
    return Reply(status, body.encode() if isinstance(body, str) else body, HTML_CONTENT_TYPE)


class Refusal(Exception):
    """Ends the handling of a request with an error envelope.

    :param status: the HTTP status and the envelope's ``code``.
    :param error: the envelope's ``error``.
    :param msg: the envelope's ``msg``.
    """

    def __init__(self, status: int, error: str, msg: str) -> None:
        super().__init__(msg)
        self.reply = error_reply(status, error, msg)
