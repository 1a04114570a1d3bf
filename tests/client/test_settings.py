from __future__ import annotations

import pytest

from airflow_provider_wolkvox.client.settings import MAX_TIMEOUT, check_timeout
from airflow_provider_wolkvox.exceptions import WolkvoxConfigError


@pytest.mark.parametrize(
    ("value", "seconds"), [(30, 30.0), (0.25, 0.25), ("12.5", 12.5), (" 60 ", 60.0), (MAX_TIMEOUT, 3600.0)]
)
def test_a_timeout_is_read_as_seconds(value: object, seconds: float) -> None:
    assert check_timeout(value, owner="the client") == seconds


@pytest.mark.parametrize(
    "value",
    [
        0,
        -1,
        "0",
        "-3",
        "soon",
        "",
        None,
        True,
        [30],
        "nan",
        float("nan"),
        "inf",
        float("-inf"),
        1e12,
        10**400,
        3600.001,
    ],
)
def test_a_timeout_that_is_not_a_positive_number_up_to_the_maximum_is_refused(value: object) -> None:
    with pytest.raises(WolkvoxConfigError) as raised:
        check_timeout(value, owner="the wolkvox Connection 'crm'", field="extra timeout")
    assert str(raised.value) == (
        "the wolkvox Connection 'crm': extra timeout must be a positive number of seconds, "
        f"at most 3,600, got {value!r}"
    )
    assert raised.value.fail_fast


def test_the_field_defaults_to_timeout() -> None:
    with pytest.raises(WolkvoxConfigError, match=r"^the client: timeout must be a positive number"):
        check_timeout(0, owner="the client")
