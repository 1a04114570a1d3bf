"""Turn what users type in the Connection's Host field into the API's base URL."""

from __future__ import annotations

import ipaddress
import logging
import re
from urllib.parse import SplitResult, urlsplit

from airflow_provider_wolkvox.exceptions import WolkvoxConfigError

log = logging.getLogger(__name__)

# One or more schemes in front: "https://https://crm0001..." is a frequent paste mistake.
_SCHEMES = re.compile(r"^(?:(https?):/*)+", re.IGNORECASE)
# Any other scheme (RFC 3986 syntax), which would otherwise read as a host named after it.
_OTHER_SCHEME = re.compile(r"^([a-z][a-z0-9+.-]*)://", re.IGNORECASE)
# A host name or a bracketed IPv6 address, then the port's digits after a colon, if any.
_PORT = re.compile(r"^(?:\[[^\]]*\]|[^\[\]:]*)(?::(?P<port>[0-9]*))?$")
# Hosts retired on 2024-11-30: svNNNN.crmvox.com became crmNNNN.wolkvox.com.
_RETIRED_HOST = re.compile(r"^sv(\d+)\.crmvox\.com$", re.IGNORECASE)
_EXAMPLE = "give the server only, e.g. crm0001.wolkvox.com"


def base_url_from_host(
    host: str | None, *, allow_insecure_http: bool = False, owner: str = "the wolkvox Connection"
) -> str:
    """Return ``scheme://host[:port]`` for the CRM server named by ``host``.

    A bare host means https. Whitespace, doubled schemes and trailing slashes are dropped and
    retired ``svNNNN.crmvox.com`` hosts are rewritten, with a warning. Plain http is refused for
    anything but loopback unless ``allow_insecure_http``, since the token would travel in clear.

    :param owner: whose Host it is, for the messages (``"the wolkvox Connection 'crm'"``).
    :raises WolkvoxConfigError: no server, or more than a server: another scheme, a user name or
        password, a path, a query string or fragment; a bad port or IPv6 address.
    """
    text = (host or "").strip()
    if not text:
        raise WolkvoxConfigError(f"{owner} has no Host: set it to your CRM server, e.g. crm0001.wolkvox.com")
    schemes = _SCHEMES.match(text)
    scheme = schemes.group(1).lower() if schemes else "https"
    rest = text[schemes.end() :] if schemes else text
    if "@" in rest:
        # Any "@" counts, and first, so that no message quotes what may be a password.
        shown = f"{schemes.group() if schemes else ''}***@{rest.rpartition('@')[2]}"
        raise WolkvoxConfigError(f"{owner}: Host {shown!r} has a user name or password: {_EXAMPLE}")
    other = _OTHER_SCHEME.match(rest)
    if other:
        raise WolkvoxConfigError(
            f"{owner}: Host {text!r} has the scheme {other.group(1)!r}: only https (or http) is spoken"
        )
    hostname, port = _server(_split(f"{scheme}://{rest}", text, owner), text, owner)
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
            f"{owner}: refusing plain http:// to {hostname}: the token would travel in clear text. Use "
            "https, or set the Connection extra allow_insecure_http to true if you really mean it."
        )
    netloc = f"[{hostname}]" if ":" in hostname else hostname
    if port is not None:
        netloc = f"{netloc}:{port}"
    return f"{scheme}://{netloc}"


def _split(url: str, text: str, owner: str) -> SplitResult:
    """``urlsplit(url)``; its ``ValueError`` (a malformed IPv6 address) as a configuration error."""
    try:
        return urlsplit(url)
    except ValueError as error:
        raise WolkvoxConfigError(f"{owner}: Host {text!r} is not a server address ({error})") from None


def _server(parts: SplitResult, text: str, owner: str) -> tuple[str, int | None]:
    """The host name and port of ``parts``, refusing anything but them (slashes aside)."""
    if not parts.hostname:
        raise WolkvoxConfigError(f"{owner}: Host {text!r} names no server")
    if parts.path.strip("/"):
        raise WolkvoxConfigError(f"{owner}: Host {text!r} has a path ({parts.path!r}): {_EXAMPLE}")
    # urlsplit drops an empty query or fragment ("crm0001.wolkvox.com/?"): look at the text.
    if "?" in text or "#" in text:
        raise WolkvoxConfigError(f"{owner}: Host {text!r} has a query string or fragment: {_EXAMPLE}")
    # urlsplit's own port drops text after an IPv6 address and, on some Pythons, reads "8_0" as 80.
    found = _PORT.match(parts.netloc)
    if not found:
        raise WolkvoxConfigError(f"{owner}: Host {text!r} has a port that is not a number (1-65535)")
    if not found.group("port"):
        return parts.hostname, None
    port = int(found.group("port"))
    if not 1 <= port <= 65535:
        raise WolkvoxConfigError(f"{owner}: Host {text!r} has a port out of range (1-65535)")
    return parts.hostname, port


def is_loopback(hostname: str) -> bool:
    """True for ``localhost`` and loopback addresses (127.0.0.0/8, ::1)."""
    if hostname.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(hostname).is_loopback
    except ValueError:
        return False
