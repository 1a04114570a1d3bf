"""Plain HTTP calls against the fake server, shared by the tests of the testing package."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import requests

from airflow_provider_wolkvox.api import (
    CRM_DATETIME_FORMAT,
    DELETE_PATH,
    INSERT_MANY_PATH,
    INSERT_PATH,
    QUERY_DATES_PATH,
    QUERY_PATH,
    REQUEST_ID_PARAMETER,
    TOKEN_HEADER,
    TOKEN_INFO_PATH,
    UPDATE_PATH,
)
from airflow_provider_wolkvox.testing import FakeWolkvoxServer

TOKEN = "tok-a"
OPERATION = "op-a"
OTHER_TOKEN = "tok-b"
OTHER_OPERATION = "op-b"
MODULE = "contacts"
# Every request has a timeout, so that a broken server fails a test instead of hanging it.
TIMEOUT = 5.0


class Api:
    """Requests to one fake server over one keep-alive session, with the right token by default.

    :param server: a running server.
    """

    def __init__(self, server: FakeWolkvoxServer) -> None:
        self.server = server
        self.session = requests.Session()
        self.session.trust_env = False  # no proxy from the environment between us and loopback

    def __enter__(self) -> Api:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.session.close()

    def call(
        self,
        path: str,
        body: Any = None,
        *,
        method: str | None = None,
        token: str | None = TOKEN,
        headers: dict[str, str] | None = None,
        params: dict[str, str] | None = None,
        data: Any = None,
        timeout: float | tuple[float, float] = TIMEOUT,
    ) -> requests.Response:
        """Send one request: GET for token information, POST elsewhere, unless ``method`` says."""
        return self.session.request(
            method or ("GET" if path == TOKEN_INFO_PATH else "POST"),
            self.server.url + path,
            json=body,
            data=data,
            params=params,
            headers={**({} if token is None else {TOKEN_HEADER: token}), **(headers or {})},
            timeout=timeout,
        )

    def insert(self, fields: Any, *, module: str = MODULE, **kwargs: Any) -> requests.Response:
        return self.call(INSERT_PATH, {"operation": OPERATION, "module": module, "fields": fields}, **kwargs)

    def insert_many(self, records: Any, *, module: str = MODULE, **kwargs: Any) -> requests.Response:
        body = {"operation": OPERATION, "module": module, "fields": records}
        return self.call(INSERT_MANY_PATH, body, **kwargs)

    def query(self, field: str, value: Any, *, module: str = MODULE, **kwargs: Any) -> requests.Response:
        body = {"operation": OPERATION, "module": module, "field": field, "value": value}
        return self.call(QUERY_PATH, body, **kwargs)

    def query_dates(
        self, start: Any, end: Any, *, limit: Any = None, module: str = MODULE, **kwargs: Any
    ) -> requests.Response:
        body = {"operation": OPERATION, "module": module, "date": True, "from": start, "to": end}
        return self.call(QUERY_DATES_PATH, body if limit is None else {**body, "limit": limit}, **kwargs)

    def update(
        self, record_id: Any, fields: Any, *, module: str = MODULE, **kwargs: Any
    ) -> requests.Response:
        body = {"operation": OPERATION, "module": module, REQUEST_ID_PARAMETER: record_id, "fields": fields}
        return self.call(UPDATE_PATH, body, **kwargs)

    def delete(
        self, ids: Any, *, multiple: Any = None, module: str = MODULE, **kwargs: Any
    ) -> requests.Response:
        """Delete ``ids``; ``multiple`` defaults to whether they are a list, as the vendor's samples send."""
        body = {
            "operation": OPERATION,
            "module": module,
            "multiple": isinstance(ids, list) if multiple is None else multiple,
            REQUEST_ID_PARAMETER: ids,
        }
        return self.call(DELETE_PATH, body, **kwargs)

    def token_info(self, *, operation: str = OPERATION, **kwargs: Any) -> requests.Response:
        return self.call(TOKEN_INFO_PATH, params={"operation": operation}, **kwargs)


def found(records: list[Any]) -> dict[str, Any]:
    """The envelope of a lookup that found ``records``."""
    return {"code": "200", "error": "null", "msg": f"{len(records)} records were are found", "data": records}


def created_id(response: requests.Response) -> str:
    """The id of a record an insert answered, after checking that it succeeded."""
    assert response.status_code == 200, response.text
    wolkvox_id: str = response.json()["data"]["wolkvox_id"]
    return wolkvox_id


def envelope(status: int, error: str, msg: object) -> dict[str, Any]:
    """The error envelope the fake sends (``msg`` may be a matcher)."""
    return {"code": status, "error": error, "msg": msg, "data": []}


def crm_stamp(server: FakeWolkvoxServer) -> str:
    """The CRM's time now as the CRM writes it in records."""
    return server.crm_now().strftime(CRM_DATETIME_FORMAT)


def wait_until(condition: Callable[[], bool]) -> None:
    """Wait for ``condition`` (checked every 5 ms) at most ``TIMEOUT`` seconds."""
    deadline = time.monotonic() + TIMEOUT
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.005)
