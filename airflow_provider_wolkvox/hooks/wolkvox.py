"""WolkvoxHook: an Airflow Connection turned into a configured wolkvox client, and the front door
to each operation: single calls on the client, bulk loads and syncs on the engines of ``loads/``."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from functools import cached_property
from typing import Any, Literal, TypeVar, overload

from airflow.providers.common.compat.sdk import BaseHook, mask_secret

from airflow_provider_wolkvox import CONN_FIELDS, UI_FIELD_BEHAVIOUR
from airflow_provider_wolkvox.client import RetryPolicy, TokenInfo, WolkvoxClient
from airflow_provider_wolkvox.client.client import DEFAULT_TIMEOUT
from airflow_provider_wolkvox.client.host import base_url_from_host
from airflow_provider_wolkvox.client.redaction import token_forms
from airflow_provider_wolkvox.client.settings import check_timeout
from airflow_provider_wolkvox.exceptions import (
    WolkvoxConfigError,
    WolkvoxError,
    WolkvoxInputError,
)
from airflow_provider_wolkvox.fields import prepare_record
from airflow_provider_wolkvox.loads import (
    BulkLoad,
    DryRunPlan,
    InsertManyResult,
    Journal,
    LoadOptions,
    RecordResult,
    SyncLoad,
    SyncOptions,
    SyncSource,
    UpsertResult,
    check_module,
    insert_one,
    sync_source,
)
from airflow_provider_wolkvox.state_file import StateFile

Options = TypeVar("Options", LoadOptions, SyncOptions)
Records = Iterable[Mapping[str, Any]]


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
            conn.host,
            allow_insecure_http=_flag(self._extras, "allow_insecure_http", default=False),
            owner=self._owner,
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
            owner=self._owner,
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
        journal: Journal | None = None,
    ) -> str:
        """Create one record in ``module``; return its ``wolkvox_id``.

        :param module: the CRM module (``"contacts"``, ``"leads"``, a custom module).
        :param fields: field label → value; see :mod:`airflow_provider_wolkvox.fields` for typed values.
        :param operation: the CRM operation; defaults to the Connection's extra.
        :param dedupe_field: a field unique per record (an e-mail, an id number): when the answer
            is lost, the record is looked up by it (one call, once the request's timeout has passed
            since it was sent) and sent again only if absent.
        :param journal: where a task keeps what became of the insert, so that a later try of it
            returns the id an earlier one created instead of creating the record again.
        :raises WolkvoxOutcomeUnknownError: the record may or may not have been created.
        """
        return insert_one(
            self.client,
            self.operation_for(operation),
            check_module(module),
            fields,
            dedupe_field=dedupe_field,
            journal=journal,
        )

    def iter_insert_many(
        self,
        module: str,
        records: Iterable[Mapping[str, Any]],
        *,
        operation: str | None = None,
        total: int | None = None,
        journal: Journal | None = None,
        options: LoadOptions | None = None,
        **settings: Any,
    ) -> BulkLoad:
        """A bulk load to iterate: one result per record, in input order, as records settle.

        Takes what :meth:`insert_many` takes; use this form to stream results (e.g. to a file)
        instead of holding them all.

        :param journal: notes progress so that a later try of the task recognises the records this
            one created (see :mod:`airflow_provider_wolkvox.loads.journal`).
        :param options: the settings as one :class:`~airflow_provider_wolkvox.loads.LoadOptions`,
            instead of keywords.
        """
        options = _options(LoadOptions, options, settings)
        operation = self.operation_for(operation)
        load = BulkLoad(
            self.client, operation, check_module(module), records, options, total=total, journal=journal
        )
        if options.quota_check:
            load.check_quota(self.client.token_info(operation))
        return load

    def insert_many(
        self,
        module: str,
        records: Iterable[Mapping[str, Any]],
        *,
        operation: str | None = None,
        total: int | None = None,
        **settings: Any,
    ) -> InsertManyResult:
        """Create many records of ``module``; every input record gets a result, in input order.

        :param records: mappings of field label → value; any iterable, read lazily.
        :param total: the number of records when ``records`` has no length (progress, quota check).
        :param settings: how to send, by keyword: ``batch_size``, ``single``, ``max_in_flight``,
            ``dedupe_field``, ``progress_interval``, ``quota_check``; see
            :class:`~airflow_provider_wolkvox.loads.LoadOptions` for each.
        :raises WolkvoxInputError: a bad record or setting; for a lazy input found mid-load, the
            error's ``results`` holds the results of every record before it.
        """
        load = self.iter_insert_many(module, records, operation=operation, total=total, **settings)
        results: list[RecordResult] = []
        try:
            results.extend(load)
        except WolkvoxInputError as error:
            error.results = results
            raise
        return InsertManyResult(results, load.summary)

    def iter_upsert_many(
        self,
        module: str,
        records: Iterable[Mapping[str, Any]] | SyncSource,
        *,
        operation: str | None = None,
        state_path: str | None = None,
        journal: Journal | None = None,
        options: SyncOptions | None = None,
        **settings: Any,
    ) -> SyncLoad:
        """A sync to iterate: a result per record, in input order (then a mirror's deletes). Takes what
        :meth:`upsert_many` takes; with ``dry_run=True``, call the sync's ``dry_run()`` instead.

        :param records: the records, or a function giving a fresh pass of ``(label, record)`` pairs
            over them on each call (a file read afresh; see
            :data:`~airflow_provider_wolkvox.loads.SyncSource`).
        :param options: the settings as one :class:`~airflow_provider_wolkvox.loads.SyncOptions`.
        """
        options = _options(SyncOptions, options, settings)
        return SyncLoad(
            self.client,
            self.operation_for(operation),
            check_module(module),
            records if callable(records) else sync_source(records),
            options,
            state=None if state_path is None else StateFile(state_path),
            journal=journal,
        )

    @overload
    def upsert_many(
        self, module: str, records: Records, *, dry_run: Literal[False] = False, **settings: Any
    ) -> UpsertResult: ...

    @overload
    def upsert_many(
        self, module: str, records: Records, *, dry_run: Literal[True], **settings: Any
    ) -> DryRunPlan: ...

    def upsert_many(
        self,
        module: str,
        records: Records,
        *,
        operation: str | None = None,
        state_path: str | None = None,
        **settings: Any,
    ) -> UpsertResult | DryRunPlan:
        """Create, update or skip each record of ``module`` by a key field; one result each, in input order.

        With ``mode="mirror"``, also delete the records of the keys the sync state tracks that
        ``records`` no longer holds (their results follow the input's). With ``dry_run=True``, make
        the look-ups only and return the :class:`~airflow_provider_wolkvox.loads.DryRunPlan`: what
        the sync would write, the calls that takes, the calls the dry run used and the quota left.

        :param state_path: a sync state file (local path or ``ObjectStoragePath`` URL): keys known
            there cost no look-up, and unchanged records no call; held by this sync alone (a local
            one through ``<state_path>.lock``) and written at the end over the state as it is then.
            Required by ``mode="mirror"``.
        :param settings: by keyword: ``key_field`` (required), ``mode``, ``lookup``, ``refresh``,
            ``batch_size``, ``max_in_flight``, ``progress_interval``, ``dry_run``, ``max_deletes``;
            see :class:`~airflow_provider_wolkvox.loads.SyncOptions` for each.
        :raises WolkvoxInputError: a bad record or setting, a record without its key or a key given
            twice, a mirror sync without ``state_path``, before anything is sent.
        :raises WolkvoxDeleteGuardError: a mirror sync would delete more than ``max_deletes`` allows
            (not raised by a dry run, whose plan says so), before anything is sent.
        """
        load = self.iter_upsert_many(module, records, operation=operation, state_path=state_path, **settings)
        if load.options.dry_run:
            return load.dry_run()
        return UpsertResult(list(load), load.summary, load.plan)

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

    @property
    def _owner(self) -> str:
        """The Connection as the messages name it."""
        return f"the wolkvox Connection {self.wolkvox_conn_id!r}"

    def _timeout(self) -> float:
        raw = self._extras.get("timeout")
        if raw in (None, ""):
            return DEFAULT_TIMEOUT
        return check_timeout(raw, owner=self._owner, field="extra timeout")


def _options(kind: type[Options], given: Options | None, settings: dict[str, Any]) -> Options:
    """The options of one call: ``given`` whole, or built from the keywords."""
    if given is None:
        return kind(**settings)
    if settings:
        raise WolkvoxInputError(f"give options= or the settings {sorted(settings)} as keywords, not both")
    return given


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
