"""Keep the token out of what the CRM sends back, in every form the CRM could echo it."""

from __future__ import annotations

import json
import unicodedata
from urllib.parse import quote, quote_plus

from airflow_provider_wolkvox.exceptions import WolkvoxConfigError, WolkvoxError

REDACTED = "***"
# Tokens this long are replaced in answers before they are read; a shorter one could match real
# data (ids), so it is only scrubbed from error texts.
MIN_REDACTED_LENGTH = 8


def token_forms(token: str) -> tuple[str, ...]:
    """``token`` as it is, JSON-escaped (with PHP's ``\\/``, ASCII or not) and URL-encoded; longest first."""
    escaped = {json.dumps(token, ensure_ascii=ascii)[1:-1] for ascii in (True, False)}
    forms = {token, quote(token, safe=""), quote_plus(token)} | escaped
    forms |= {form.replace("/", "\\/") for form in escaped}
    return tuple(sorted(forms, key=len, reverse=True))


class Redactor:
    """Replaces every form of one token in texts."""

    def __init__(self, token: str) -> None:
        self.forms = token_forms(token)
        self._long_forms = tuple(form for form in self.forms if len(form) >= MIN_REDACTED_LENGTH)

    def answer(self, text: str) -> str:
        """An answer's body without the token, before any parsing or quoting (long tokens only)."""
        for form in self._long_forms:
            if form in text:
                text = text.replace(form, REDACTED)
        return text

    def text(self, text: str) -> str:
        """An error text without the token, whatever its length."""
        for form in self.forms:
            if form in text:
                text = text.replace(form, REDACTED)
        return text

    def error(self, error: WolkvoxError) -> WolkvoxError:
        """``error`` without the token: a server that echoes the request would carry it into logs."""
        texts = (str(error), error.error or "", error.msg or "")
        if all(self.text(text) == text for text in texts):
            return error
        return type(error)(
            self.text(str(error)),
            status_code=error.status_code,
            error=error.error and self.text(error.error),
            msg=error.msg and self.text(error.msg),
            endpoint=error.endpoint,
            module=error.module,
        )


def check_token(token: str, *, owner: str) -> None:
    """Refuse a token that cannot travel in an HTTP header, naming the character, never the token.

    :param owner: what holds the token, for the message, e.g. "the wolkvox Connection 'x'".
    :raises WolkvoxConfigError: a character outside Latin-1, a control character or inner whitespace.
    """
    for position, char in enumerate(token, start=1):
        if ord(char) > 0xFF or not char.isprintable() or char.isspace():
            name = unicodedata.name(char, "a control character")
            raise WolkvoxConfigError(
                f"the token of {owner} cannot be sent in an HTTP header: character {position} of "
                f"{len(token)} is U+{ord(char):04X} ({name}); copy the token again from the CRM"
            )
