"""Keep the token out of what the CRM sends back, in every form the CRM could echo it.

The forms redacted (docs/secrets.md): the token; its JSON-escaped, URL-encoded, base64 and
base64url forms; the token in any letter case; any run of ``MIN_RUN`` or more consecutive
characters of it (the whole token when shorter); its bytes decoded as UTF-8 with replacement
characters (a Latin-1 token echoed raw in a UTF-8 body). Answers are redacted twice: their raw
text before it is parsed or quoted, and every string of the decoded JSON, since escapes such as
``\\u0041`` hide the token from the first pass.
"""

from __future__ import annotations

import base64
import json
import unicodedata
from typing import Any
from urllib.parse import quote, quote_plus

from airflow_provider_wolkvox.exceptions import WolkvoxConfigError, WolkvoxError

REDACTED = "***"
#: The shortest run of the token's characters that is redacted wherever it stands.
MIN_RUN = 8


def token_forms(token: str) -> tuple[str, ...]:
    """The whole forms of ``token`` a server could echo, longest first (what the log masker is given)."""
    escaped = {json.dumps(token, ensure_ascii=ascii)[1:-1] for ascii in (True, False)}
    forms = {token, quote(token, safe=""), quote_plus(token)} | escaped
    forms |= {form.replace("/", "\\/") for form in escaped}
    for raw in {token.encode("utf-8"), token.encode("latin-1", errors="replace")}:
        for encoded in (base64.b64encode(raw).decode(), base64.urlsafe_b64encode(raw).decode()):
            forms |= {encoded, encoded.rstrip("=")}
    forms.add(token.encode("latin-1", errors="replace").decode("utf-8", errors="replace"))
    return tuple(sorted(forms, key=len, reverse=True))


def _lower(text: str) -> str:
    """``text`` in lower case, one character for one, so that positions still match ``text``."""
    lowered = text.lower()
    if len(lowered) == len(text):
        return lowered
    return "".join(low if len(low := char.lower()) == 1 else char for char in text)


class Redactor:
    """Replaces every form of one token in texts and decoded values."""

    def __init__(self, token: str) -> None:
        forms = token_forms(token)
        self.forms = forms
        run = min(MIN_RUN, len(token))
        lowered = _lower(token)
        # Every run of the token contains one of its runs of exactly ``run`` characters.
        needles = {lowered[start : start + run] for start in range(len(token) - run + 1)}
        needles |= {_lower(form) for form in forms}
        self._needles = tuple(needle for needle in needles if needle)

    def text(self, text: str) -> str:
        """``text`` with every form of the token, and every run of it, replaced by ``***``."""
        lowered = _lower(text)
        spans: list[tuple[int, int]] = []
        for needle in self._needles:
            start = lowered.find(needle)
            while start != -1:
                spans.append((start, start + len(needle)))
                start = lowered.find(needle, start + 1)
        if not spans:
            return text
        spans.sort()
        parts: list[str] = []
        done = 0
        run_start, run_end = spans[0]
        for start, end in spans[1:]:
            if start <= run_end:
                run_end = max(run_end, end)
                continue
            parts += [text[done:run_start], REDACTED]
            done, run_start, run_end = run_end, start, end
        parts += [text[done:run_start], REDACTED, text[run_end:]]
        return "".join(parts)

    def value(self, value: Any) -> Any:
        """A decoded JSON value with every string in it (keys too) redacted."""
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, list):
            return [self.value(item) for item in value]
        if isinstance(value, dict):
            return {self.text(key): self.value(item) for key, item in value.items()}
        return value

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
