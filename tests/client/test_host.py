from __future__ import annotations

import logging

import pytest

from airflow_provider_wolkvox.client.host import base_url_from_host
from airflow_provider_wolkvox.exceptions import WolkvoxConfigError


@pytest.mark.parametrize(
    ("host", "base_url"),
    [
        ("crm0001.wolkvox.com", "https://crm0001.wolkvox.com"),
        ("  crm.wolkvox.com  ", "https://crm.wolkvox.com"),
        ("https://crm0001.wolkvox.com", "https://crm0001.wolkvox.com"),
        ("https://crm0001.wolkvox.com/", "https://crm0001.wolkvox.com"),
        ("https://crm0001.wolkvox.com///", "https://crm0001.wolkvox.com"),
        ("https://https://crm0001.wolkvox.com", "https://crm0001.wolkvox.com"),
        ("HTTPS://https://crm01.wolkvox.com/", "https://crm01.wolkvox.com"),
        ("https://crm0001.wolkvox.com/server/API/v2/custom/insert.php", "https://crm0001.wolkvox.com"),
        ("crm0001.wolkvox.com/login?next=/", "https://crm0001.wolkvox.com"),
        ("https://crm0001.wolkvox.com:8443", "https://crm0001.wolkvox.com:8443"),
        ("http://127.0.0.1:8765", "http://127.0.0.1:8765"),
        ("http://127.8.9.10:80/", "http://127.8.9.10:80"),
        ("http://localhost:8765", "http://localhost:8765"),
        ("http://[::1]:8765", "http://[::1]:8765"),
    ],
)
def test_host_normalisation(host: str, base_url: str) -> None:
    assert base_url_from_host(host) == base_url


@pytest.mark.parametrize(
    ("host", "base_url"),
    [
        ("sv0001.crmvox.com", "https://crm0001.wolkvox.com"),
        ("sv0000.crmvox.com", "https://crm0000.wolkvox.com"),
        ("https://SV0042.crmvox.com/", "https://crm0042.wolkvox.com"),
    ],
)
def test_retired_hosts_are_rewritten_with_a_warning(
    host: str, base_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING):
        assert base_url_from_host(host) == base_url
    old = host.removeprefix("https://").strip("/").lower()
    new = base_url.removeprefix("https://")
    assert any(old in r.getMessage() and new in r.getMessage() for r in caplog.records)


@pytest.mark.parametrize("host", ["http://crm0001.wolkvox.com", "http://10.0.0.5:8080", "http://crm.example"])
def test_plain_http_is_refused_off_loopback(host: str) -> None:
    with pytest.raises(WolkvoxConfigError, match=r"refusing plain http:// .*clear text.*allow_insecure_http"):
        base_url_from_host(host)


def test_plain_http_allowed_when_opted_in() -> None:
    assert (
        base_url_from_host("http://crm0001.wolkvox.com/", allow_insecure_http=True)
        == "http://crm0001.wolkvox.com"
    )


@pytest.mark.parametrize("host", [None, "", "   ", "https://", "https:///"])
def test_missing_host_is_a_config_error(host: str | None) -> None:
    with pytest.raises(WolkvoxConfigError, match="Host"):
        base_url_from_host(host)
