"""The fake CRM's endpoints: each reads its parameters (step 9 of the server's steps) and does its work.

Where the vendor is silent they follow the fakes' contract of ``shared/wolkvox-api.md``:

- ``queryDates.php`` filters ``wolkvox_fecha_creacion`` from ``from`` to ``to``, both inclusive,
  "YYYY-MM-DD HH:MM:SS" or "YYYY-MM-DD HH:MM" (meaning :00), on the CRM's clock; oldest first
  (creation time, then the order of storing); at most ``limit`` records, default and cap
  ``QUERY_DATES_LIMIT`` (a larger limit is capped). ``date`` must be true. The vendor does not
  document the order: ``query_dates_order`` may make it newest first (the newest ``limit`` records)
  or random (any ``limit`` of the window's records, in any order), for clients that must not rely on it.
- ``update.php`` merges ``fields`` into the record named by ``wolkvox-id``; fields it does not name
  keep their values; ``wolkvox_fecha_modificacion`` becomes now.
- ``delete.php`` deletes the records of ``wolkvox-id`` (an id, or a list with ``multiple``: true),
  all or none, and answers ``{"deleted": n}``.
- Values a request sends for the metadata fields (``wolkvox_id``, the dates, the creating user)
  are ignored: the CRM keeps them itself.
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from datetime import datetime
from typing import Any
from urllib.parse import parse_qs

from airflow_provider_wolkvox.api import (
    CRM_DATETIME_FORMAT,
    CRM_MINUTE_FORMAT,
    DELETE_PATH,
    ERROR_BAD_REQUEST,
    ERROR_FORBIDDEN,
    ERROR_NONE,
    ID_FIELD,
    INSERT_MANY_PATH,
    INSERT_PATH,
    MSG_INVALID_TOKEN,
    MSG_MISSING_PARAMETERS,
    MSG_MODULE_DOES_NOT_EXIST,
    QUERY_DATES_LIMIT,
    QUERY_DATES_PATH,
    QUERY_PATH,
    REQUEST_ID_PARAMETER,
    TOKEN_INFO_PATH,
    UPDATE_PATH,
)
from airflow_provider_wolkvox.testing._accounts import Account, Accounts
from airflow_provider_wolkvox.testing._module import QUERY_DATES_ORDERS
from airflow_provider_wolkvox.testing._requestlog import LoggedRequest
from airflow_provider_wolkvox.testing._store import InvalidRecord, Record, RecordStore
from airflow_provider_wolkvox.testing._wire import Refusal, Reply, json_reply

#: The fake-only inspection path: ``GET`` with ``module`` (and ``operation``) in the query string.
RECORDS_PATH = "/__fake__/records"
#: The fake-only counts path: ``GET``, no token; see :meth:`FakeWolkvoxServer.stats`.
STATS_PATH = "/__fake__/stats"

# Success texts as the vendor's examples spell them; our own where the vendor shows none.
_MSG_CREATED = "Succesfully create record"
_MSG_CREATED_MANY = "Succesfully create records"
_MSG_EDITED = "Succesfully edit record"
_MSG_DELETED = "Succesfully delete record"
_MSG_FOUND = "{} records were are found"
_MSG_NOT_A_JSON_OBJECT = "THE BODY MUST BE A JSON OBJECT"
ERROR_METHOD_NOT_ALLOWED = "METHOD NOT ALLOWED"

#: An endpoint: (the token's account, the query string, the body, the request's log notes) to the answer.
Endpoint = Callable[[Account, str, bytes, LoggedRequest], Reply]


def _missing(value: Any) -> bool:
    """Tell a missing parameter: absent, null or empty, as the CRM's PHP ``empty()`` would."""
    return value is None or value == "" or value == [] or value == {}


def _invalid(name: str, what: str) -> Refusal:
    return Refusal(400, ERROR_BAD_REQUEST, f"THE PARAMETER '{name}' MUST BE {what}")


def _json_object(body: bytes) -> dict[str, Any]:
    try:
        parsed = json.loads(body)
    except ValueError:  # includes undecodable bytes
        parsed = None
    if not isinstance(parsed, dict):
        raise Refusal(400, ERROR_BAD_REQUEST, _MSG_NOT_A_JSON_OBJECT)
    return parsed


def _query_parameters(query: str) -> dict[str, str]:
    return {name: values[0] for name, values in parse_qs(query).items()}


def _crm_time(name: str, value: Any) -> str:
    """Read a ``from``/``to`` bound: "YYYY-MM-DD HH:MM:SS", or "YYYY-MM-DD HH:MM" meaning :00."""
    if isinstance(value, str):
        for form in (CRM_DATETIME_FORMAT, CRM_MINUTE_FORMAT):
            try:
                return datetime.strptime(value, form).strftime(CRM_DATETIME_FORMAT)
            except ValueError:
                continue
    raise _invalid(name, "A DATE AND TIME 'YYYY-MM-DD HH:MM[:SS]'")


def _found(data: Any, count: int) -> Reply:
    """The answer of the lookups, whose ``code`` is a string in the vendor's examples."""
    return json_reply(
        200, {"code": "200", "error": ERROR_NONE, "msg": _MSG_FOUND.format(count), "data": data}
    )


def _listed(records: list[Record]) -> Reply:
    return _found(records, len(records))


@contextmanager
def _bad_request() -> Iterator[None]:
    """Turn the store's refusal of a record into the 400 answer that carries its text."""
    try:
        yield
    except InvalidRecord as invalid:
        raise Refusal(400, ERROR_BAD_REQUEST, str(invalid)) from None


def _succeeded(msg: str, data: Any) -> Reply:
    return json_reply(200, {"code": 200, "error": ERROR_NONE, "msg": msg, "data": data})


def method_refusal(allowed: str) -> Refusal:
    """The refusal of a request whose method the path does not take (our wording; not public)."""
    return Refusal(405, ERROR_METHOD_NOT_ALLOWED, f"THIS API ONLY ACCEPTS {allowed}")


class Endpoints:
    """The endpoints by path, with the method each takes.

    :param store: the records.
    :param accounts: the tokens' accounts, for token information and the default operation.
    :param modules: the modules that exist; None for any.
    :param insert_many_ids: answer a batch insert with one id per record.
    :param query_dates_order: how ``queryDates.php`` lists records, one of :data:`QUERY_DATES_ORDERS`.
    """

    def __init__(
        self,
        store: RecordStore,
        accounts: Accounts,
        modules: Iterable[str] | None,
        *,
        insert_many_ids: bool,
        query_dates_order: str = "ascending",
    ) -> None:
        self._store = store
        self._accounts = accounts
        self.modules = None if modules is None else frozenset(modules)
        self.insert_many_ids = insert_many_ids
        self.query_dates_order = query_dates_order
        self._random = random.Random()
        self.routes: dict[str, tuple[str, Endpoint]] = {
            INSERT_PATH: ("POST", self._insert),
            INSERT_MANY_PATH: ("POST", self._insert_many),
            QUERY_PATH: ("POST", self._query),
            QUERY_DATES_PATH: ("POST", self._query_dates),
            UPDATE_PATH: ("POST", self._update),
            DELETE_PATH: ("POST", self._delete),
            TOKEN_INFO_PATH: ("GET", self._token_info),
        }

    @property
    def query_dates_order(self) -> str:
        return self._query_dates_order

    @query_dates_order.setter
    def query_dates_order(self, value: str) -> None:
        if value not in QUERY_DATES_ORDERS:
            raise ValueError(
                f"query_dates_order must be one of {', '.join(QUERY_DATES_ORDERS)}, got {value!r}"
            )
        self._query_dates_order = value

    def has_module(self, module: str) -> bool:
        return self.modules is None or module in self.modules

    def list_records(self, method: str, query: str) -> Reply:
        """Answer the fake-only :data:`RECORDS_PATH`: a module's records, as ``query.php`` answers."""
        try:
            if method != "GET":
                raise method_refusal("GET")
            parameters = _query_parameters(query)
            module = parameters.get("module", "")
            if not module:
                raise Refusal(400, ERROR_BAD_REQUEST, MSG_MISSING_PARAMETERS)
            if not self.has_module(module):
                raise Refusal(400, ERROR_BAD_REQUEST, MSG_MODULE_DOES_NOT_EXIST)
        except Refusal as refusal:
            return refusal.reply
        operation = parameters.get("operation") or self._accounts.default_operation
        return _listed(self._store.records(operation, module))

    def _parameters(
        self, account: Account, source: Mapping[str, Any], exchange: LoggedRequest, *names: str
    ) -> list[Any]:
        """Check ``operation`` and ``names`` in ``source``, and ``module`` when named; return their values."""
        values = [source.get(name) for name in ("operation", *names)]
        if any(_missing(value) for value in values):
            raise Refusal(400, ERROR_BAD_REQUEST, MSG_MISSING_PARAMETERS)
        if values[0] != account.operation:
            raise Refusal(403, ERROR_FORBIDDEN, MSG_INVALID_TOKEN)
        module = source.get("module")
        if "module" in names:
            if not isinstance(module, str):
                raise _invalid("module", "TEXT")
            if not self.has_module(module):
                raise Refusal(400, ERROR_BAD_REQUEST, MSG_MODULE_DOES_NOT_EXIST)
            exchange.module = module
        return values[1:]

    def _store_records(
        self, account: Account, module: str, records: list[Any], exchange: LoggedRequest, *, numbered: bool
    ) -> list[str]:
        exchange.record_count = len(records)
        with _bad_request():
            ids = self._store.insert(account.operation, module, records, numbered=numbered)
        exchange.ids = tuple(ids)
        return ids

    def _insert(self, account: Account, query: str, body: bytes, exchange: LoggedRequest) -> Reply:
        module, fields = self._parameters(account, _json_object(body), exchange, "module", "fields")
        if not isinstance(fields, dict):
            raise _invalid("fields", "AN OBJECT")
        (new_id,) = self._store_records(account, module, [fields], exchange, numbered=False)
        return _succeeded(_MSG_CREATED, {ID_FIELD: new_id})

    def _insert_many(self, account: Account, query: str, body: bytes, exchange: LoggedRequest) -> Reply:
        module, records = self._parameters(account, _json_object(body), exchange, "module", "fields")
        if not isinstance(records, list):
            raise _invalid("fields", "AN ARRAY OF OBJECTS")
        ids = self._store_records(account, module, records, exchange, numbered=True)
        data: Any = [{ID_FIELD: new_id} for new_id in ids] if self.insert_many_ids else {"inserted": len(ids)}
        return _succeeded(_MSG_CREATED_MANY, data)

    def _query(self, account: Account, query: str, body: bytes, exchange: LoggedRequest) -> Reply:
        module, label, value = self._parameters(
            account, _json_object(body), exchange, "module", "field", "value"
        )
        if not isinstance(label, str):
            raise _invalid("field", "TEXT")
        return _listed(self._store.query(account.operation, module, label, value))

    def _query_dates(self, account: Account, query: str, body: bytes, exchange: LoggedRequest) -> Reply:
        source = _json_object(body)
        if source.get("date") is not True:  # the vendor's page: "date" must be true
            raise Refusal(400, ERROR_BAD_REQUEST, MSG_MISSING_PARAMETERS)
        module, start, end = self._parameters(account, source, exchange, "module", "from", "to")
        limit = source.get("limit")
        if limit is None:
            limit = QUERY_DATES_LIMIT
        elif not isinstance(limit, int) or isinstance(limit, bool) or limit < 1:
            raise _invalid("limit", "A WHOLE NUMBER OF AT LEAST 1")
        found = self._store.created_between(
            account.operation,
            module,
            _crm_time("from", start),
            _crm_time("to", end),
            min(limit, QUERY_DATES_LIMIT),
            self.query_dates_order,
            self._random,
        )
        return _listed(found)

    def _update(self, account: Account, query: str, body: bytes, exchange: LoggedRequest) -> Reply:
        module, record_id, fields = self._parameters(
            account, _json_object(body), exchange, "module", REQUEST_ID_PARAMETER, "fields"
        )
        if not isinstance(record_id, str):
            raise _invalid(REQUEST_ID_PARAMETER, "TEXT")
        if not isinstance(fields, dict):
            raise _invalid("fields", "AN OBJECT")
        exchange.record_count = 1
        with _bad_request():
            self._store.update(account.operation, module, record_id, fields)
        exchange.ids = (record_id,)
        return _succeeded(_MSG_EDITED, {ID_FIELD: record_id})

    def _delete(self, account: Account, query: str, body: bytes, exchange: LoggedRequest) -> Reply:
        module, ids, multiple = self._parameters(
            account, _json_object(body), exchange, "module", REQUEST_ID_PARAMETER, "multiple"
        )
        if not isinstance(multiple, bool):
            raise _invalid("multiple", "TRUE OR FALSE")
        ids = [ids] if isinstance(ids, str) else ids
        if not isinstance(ids, list) or not all(isinstance(one, str) and one for one in ids):
            raise _invalid(REQUEST_ID_PARAMETER, "AN ID OR AN ARRAY OF IDS")
        if len(ids) > 1 and not multiple:
            raise _invalid("multiple", f"TRUE FOR MORE THAN ONE '{REQUEST_ID_PARAMETER}'")
        exchange.record_count = len(ids)
        with _bad_request():
            deleted = self._store.delete(account.operation, module, ids)
        exchange.ids = tuple(deleted)
        return _succeeded(_MSG_DELETED, {"deleted": len(deleted)})

    def _token_info(self, account: Account, query: str, body: bytes, exchange: LoggedRequest) -> Reply:
        self._parameters(account, _query_parameters(query), exchange)
        limit, used, hours = self._accounts.figures(account)
        data = {
            "description": "token",
            "token_limit": limit,
            "token_use_today": used,
            "available_consumition_options": max(limit - used, 0),
            "hours_to_restart_count": hours,
        }
        return _found(data, 1)
