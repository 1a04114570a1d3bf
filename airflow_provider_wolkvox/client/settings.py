"""Settings of a client checked once, when it is configured, so that a bad one fails fast."""

from __future__ import annotations

import math

from airflow_provider_wolkvox.exceptions import WolkvoxConfigError

#: The longest timeout of a request, in seconds. Longer ones are refused: the CRM answers within a
#: minute, and an unbounded one overflows the waits of the request deadlines.
MAX_TIMEOUT = 3600.0


def check_timeout(value: object, *, owner: str, field: str = "timeout") -> float:
    """Return ``value`` as seconds: a finite number above 0 and at most :data:`MAX_TIMEOUT`.

    :param value: a number, or its text (the UI and JSON extras give either).
    :param owner: who set it, for the message (``"the wolkvox Connection 'crm'"``).
    :param field: the name of the setting, for the message.
    :raises WolkvoxConfigError: anything else.
    """
    seconds = _number(value)
    # NaN fails every comparison, and infinity is above the maximum.
    if not 0 < seconds <= MAX_TIMEOUT:
        raise WolkvoxConfigError(
            f"{owner}: {field} must be a positive number of seconds, "
            f"at most {MAX_TIMEOUT:,.0f}, got {value!r}"
        )
    return seconds


def _number(value: object) -> float:
    """``value`` as a float; NaN when it is not a number (nor is a bool, though Python counts it as one)."""
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        return math.nan
    try:
        return float(value)
    except (ValueError, OverflowError):  # OverflowError: an int beyond the range of floats
        return math.nan
