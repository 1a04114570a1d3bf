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
        ("https://crm0001.wolkvox.com:8443", "https://crm0001.wolkvox.com:8443"),
        ("http://127.0.0.1:8765", "http://127.0.0.1:8765"),
        ("http://127.8.9.10:80/", "http://127.8.9.10:80"),
        ("http://localhost:8765", "http://localhost:8765"),
        ("http://[::1]:8765", "http://[::1]:8765"),
        ("https://crm0001.wolkvox.com:1", "https://crm0001.wolkvox.com:1"),
        ("https://crm0001.wolkvox.com:65535/", "https://crm0001.wolkvox.com:65535"),
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


@pytest.mark.parametrize(
    ("host", "message"),
    [
        ("crm0001.wolkvox.com:99999", "Host 'crm0001.wolkvox.com:99999' has a port out of range (1-65535)"),
        (
            "https://crm0001.wolkvox.com:0",
            "Host 'https://crm0001.wolkvox.com:0' has a port out of range (1-65535)",
        ),
        ("crm0001.wolkvox.com:80a", "Host 'crm0001.wolkvox.com:80a' has a port that is not a number"),
        ("crm0001.wolkvox.com:8_0", "Host 'crm0001.wolkvox.com:8_0' has a port that is not a number"),
        ("crm0001.wolkvox.com:80:81", "Host 'crm0001.wolkvox.com:80:81' has a port that is not a number"),
        ("http://[::1]x:8765", "Host 'http://[::1]x:8765' has a port that is not a number"),
        ("https://[::1", "Host 'https://[::1' is not a server address (Invalid IPv6 URL)"),
        ("https://[crm0001]:443", "Host 'https://[crm0001]:443' is not a server address"),
        ("file:///etc/passwd", "Host 'file:///etc/passwd' has the scheme 'file': only https (or http) is"),
        (
            "https://ftp://crm0001.wolkvox.com",
            "Host 'https://ftp://crm0001.wolkvox.com' has the scheme 'ftp'",
        ),
        (
            "https://crm0001.wolkvox.com/server/API/v2/custom/insert.php",
            "Host 'https://crm0001.wolkvox.com/server/API/v2/custom/insert.php' has a path "
            "('/server/API/v2/custom/insert.php'): give the server only, e.g. crm0001.wolkvox.com",
        ),
        ("crm0001.wolkvox.com/login?next=/", "Host 'crm0001.wolkvox.com/login?next=/' has a path ('/login')"),
        ("crm0001.wolkvox.com?next=/", "Host 'crm0001.wolkvox.com?next=/' has a query string or fragment"),
        ("crm0001.wolkvox.com/?", "Host 'crm0001.wolkvox.com/?' has a query string or fragment"),
        ("crm0001.wolkvox.com#top", "Host 'crm0001.wolkvox.com#top' has a query string or fragment"),
        (
            "https://ana:s3cret@crm0001.wolkvox.com",
            "Host 'https://***@crm0001.wolkvox.com' has a user name or password: give the server only",
        ),
        ("ana@crm0001.wolkvox.com", "Host '***@crm0001.wolkvox.com' has a user name or password"),
        (
            "https://ana:s3/cr@t@crm0001.wolkvox.com/x",
            "Host 'https://***@crm0001.wolkvox.com/x' has a user name",
        ),
    ],
)
def test_what_is_not_a_server_is_a_config_error_naming_the_owner(host: str, message: str) -> None:
    with pytest.raises(WolkvoxConfigError) as raised:
        base_url_from_host(host, owner="the wolkvox Connection 'crm'")
    assert str(raised.value).startswith(f"the wolkvox Connection 'crm': {message}")
    assert raised.value.fail_fast
    assert "s3" not in str(raised.value)


@pytest.mark.parametrize(
    ("host", "message"),
    [
        (None, "the wolkvox Connection has no Host: set it to your CRM server"),
        ("https://", "the wolkvox Connection: Host 'https://' names no server"),
        (
            "http://crm0001.wolkvox.com",
            "the wolkvox Connection: refusing plain http:// to crm0001.wolkvox.com",
        ),
    ],
)
def test_the_owner_defaults_to_the_wolkvox_connection(host: str | None, message: str) -> None:
    with pytest.raises(WolkvoxConfigError) as raised:
        base_url_from_host(host)
    assert str(raised.value).startswith(message)
