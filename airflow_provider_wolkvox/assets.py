"""The CRM module as an Airflow Asset: ``wolkvox://<host>/<operation>/<module>``.

Registered through the provider info (``asset-uris``), so that Airflow normalises every such URI
with :func:`sanitize_uri` (the host cleaned as the Connection's: a doubled scheme, trailing slashes,
a retired ``svNNNN.crmvox.com`` host, upper case) and OpenLineage names it as the operators do. The
operators attach their counts to the outlet events of any such asset in their ``outlets``, so a DAG
scheduled on the asset reads what arrived from its triggering asset event.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any
from urllib.parse import SplitResult, quote, unquote, urlsplit

if TYPE_CHECKING:
    from airflow.providers.common.compat.sdk import Asset

SCHEME = "wolkvox"


def wolkvox_asset(conn_id_or_host: str, operation: str | None, module: str) -> Asset:
    """The Asset of a CRM module.

    :param conn_id_or_host: the CRM server, as a host (``crm0001.wolkvox.com``, any text holding a
        dot, a colon or a slash) or the id of its wolkvox Connection (read when the DAG is parsed).
    :param operation: the CRM operation; None takes the Connection's extra ``operation``.
    :param module: the CRM module, e.g. ``"contacts"``.
    """
    host = conn_id_or_host
    if not any(mark in conn_id_or_host for mark in ".:/"):
        from airflow.providers.common.compat.sdk import BaseHook

        connection = BaseHook.get_connection(conn_id_or_host)
        host = connection.host or ""
        operation = operation or connection.extra_dejson.get("operation")
    if not operation:
        raise ValueError(
            f"the asset of module {module!r} needs an operation: pass it, or set the extra operation "
            f"of Connection {conn_id_or_host!r}"
        )
    return create_asset(host=host, operation=operation, module=module)


def create_asset(*, host: str, operation: str, module: str, extra: dict[str, Any] | None = None) -> Asset:
    """The Asset ``wolkvox://<host>/<operation>/<module>`` (the asset factory of the provider info)."""
    from airflow.providers.common.compat.sdk import Asset

    path = "/".join(quote(part.strip(), safe="") for part in (operation, module))
    return Asset(uri=f"{SCHEME}://{_netloc(host)}/{path}", extra=extra or {})


def sanitize_uri(uri: SplitResult) -> SplitResult:
    """Normalise a ``wolkvox://`` URI: its host as the Connection's, its path ``/<operation>/<module>``.

    :raises ValueError: a URI without a host, an operation or a module.
    """
    parts = [unquote(part) for part in uri.path.strip("/").split("/")]
    if not uri.netloc or len(parts) != 2 or not all(part.strip() for part in parts):
        raise ValueError(
            f"a wolkvox asset URI must be wolkvox://<host>/<operation>/<module>, got {uri.geturl()!r}"
        )
    path = "/" + "/".join(quote(part.strip(), safe="") for part in parts)
    return uri._replace(netloc=_netloc(uri.netloc), path=path)


def convert_asset_to_openlineage(asset: Asset, lineage_context: Any = None) -> Any:
    """The OpenLineage dataset of an asset: the same one the operators report as their output."""
    from airflow.providers.common.compat.openlineage.facet import Dataset

    return Dataset(*openlineage_name(asset.uri))


def openlineage_name(uri: str) -> tuple[str, str]:
    """The (namespace, name) of the OpenLineage dataset of a URI: the server, ``<operation>.<module>``."""
    parts = urlsplit(uri)
    operation, module = (unquote(part) for part in parts.path.strip("/").split("/"))
    return f"{SCHEME}://{parts.netloc}", f"{operation}.{module}"


def module_uri(base_url: str, operation: str, module: str) -> str:
    """The asset URI of a module of the CRM server at ``base_url`` (``scheme://host[:port]``)."""
    path = "/".join(quote(part, safe="") for part in (operation, module))
    return f"{SCHEME}://{urlsplit(base_url).netloc}/{path}"


def _netloc(host: str) -> str:
    """The host (and port) the Connection's Host field would give, in lower case.

    :raises ValueError: a Host the Connection would refuse (Airflow's URI handlers raise ValueError).
    """
    from airflow_provider_wolkvox.client.host import base_url_from_host
    from airflow_provider_wolkvox.exceptions import WolkvoxConfigError

    try:
        # Plain http is accepted here: an asset names a server, it sends nothing to it.
        base_url = base_url_from_host(host, allow_insecure_http=True, owner="a wolkvox asset")
    except WolkvoxConfigError as error:
        raise ValueError(str(error)) from None
    return urlsplit(base_url).netloc.lower()
