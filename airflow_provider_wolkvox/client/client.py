"""The HTTP client of the wolkvox API: one keep-alive session, the retry policy, the token gate.

It imports nothing of the hook, the operators or the load engines, and of Airflow only the base
class of its errors (:mod:`airflow_provider_wolkvox.exceptions` derives them from
``AirflowException``), so it runs, is tested and benchmarked outside a task; the hook builds it
from a Connection.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

from airflow_provider_wolkvox import __version__, api
from airflow_provider_wolkvox.client.envelope import (
    TokenInfo,
    query_records,
    read_envelope,
    record_id,
    record_ids,
    token_info,
)
from airflow_provider_wolkvox.client.gate import gate_for
from airflow_provider_wolkvox.client.redaction import REDACTED, Redactor, check_token
from airflow_provider_wolkvox.client.retry import RetryPolicy, is_retryable
from airflow_provider_wolkvox.client.settings import check_timeout
from airflow_provider_wolkvox.exceptions import (
    WolkvoxConcurrencyLimitError,
    WolkvoxConfigError,
    WolkvoxError,
    WolkvoxMalformedResponseError,
    WolkvoxOutcomeUnknownError,
    WolkvoxQuotaReserveError,
    WolkvoxUncertainError,
)
from airflow_provider_wolkvox.fields import encode_json

if TYPE_CHECKING:
    import requests

log = logging.getLogger(__name__)

T = TypeVar("T")

#: Seconds a request may take in all (connect, send, answer) when the Connection sets no ``timeout``.
DEFAULT_TIMEOUT = 60.0
#: Statuses of a gateway that gave up on the CRM, which may still be working on the request.
GATEWAY_STATUSES = frozenset({502, 504})
#: Seconds to wait for the TCP/TLS connection; longer waits mean the host is unreachable.
CONNECT_TIMEOUT = 10.0
USER_AGENT = f"airflow-provider-wolkvox/{__version__}"


class WolkvoxClient:
    """Calls the wolkvox API for one server and token.

    :param base_url: ``scheme://host[:port]`` of the CRM server (see ``host.base_url_from_host``).
    :param token: the Wolkvox-Token; kept out of every repr, log line and error.
    :param timeout: seconds one request may take in all, from connecting to the last byte of the answer
        (at most ``settings.MAX_TIMEOUT``).
    :param verify: TLS certificate verification.
    :param retry_policy: waits between retries of requests the server cannot have processed.
    :param owner: what holds the token, named in configuration errors (e.g. the Connection).
    :raises WolkvoxConfigError: the token cannot travel in an HTTP header, the timeout is out of range,
        or the CA bundle is missing.
    """

    def __init__(
        self,
        base_url: str,
        token: str,
        *,
        timeout: float = DEFAULT_TIMEOUT,
        verify: bool = True,
        retry_policy: RetryPolicy | None = None,
        owner: str = "the wolkvox client",
    ) -> None:
        check_token(token, owner=owner)
        timeout = check_timeout(timeout, owner=owner)
        self.base_url = base_url
        self._token = token
        self.redactor = Redactor(token)
        self._timeout = timeout
        # The watchdog of each request enforces the timeout; the socket's own timeouts are a backstop.
        self._socket_timeouts = (min(CONNECT_TIMEOUT, timeout), timeout + 1.0)
        self.retry_policy = retry_policy or RetryPolicy()
        self._gate = gate_for(token)
        # requests takes tens of ms to import and DAG files import the operators at every parse:
        # the HTTP stack is loaded when a client is made, at task run time.
        import requests

        from airflow_provider_wolkvox.client.session import Watchdog, WolkvoxAdapter

        self._session = requests.Session()
        # Proxy and CA-bundle settings of the environment: resolved once here, not on every request.
        self._session.proxies = requests.utils.get_environ_proxies(base_url)
        ca_bundle = os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE")
        if verify and ca_bundle and base_url.startswith("https:") and not os.path.exists(ca_bundle):
            raise WolkvoxConfigError(
                f"the TLS CA bundle {ca_bundle!r} (REQUESTS_CA_BUNDLE or CURL_CA_BUNDLE) does not exist"
            )
        self._session.verify = (ca_bundle or True) if verify else False
        self._session.trust_env = False
        self._watchdog = Watchdog(timeout)
        adapter = WolkvoxAdapter()
        self._session.mount("http://", adapter)
        self._session.mount("https://", adapter)
        self._headers = {
            api.TOKEN_HEADER: token,
            "Content-Type": "application/json",
            # No compressed answers (they are small), and a name for the CRM's logs and firewalls.
            "Accept-Encoding": "identity",
            "User-Agent": USER_AGENT,
        }
        self._templates: dict[tuple[str, str, tuple[tuple[str, str], ...]], requests.PreparedRequest] = {}
        self._calls = 0
        self._refused_busy = 0
        self._call_limit: int | None = None
        self._reserve = 0
        self._calls_lock = threading.Lock()

    def __repr__(self) -> str:
        return f"{type(self).__name__}(base_url={self.base_url!r}, token={REDACTED!r})"

    def __enter__(self) -> WolkvoxClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        self._session.close()
        self._watchdog.close()

    @property
    def calls(self) -> int:
        """Requests sent, retries included, less those :attr:`refused_busy`: each may be charged."""
        return self._calls - self._refused_busy

    @property
    def refused_busy(self) -> int:
        """403s for a third request in flight (retried), kept apart from calls: their charge is unknown."""
        return self._refused_busy

    def limit_calls(self, calls: int | None, *, reserve: int = 0) -> None:
        """Make at most ``calls`` more calls (None: no limit); a call beyond them raises
        ``WolkvoxQuotaReserveError`` without being sent. ``reserve`` is named in its message."""
        with self._calls_lock:
            self._call_limit = None if calls is None else self._calls - self._refused_busy + calls
            self._reserve = reserve

    @property
    def timeout(self) -> float:
        """Seconds one request may take in all."""
        return self._timeout

    def insert(self, operation: str, module: str, fields: Mapping[str, Any]) -> str:
        """Create one record from prepared ``fields``; return its ``wolkvox_id``.

        :raises WolkvoxOutcomeUnknownError: the record may or may not have been created.
        """
        body = encode_json({"operation": operation, "module": module, "fields": fields})
        return self._request(
            "POST",
            api.INSERT_PATH,
            module=module,
            body=body,
            read=lambda data: record_id(data, endpoint=_name(api.INSERT_PATH), module=module),
        )

    def insert_batch(self, module: str, body: bytes, count: int) -> list[str] | None:
        """Send an ``insertMany`` body of ``count`` records (encoded by ``fields.encode_json``).

        :return: the new ids in input order, or None when the answer does not match them
            one-to-one (the records were created; their ids are unknown).
        :raises WolkvoxOutcomeUnknownError: the records may or may not have been created.
        """
        return self._request(
            "POST",
            api.INSERT_MANY_PATH,
            module=module,
            body=body,
            read=lambda data: record_ids(data, count),
        )

    def update(self, operation: str, module: str, wolkvox_id: str, fields: Mapping[str, Any]) -> None:
        """Change the named ``fields`` of record ``wolkvox_id``; the others keep their values.

        Idempotent in effect, so a lost answer is retried like a read (each try costs a call).
        """
        body = encode_json(
            {"operation": operation, "module": module, api.REQUEST_ID_PARAMETER: wolkvox_id, "fields": fields}
        )
        self._request(
            "POST", api.UPDATE_PATH, module=module, body=body, idempotent=True, read=lambda data: None
        )

    def delete(self, operation: str, module: str, ids: Sequence[str]) -> None:
        """Delete the records of ``ids`` (one ``delete.php`` call, ``multiple`` true for several).

        Idempotent in effect (a record deleted twice is gone all the same), so a lost answer is
        retried like an update; a retry after a delete that went through is refused as naming a
        record that does not exist.
        """
        names = {"multiple": len(ids) > 1, api.REQUEST_ID_PARAMETER: list(ids)}
        body = encode_json({"operation": operation, "module": module, **names})
        self._request(
            "POST", api.DELETE_PATH, module=module, body=body, idempotent=True, read=lambda data: None
        )

    def query(self, operation: str, module: str, field: str, value: Any) -> list[dict[str, Any]]:
        """The records of ``module`` whose ``field`` matches ``value`` (one call of the quota)."""
        body = encode_json({"operation": operation, "module": module, "field": field, "value": value})
        return self._request(
            "POST",
            api.QUERY_PATH,
            module=module,
            body=body,
            idempotent=True,
            read=lambda data: query_records(data, _name(api.QUERY_PATH)),
        )

    def query_dates(
        self, operation: str, module: str, start: str, end: str, limit: int = api.QUERY_DATES_LIMIT
    ) -> list[dict[str, Any]]:
        """The records of ``module`` created from ``start`` to ``end`` (CRM clock, both included).

        An answer of ``limit`` records may be truncated (one call of the quota).
        """
        body = encode_json(
            {"operation": operation, "module": module, "date": True, "from": start, "to": end, "limit": limit}
        )
        return self._request(
            "POST",
            api.QUERY_DATES_PATH,
            module=module,
            body=body,
            idempotent=True,
            read=lambda data: query_records(data, _name(api.QUERY_DATES_PATH)),
        )

    def token_info(self, operation: str) -> TokenInfo:
        """The token's quota figures (the call itself uses one call of the quota)."""
        return self._request(
            "GET",
            api.TOKEN_INFO_PATH,
            params={"operation": operation},
            idempotent=True,
            read=token_info,
        )

    def _request(
        self,
        method: str,
        path: str,
        *,
        read: Callable[[Any], T],
        module: str | None = None,
        body: bytes | None = None,
        params: dict[str, str] | None = None,
        idempotent: bool = False,
    ) -> T:
        """Send with retries; ``read`` turns the envelope's ``data`` (redacted) into the result.

        Failures the server cannot have processed are retried for every call; failures after the
        request reached the server only for ``idempotent`` calls. For the others they raise
        ``WolkvoxOutcomeUnknownError``, since a blind retry could create a duplicate.
        """
        endpoint = _name(path)
        backoff = self.retry_policy.backoff()
        while True:
            started: float | None = None
            try:
                status, text, started = self._send(method, path, body, params, endpoint, module)
                data = read_envelope(status, text, endpoint=endpoint, module=module, redactor=self.redactor)
                return read(data)
            except WolkvoxError as raw:
                if isinstance(raw, WolkvoxConcurrencyLimitError):  # refused whole: not a call charged
                    with self._calls_lock:
                        self._refused_busy += 1
                error = self.redactor.error(raw)
                busy_until = raw.busy_until if isinstance(raw, WolkvoxUncertainError) else None
            # Handled outside the except block, so that no traceback chains the unredacted error.
            if isinstance(error, WolkvoxUncertainError) and not idempotent:
                unknown = WolkvoxOutcomeUnknownError(
                    f"{error} -- the outcome is unknown: the request reached the server, which may "
                    "have created the record(s); not retried, to avoid duplicates",
                    status_code=error.status_code,
                    error=error.error,
                    msg=error.msg,
                    endpoint=endpoint,
                    module=module,
                )
                if started is not None and error.status_code in GATEWAY_STATUSES:
                    busy_until = started + self._timeout
                unknown.busy_until = busy_until
                raise unknown from error
            delay = backoff.next_delay() if is_retryable(error, idempotent=idempotent) else None
            if delay is None:
                raise error
            if backoff.due_for_log():
                log.warning(
                    "%s; retrying (try %d, %.0f s of the %.0f s retry budget spent)",
                    error,
                    backoff.tries,
                    backoff.elapsed,
                    self.retry_policy.time_budget,
                )
            time.sleep(delay)

    def _send(
        self,
        method: str,
        path: str,
        body: bytes | None,
        params: dict[str, str] | None,
        endpoint: str,
        module: str | None,
    ) -> tuple[int, str, float]:
        """One HTTP exchange through the token gate: the status, the body's text (token redacted) and
        when the request started. The answer is read whole within the deadline and ``MAX_ANSWER_BYTES``."""
        import requests  # loaded by __init__ already

        from airflow_provider_wolkvox.client.session import network_error, read_answer, text_encoding

        with self._calls_lock:
            if self._call_limit is not None and self._calls - self._refused_busy >= self._call_limit:
                raise WolkvoxQuotaReserveError(
                    f"wolkvox {endpoint}: this load used its share of today's quota; the calls left are "
                    f"the {self._reserve} kept for the token's other users (quota_reserve); not sent",
                    endpoint=endpoint,
                    module=module,
                )
            self._calls += 1
        with self._gate:
            prepared = self._prepared(method, path, params)
            prepared.prepare_body(body, None)
            failure: requests.RequestException | None = None
            started = time.time()
            with self._watchdog.watch() as sent:
                try:
                    response = self._session.send(
                        prepared, timeout=self._socket_timeouts, allow_redirects=False, stream=True
                    )
                    content = read_answer(response)
                except requests.RequestException as exc:
                    failure = exc
        where = f"wolkvox {endpoint} at {self.base_url}" + (f" (module {module!r})" if module else "")
        if failure is not None or sent.expired:
            # Raised outside the except block: the requests error (its request holds the token
            # header) must not ride along as the new error's context.
            error = network_error(
                failure, sent, where=where, endpoint=endpoint, module=module, seconds=self._timeout
            )
            if isinstance(error, WolkvoxUncertainError):
                error.busy_until = started + self._timeout
            raise error
        if isinstance(content, str):
            raise WolkvoxMalformedResponseError(
                f"{where}: HTTP {response.status_code} {content}; not read",
                status_code=response.status_code,
                endpoint=endpoint,
                module=module,
            )
        if response.is_redirect:
            raise WolkvoxConfigError(
                f"wolkvox {endpoint} at {self.base_url}: the server redirects to "
                f"{response.headers.get('Location')!r}; set the Connection's Host to the CRM server itself",
                status_code=response.status_code,
                endpoint=endpoint,
                module=module,
            )
        text = content.decode(text_encoding(response), errors="replace")
        return response.status_code, self.redactor.text(text), started

    def _prepared(self, method: str, path: str, params: dict[str, str] | None) -> requests.PreparedRequest:
        """A fresh copy of the request without its body.

        Copied from one prepared per endpoint rather than built by ``Session.request``, whose
        per-call preparation and merging of session settings costs much of a fast call.
        """
        import requests  # loaded by __init__ already

        key = (method, path, tuple(sorted(params.items())) if params else ())
        template = self._templates.get(key)
        if template is None:
            template = requests.Request(
                method, self.base_url + path, params=params, headers=self._headers
            ).prepare()
            self._templates[key] = template
        return template.copy()


def _name(path: str) -> str:
    """The endpoint's script name, as errors show it."""
    return path.rsplit("/", 1)[-1]
