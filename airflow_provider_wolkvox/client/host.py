"""Turn what users type in the Connection's Host field into the API's base URL."""

from __future__ import annotations

import ipaddress
import logging
import re
from urllib.parse import urlsplit

from airflow_provider_wolkvox.exceptions import WolkvoxConfigError

log = logging.getLogger(__name__)

# One or more schemes in front: "https://https://crm0001..." is a frequent paste mistake.
_SCHEMES = re.compile(r"^(?:(https?):/*)+", re.IGNORECASE)
# Hosts retired on 2024-11-30: svNNNN.crmvox.com became crmNNNN.wolkvox.com.
_RETIRED_HOST = re.compile(r"^sv(\d+)\.crmvox\.com$", re.IGNORECASE)


def base_url_from_host(host: str | None, *, allow_insecure_http: bool = False) -> str:
    """Return ``scheme://host[:port]`` for the CRM server named by ``host``.

    A bare host means https. Doubled schemes, paths, queries and trailing slashes are dropped and
    retired ``svNNNN.crmvox.com`` hosts are rewritten, with a warning. Plain http is refused for
    anything but loopback unless ``allow_insecure_http``, since the token would travel in clear.
    """
    text = (host or "").strip()
    if not text:
        raise WolkvoxConfigError(
            "the wolkvox Connection has no Host: set it to your CRM server, e.g. crm0001.wolkvox.com"
        )
    schemes = _SCHEMES.match(text)
    scheme = schemes.group(1).lower() if schemes else "https"
    rest = text[schemes.end() :] if schemes else text
    parts = urlsplit(f"{scheme}://{rest}")
    hostname = parts.hostname
    if not hostname:
        raise WolkvoxConfigError(f"the wolkvox Connection's Host {host!r} names no server")
    retired = _RETIRED_HOST.match(hostname)
    if retired:
        new_hostname = f"crm{retired.group(1)}.wolkvox.com"
        log.warning(
            "wolkvox host %s was retired on 2024-11-30; using %s instead. Update the Connection's Host.",
            hostname,
            new_hostname,
        )
        hostname = new_hostname
    if scheme == "http" and not allow_insecure_http and not is_loopback(hostname):
        raise WolkvoxConfigError(
            f"refusing plain http:// to {hostname}: the token would travel in clear text. Use https, "
            "or set the Connection extra allow_insecure_http to true if you really mean it."
        )
    netloc = f"[{hostname}]" if ":" in hostname else hostname
    if parts.port is not None:
        netloc = f"{netloc}:{parts.port}"
    return f"{scheme}://{netloc}"


def is_loopback(hostname: str) -> bool:
    """True for ``localhost`` and loopback addresses (127.0.0.0/8, ::1)."""
    if hostname.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(hostname).is_loopback
    except ValueError:
        return False
