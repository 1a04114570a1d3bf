"""WolkvoxHook: an Airflow Connection turned into a configured wolkvox client."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from functools import cached_property
from typing import Any

from airflow.providers.common.compat.sdk import BaseHook, mask_secret

from airflow_provider_wolkvox import CONN_FIELDS, UI_FIELD_BEHAVIOUR, api
from airflow_provider_wolkvox.client import (
    BulkLoad,
    InsertManyResult,
    RecordResult,
    RetryPolicy,
    TokenInfo,
    WolkvoxClient,
)
from airflow_provider_wolkvox.client.client import DEFAULT_TIMEOUT
from airflow_provider_wolkvox.client.host import base_url_from_host
from airflow_provider_wolkvox.client.journal import Journal
from airflow_provider_wolkvox.client.options import (
    DEFAULT_BATCH_SIZE,
    DEFAULT_PROGRESS_INTERVAL,
    LoadOptions,
    settle_reserve,
)
from airflow_provider_wolkvox.client.records import PreparedRecord, check_records_argument
from airflow_provider_wolkvox.client.redaction import token_forms
from airflow_provider_wolkvox.client.results import UpsertResult
from airflow_provider_wolkvox.client.sender import Sender
from airflow_provider_wolkvox.client.sync import SyncOptions, UpsertLoad
from airflow_provider_wolkvox.client.sync.engine import Source
from airflow_provider_wolkvox.exceptions import (
    WolkvoxConfigError,
    WolkvoxError,
    WolkvoxInputError,
    WolkvoxQuotaExceededError,
)
from airflow_provider_wolkvox.fields import prepare_record


class WolkvoxHook(BaseHook):
    """Interact with the wolkvox CRM API.

    The Connection's Host is the CRM server (``crm0001.wolkvox.com``), its Password the
    Wolkvox-Token; extras: ``operation`` (default CRM operation), ``timeout`` (seconds),
    ``verify`` (TLS verification, on by default) and ``allow_insecure_http``.

    :param wolkvox_conn_id: the Airflow Connection to use.
    :param retry_policy: waits between retries of requests the server cannot have processed.
    """

    conn_name_attr = "wolkvox_conn_id"
    default_conn_name = "wolkvox_default"
    conn_type = "wolkvox"
    hook_name = "Wolkvox CRM"

    def __init__(
        self, wolkvox_conn_id: str = default_conn_name, *, retry_policy: RetryPolicy | None = None
    ) -> None:
        super().__init__()
        self.wolkvox_conn_id = wolkvox_conn_id
        self.retry_policy = retry_policy

    def __repr__(self) -> str:
        return f"{type(self).__name__}(wolkvox_conn_id={self.wolkvox_conn_id!r})"

    @classmethod
    def get_connection_form_widgets(cls) -> dict[str, Any]:
        """The form's extra fields for Airflow 2; Airflow 3 reads the same ``CONN_FIELDS`` declaratively."""
        from flask_appbuilder.fieldwidgets import BS3TextFieldWidget
        from flask_babel import lazy_gettext
        from wtforms import BooleanField, StringField

        widgets: dict[str, Any] = {}
        for name, field in CONN_FIELDS.items():
            label, description = lazy_gettext(field["label"]), field.get("description")
            if "boolean" in field["schema"]["type"]:
                default = field["schema"].get("default")
                widgets[name] = BooleanField(label, default=default, description=description)
            else:
                widgets[name] = StringField(label, widget=BS3TextFieldWidget(), description=description)
        return widgets

    @classmethod
    def get_ui_field_behaviour(cls) -> dict[str, Any]:
        """Hidden, relabelled and placeholder fields of the form for Airflow 2 (``UI_FIELD_BEHAVIOUR``)."""
        return {key.replace("-", "_"): value for key, value in UI_FIELD_BEHAVIOUR.items()}

    @cached_property
    def _extras(self) -> dict[str, Any]:
        return dict(self._connection.extra_dejson)

    @cached_property
    def _connection(self) -> Any:
        return self.get_connection(self.wolkvox_conn_id)

    @cached_property
    def client(self) -> WolkvoxClient:
        """The client of this hook: one keep-alive session, reused by every call of the hook."""
        conn = self._connection
        token = (conn.password or "").strip()
        if not token:
            raise WolkvoxConfigError(
                f"the wolkvox Connection {self.wolkvox_conn_id!r} has no token: "
                "put the Wolkvox-Token in its Password"
            )
        for form in token_forms(token):
            mask_secret(form)
        base_url = base_url_from_host(
            conn.host, allow_insecure_http=_flag(self._extras, "allow_insecure_http", default=False)
        )
        verify = _flag(self._extras, "verify", default=True)
        if not verify:
            self.log.warning("TLS verification is off for the wolkvox Connection %r", self.wolkvox_conn_id)
        return WolkvoxClient(
            base_url,
            token,
            timeout=self._timeout(),
            verify=verify,
            retry_policy=self.retry_policy,
            owner=f"the wolkvox Connection {self.wolkvox_conn_id!r}",
        )

    def get_conn(self) -> WolkvoxClient:
        """The configured :class:`WolkvoxClient` (Airflow's hook convention)."""
        return self.client

    def operation_for(self, operation: str | None = None) -> str:
        """``operation`` if given, else the Connection's extra ``operation``."""
        chosen = operation if operation is not None else self._extras.get("operation")
        if not isinstance(chosen, str) or not chosen.strip():
            raise WolkvoxConfigError(
                "no wolkvox operation: pass operation= to the task or set the extra 'operation' of the "
                f"Connection {self.wolkvox_conn_id!r}"
            )
        return chosen.strip()

    def insert(
        self,
        module: str,
        fields: Mapping[str, Any],
        *,
        operation: str | None = None,
        dedupe_field: str | None = None,
    ) -> str:
        """Create one record in ``module``; return its ``wolkvox_id``.

        :param module: the CRM module (``"contacts"``, ``"leads"``, a custom module).
        :param fields: field label → value; see :mod:`airflow_provider_wolkvox.fields` for typed values.
        :param operation: the CRM operation; defaults to the Connection's extra.
        :param dedupe_field: a field unique per record (an e-mail, an id number): when the answer
            is lost, the record is looked up by it (one call) and sent again only if absent.
        :raises WolkvoxOutcomeUnknownError: the record may or may not have been created.
        """
        prepared, body = prepare_record(fields)
        options = LoadOptions(single=True, max_in_flight=1, dedupe_field=dedupe_field)
        sender = Sender(self.client, self.operation_for(operation), check_module(module), options)
        [result] = sender.send([PreparedRecord(0, prepared, body)])
        if result.wolkvox_id is None:
            assert result.cause is not None
            raise result.cause
        return result.wolkvox_id

    def iter_insert_many(
        self,
        module: str,
        records: Iterable[Mapping[str, Any]],
        *,
        operation: str | None = None,
        batch_size: int = DEFAULT_BATCH_SIZE,
        single: bool = False,
        max_in_flight: int = api.MAX_IN_FLIGHT_PER_TOKEN,
        dedupe_field: str | None = None,
        total: int | None = None,
        quota_check: bool = False,
        progress_interval: float = DEFAULT_PROGRESS_INTERVAL,
        journal: Journal | None = None,
    ) -> BulkLoad:
        """A bulk load to iterate: one result per record, in input order, as records settle.

        Same parameters as :meth:`insert_many`; use this form to stream results (e.g. to a file)
        instead of holding them all. ``journal`` notes progress so that a later try of the task
        recognises the records this one created (see :mod:`airflow_provider_wolkvox.client.journal`).
        """
        options = LoadOptions(batch_size, single, max_in_flight, dedupe_field, progress_interval)
        return self.bulk_load(
            module,
            records,
            options,
            operation=operation,
            total=total,
            quota_check=quota_check,
            journal=journal,
        )

    def bulk_load(
        self,
        module: str,
        records: Iterable[Mapping[str, Any]],
        options: LoadOptions,
        *,
        operation: str | None = None,
        total: int | None = None,
        quota_check: bool = False,
        journal: Journal | None = None,
    ) -> BulkLoad:
        """:meth:`iter_insert_many` with its options as one :class:`LoadOptions` (for the operators)."""
        operation = self.operation_for(operation)
        load = BulkLoad(
            self.client, operation, check_module(module), records, options, total=total, journal=journal
        )
        if quota_check:
            self._check_quota(operation, load)
        return load

    def insert_many(
        self,
        module: str,
        records: Iterable[Mapping[str, Any]],
        *,
        operation: str | None = None,
        batch_size: int = DEFAULT_BATCH_SIZE,
        single: bool = False,
        max_in_flight: int = api.MAX_IN_FLIGHT_PER_TOKEN,
        dedupe_field: str | None = None,
        total: int | None = None,
        quota_check: bool = False,
        progress_interval: float = DEFAULT_PROGRESS_INTERVAL,
    ) -> InsertManyResult:
        """Create many records of ``module``; every input record gets a result, in input order.

        :param records: mappings of field label → value; any iterable, read lazily.
        :param batch_size: records per ``insertMany.php`` call (1 to 10,000).
        :param single: one ``insert.php`` call per record, for modules where batches are not wanted.
        :param max_in_flight: requests in flight at once, 1 or 2 (the CRM's limit per token).
        :param dedupe_field: a field unique per record: records whose request got no answer are
            looked up by it and re-sent only when absent (one or two calls per lost request).
        :param total: the number of records when ``records`` has no length (progress, quota check).
        :param quota_check: read the token's quota first and fail before inserting anything when
            the calls needed exceed the calls left today.
        :param progress_interval: seconds between progress lines in the log.
        :raises WolkvoxInputError: a bad record; for a lazy input found mid-load, the error's
            ``results`` holds the results of every record before it.
        """
        load = self.iter_insert_many(
            module,
            records,
            operation=operation,
            batch_size=batch_size,
            single=single,
            max_in_flight=max_in_flight,
            dedupe_field=dedupe_field,
            total=total,
            quota_check=quota_check,
            progress_interval=progress_interval,
        )
        results: list[RecordResult] = []
        try:
            results.extend(load)
        except WolkvoxInputError as error:
            error.results = results
            raise
        return InsertManyResult(results, load.summary)

    def update(
        self, module: str, wolkvox_id: str, fields: Mapping[str, Any], *, operation: str | None = None
    ) -> None:
        """Change the named ``fields`` of record ``wolkvox_id`` (``update.php``); others keep their values.

        An update is idempotent in effect, so a lost answer is retried (each try costs a call).
        """
        if not isinstance(wolkvox_id, str) or not wolkvox_id.strip():
            raise WolkvoxInputError(f"wolkvox_id must be a record id, got {wolkvox_id!r}")
        prepared, _ = prepare_record(fields)
        self.client.update(self.operation_for(operation), check_module(module), wolkvox_id.strip(), prepared)

    def iter_upsert_many(
        self,
        module: str,
        records: Iterable[Mapping[str, Any]],
        *,
        key_field: str,
        mode: str = "upsert",
        operation: str | None = None,
        lookup: str = "auto",
        refresh: bool = False,
        state_path: str | None = None,
        batch_size: int = DEFAULT_BATCH_SIZE,
        max_in_flight: int = api.MAX_IN_FLIGHT_PER_TOKEN,
        progress_interval: float = DEFAULT_PROGRESS_INTERVAL,
        journal: Journal | None = None,
    ) -> UpsertLoad:
        """A sync to iterate: a result per record, in input order. Same parameters as :meth:`upsert_many`."""
        options = SyncOptions(key_field, mode, lookup, refresh, batch_size, max_in_flight, progress_interval)
        check_records_argument(records)
        held = records if isinstance(records, Sequence) else list(records)  # read twice: held in memory
        return self.sync_load(
            module,
            lambda: enumerate(held),
            options,
            operation=operation,
            state_path=state_path,
            journal=journal,
        )

    def sync_load(
        self,
        module: str,
        source: Source,
        options: SyncOptions,
        *,
        operation: str | None = None,
        state_path: str | None = None,
        journal: Journal | None = None,
    ) -> UpsertLoad:
        """:meth:`iter_upsert_many` over a :data:`~airflow_provider_wolkvox.client.sync.engine.Source`
        with its options as one :class:`SyncOptions` (for the operators)."""
        return UpsertLoad(
            self.client,
            self.operation_for(operation),
            check_module(module),
            source,
            options,
            state_path=state_path,
            journal=journal,
        )

    def upsert_many(
        self,
        module: str,
        records: Iterable[Mapping[str, Any]],
        *,
        key_field: str,
        mode: str = "upsert",
        operation: str | None = None,
        lookup: str = "auto",
        refresh: bool = False,
        state_path: str | None = None,
        batch_size: int = DEFAULT_BATCH_SIZE,
        max_in_flight: int = api.MAX_IN_FLIGHT_PER_TOKEN,
        progress_interval: float = DEFAULT_PROGRESS_INTERVAL,
    ) -> UpsertResult:
        """Create, update or skip each record of ``module`` by ``key_field``; one result each, in input order.

        :param key_field: the field naming a record in the input and in the CRM; every record needs
            one, and no two records of the input the same.
        :param mode: ``"upsert"`` (create absent keys, update present ones), ``"insert_only"``
            (create absent keys, skip present ones), ``"update_only"`` (update present keys, skip
            absent ones: never create).
        :param lookup: how to learn which keys exist: ``"query"`` (one ``query.php`` call per key),
            ``"scan"`` (read the module by creation date, about one call per 1,000 records) or
            ``"auto"`` (the cheaper; see the README).
        :param refresh: look every key up in the CRM, ignoring the sync state (records edited in the
            CRM since the last run are then brought back to the input's values).
        :param state_path: a sync state file (local path or ``ObjectStoragePath`` URL): keys known
            there cost no look-up, and unchanged records no call; written whole at the end.
        :param batch_size: records per ``insertMany.php`` call of the creates.
        :param max_in_flight: requests in flight at once, 1 or 2.
        :raises WolkvoxInputError: a bad record, a record without its key or a key given twice,
            before anything is sent.
        """
        load = self.iter_upsert_many(
            module,
            records,
            key_field=key_field,
            mode=mode,
            operation=operation,
            lookup=lookup,
            refresh=refresh,
            state_path=state_path,
            batch_size=batch_size,
            max_in_flight=max_in_flight,
            progress_interval=progress_interval,
        )
        return UpsertResult(list(load), load.summary, load.plan)

    def query(
        self, module: str, field: str, value: Any, *, operation: str | None = None
    ) -> list[dict[str, Any]]:
        """The records of ``module`` whose ``field`` equals ``value``."""
        return self.client.query(self.operation_for(operation), check_module(module), field, value)

    def token_info(self, *, operation: str | None = None) -> TokenInfo:
        """The token's quota figures for today (costs one call of the quota)."""
        return self.client.token_info(self.operation_for(operation))

    def test_connection(self) -> tuple[bool, str]:
        """Check host, token and operation by reading the token's quota; never inserts anything."""
        try:
            info = self.token_info()
        except WolkvoxError as error:
            return False, str(error)
        finally:
            # The API server that runs the Test button lives long: do not leave the session open.
            if "client" in self.__dict__:
                self.client.close()
        return True, (
            f"Connected to {self.client.base_url}: {info.calls_left} of {info.token_limit} calls left today"
            + ("" if info.hours_to_reset is None else f", the count restarts in {info.hours_to_reset:g} h")
        )

    def _timeout(self) -> float:
        raw = self._extras.get("timeout")
        if raw in (None, ""):
            return DEFAULT_TIMEOUT
        try:
            timeout = float(raw)
        except (TypeError, ValueError):
            timeout = math.nan
        if not math.isfinite(timeout) or timeout <= 0:
            raise WolkvoxConfigError(
                f"the wolkvox Connection's extra timeout must be a positive number, got {raw!r}"
            )
        return timeout

    def _check_quota(self, operation: str, load: BulkLoad) -> None:
        needed = load.calls_needed
        if needed is None:
            raise WolkvoxInputError("quota_check needs the number of records: pass total= for this input")
        reserve = settle_reserve(needed) if load.options.dedupe_field else 0
        info = self.client.token_info(operation)
        if needed + reserve > info.calls_left:
            reset = (
                "" if info.hours_to_reset is None else f"; the count restarts in {info.hours_to_reset:g} h"
            )
            raise WolkvoxQuotaExceededError(
                f"wolkvox quota check: loading {load.total} records needs {needed} calls, plus {reserve} "
                f"kept for settling lost answers, but only {info.calls_left} of {info.token_limit} are "
                f"left today{reset}; nothing was sent"
            )
        self.log.info(
            "wolkvox quota check: %d calls needed (plus %d kept for settling lost answers), %d left today",
            needed,
            reserve,
            info.calls_left,
        )


def check_module(module: Any) -> str:
    """The module name, or ``WolkvoxInputError`` when it is not a non-empty string."""
    if not isinstance(module, str) or not module.strip():
        raise WolkvoxInputError(f"module must be a non-empty string such as 'contacts', got {module!r}")
    return module.strip()


def _flag(extras: Mapping[str, Any], name: str, *, default: bool) -> bool:
    """A boolean extra; the UI and env JSON may give it as a bool or as text."""
    value = extras.get(name)
    if value is None or value == "":
        return default
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("true", "1", "yes", "on"):
        return True
    if text in ("false", "0", "no", "off"):
        return False
    raise WolkvoxConfigError(f"the wolkvox Connection's extra {name} must be true or false, got {value!r}")
