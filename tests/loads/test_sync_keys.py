"""A sync's key identity on every path, writers the look-up did not see, and nothing learned twice.

Against the fake CRM over real HTTP; the fake matches ``query.php`` values exactly (typed values by
their ``value``), so a look-up finds what the CRM holds only when it sends that very form.
"""

from __future__ import annotations

import contextlib
import datetime
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from airflow_provider_wolkvox import api
from airflow_provider_wolkvox.exceptions import WolkvoxInputError
from airflow_provider_wolkvox.hooks.wolkvox import WolkvoxHook
from airflow_provider_wolkvox.loads import Journal, RecordStatus
from airflow_provider_wolkvox.loads.compare import key_text, key_value
from airflow_provider_wolkvox.operators.upsert import WolkvoxUpsertOperator
from airflow_provider_wolkvox.testing import FakeWolkvoxServer
from tests.conftest import DictStateStore, RecordingTaskInstance
from tests.loads.records import MODULE, default_crm, delete_in_the_crm

WRITES = (api.INSERT_PATH, api.INSERT_MANY_PATH, api.UPDATE_PATH)


@pytest.fixture(scope="module")
def shared_server() -> Iterator[FakeWolkvoxServer]:
    """One fake for the module (hypothesis runs many examples per test); ``server`` resets it."""
    with (
        pytest.MonkeyPatch.context() as patch,
        default_crm(patch, unique_fields={MODULE: ["Email"]}) as fake,
    ):
        yield fake


@pytest.fixture
def server(shared_server: FakeWolkvoxServer) -> FakeWolkvoxServer:
    shared_server.reset()
    return shared_server


def contact(n: int, **changes: Any) -> dict[str, Any]:
    return {"Email": f"c{n}@example.com", "Nombre": f"Contacto {n}", **changes}


def seed(server: FakeWolkvoxServer, records: Iterable[Mapping[str, Any]]) -> list[str]:
    """Records already in the CRM, created over the past hours; their ids."""
    copies = [dict(record) for record in records]
    now = server.crm_now()
    created = [now - datetime.timedelta(hours=n + 1) for n in range(len(copies))]
    return server.add_records(MODULE, copies, created_at=created)


def writes(server: FakeWolkvoxServer) -> int:
    return sum(server.calls(path) for path in WRITES)


def statuses(results: Iterable[Any]) -> list[RecordStatus]:
    return [result.status for result in results]


# One key identity

KEY_IDENTITY = [
    # A number, or a text spelling one as numbers print: its shortest decimal text.
    pytest.param([5, 5.0, "5", "5.0", " 5.00 ", Decimal("5.000")], "5", id="five"),
    pytest.param([1.5, "1.50", Decimal("1.5")], "1.5", id="fraction"),
    pytest.param([0, 0.0, -0.0, "0", "-0", "0.0"], "0", id="zero-has-no-sign"),
    pytest.param([-7, "-7.0"], "-7", id="negative"),
    pytest.param([10**30 + 1, f"{10**30 + 1}.0"], str(10**30 + 1), id="every-digit-kept"),
    # A code, kept as written: leading zeros, a sign, an exponent, separators.
    pytest.param(["007", " 007 "], "007", id="leading-zeros"),
    pytest.param(["+573001234567"], "+573001234567", id="plus-sign"),
    pytest.param(["1e3"], "1e3", id="exponent-text"),
    pytest.param(["1,000"], "1,000", id="separator"),
    # Text: blanks around do not count, case does; a typed field by its value.
    pytest.param([" a@x.com ", "a@x.com\t", {"type": "text", "value": "a@x.com "}], "a@x.com", id="text"),
    pytest.param(["A@x.com"], "A@x.com", id="case-counts"),
]


@pytest.mark.parametrize(("forms", "identity"), KEY_IDENTITY)
def test_every_form_of_a_key_has_one_identity_and_is_written_as_it(forms: list[Any], identity: str) -> None:
    for form in forms:
        assert key_text(form) == identity, form
        written = key_value(form)
        if isinstance(form, dict):
            assert written == {**form, "value": identity}
        else:
            assert written == identity
        assert key_text(written) == identity


@pytest.mark.parametrize("lookup", ["query", "scan"])
def test_keys_with_a_trailing_blank_are_found_by_either_look_up(
    server: FakeWolkvoxServer, lookup: str
) -> None:
    seed(server, [contact(n) for n in range(60)])
    records = [contact(n, Email=f"c{n}@example.com ") if n % 2 else contact(n) for n in range(60)]

    result = WolkvoxHook().upsert_many(MODULE, records, key_field="Email", lookup=lookup)

    assert statuses(result.results) == [RecordStatus.UNCHANGED] * 60
    assert writes(server) == 0
    assert server.record_count(MODULE) == 60


@pytest.mark.parametrize("lookup", ["query", "scan"])
def test_a_number_key_given_as_a_float_is_found_where_the_crm_holds_its_text(
    server: FakeWolkvoxServer, lookup: str
) -> None:
    # pandas reads an id column with a gap as floats: 5.0 where the CRM holds "5".
    seed(server, [{"Cedula": str(n), "Nombre": f"C{n}"} for n in range(1, 61)])
    records = [{"Cedula": float(n), "Nombre": f"C{n}"} for n in range(1, 61)]

    result = WolkvoxHook().upsert_many(MODULE, records, key_field="Cedula", lookup=lookup)

    assert statuses(result.results) == [RecordStatus.UNCHANGED] * 60
    assert writes(server) == 0
    assert server.record_count(MODULE) == 60
    assert set(result.ids_by_key) == {str(n) for n in range(1, 61)}


def test_the_look_up_sends_the_key_identity_not_the_input_form(requests_mock: Any, wolkvox_conn: str) -> None:
    base = "https://crm0001.wolkvox.com"
    query = requests_mock.post(
        f"{base}{api.QUERY_PATH}", json={"code": "200", "error": "null", "msg": "0", "data": []}
    )
    requests_mock.post(
        f"{base}{api.INSERT_MANY_PATH}",
        json={
            "code": 200,
            "error": "null",
            "msg": "ok",
            "data": [{"wolkvox_id": f"{n:024x}"} for n in (1, 2, 3)],
        },
    )
    records = [
        {"Clave": " a@x.com "},
        {"Clave": 5.0},
        {"Clave": {"type": "telephone", "value": " 3001234567 "}},
    ]

    WolkvoxHook().upsert_many(MODULE, records, key_field="Clave", lookup="query", max_in_flight=1)

    assert [request.json()["value"] for request in query.request_history] == ["a@x.com", "5", "3001234567"]
    [create] = [r for r in requests_mock.request_history if r.url.endswith(api.INSERT_MANY_PATH)]
    # What a sync writes for its key is the identity it looks up by, so that it finds it next time.
    assert [record["Clave"] for record in create.json()["fields"]] == [
        "a@x.com",
        "5",
        {"type": "telephone", "value": "3001234567"},
    ]


def test_a_key_created_from_another_form_is_found_by_the_next_run_without_a_state(
    server: FakeWolkvoxServer,
) -> None:
    records = [{"Cedula": 7.0, "Nombre": "Siete"}, {"Cedula": 8, "Nombre": "Ocho"}, {"Cedula": " 9 "}]
    first = WolkvoxHook().upsert_many(MODULE, records, key_field="Cedula", lookup="query")
    assert statuses(first.results) == [RecordStatus.CREATED] * 3

    second = WolkvoxHook().upsert_many(MODULE, records, key_field="Cedula", lookup="query")

    assert statuses(second.results) == [RecordStatus.UNCHANGED] * 3
    assert second.ids_by_key == first.ids_by_key
    assert sorted(record["Cedula"] for record in server.records(MODULE)) == ["7", "8", "9"]


def test_a_key_given_in_another_form_on_the_next_run_is_known_from_the_state(
    server: FakeWolkvoxServer, tmp_path: Path
) -> None:
    state = str(tmp_path / "state.jsonl")
    first = WolkvoxHook().upsert_many(
        MODULE, [{"Cedula": 5, "Nombre": "C"}], key_field="Cedula", state_path=state
    )
    before = server.calls()

    second = WolkvoxHook().upsert_many(
        MODULE, [{"Cedula": " 5.0 ", "Nombre": "C"}], key_field="Cedula", state_path=state
    )

    assert server.calls() == before
    assert [(r.status, r.wolkvox_id) for r in second.results] == [
        (RecordStatus.UNCHANGED, first.ids_by_key["5"])
    ]


def test_the_re_look_up_of_a_refused_update_sends_the_key_identity(
    server: FakeWolkvoxServer, tmp_path: Path
) -> None:
    state = str(tmp_path / "state.jsonl")
    first = WolkvoxHook().upsert_many(MODULE, [contact(0)], key_field="Email", state_path=state)
    # Another writer replaced the record: deleted it and created the key again, in its canonical form.
    delete_in_the_crm(server, first.ids_by_key["c0@example.com"])
    [again] = seed(server, [contact(0)])

    second = WolkvoxHook().upsert_many(
        MODULE, [contact(0, Email="c0@example.com ", Nombre="Otro")], key_field="Email", state_path=state
    )

    assert [(r.status, r.wolkvox_id, r.fields) for r in second.results] == [
        (RecordStatus.UPDATED, again, ("Nombre",))
    ]
    assert [(r["wolkvox_id"], r["Nombre"]) for r in server.records(MODULE)] == [(again, "Otro")]


@pytest.mark.parametrize(
    ("first", "second"),
    [("a@x.com", " a@x.com "), (5, "5.0"), (5.0, "5"), ("5", {"type": "telephone", "value": 5})],
)
def test_equivalent_forms_in_one_input_are_one_key(
    server: FakeWolkvoxServer, first: Any, second: Any
) -> None:
    with pytest.raises(WolkvoxInputError, match=r"record 0 and record 1 have the same key"):
        WolkvoxHook().upsert_many(MODULE, [{"Clave": first}, {"Clave": second}], key_field="Clave")
    assert server.calls() == 0


# Equivalent forms: a key as the input may give it, and its canonical form as the CRM holds it.

_emails = st.from_regex(r"[a-z]{1,6}(\.[a-z]{1,4})?@[a-z]{1,5}\.(com|co)", fullmatch=True)
_numbers = st.integers(min_value=0, max_value=10**12)
_blanks = st.sampled_from(["", " ", "  ", "\t"])


@st.composite
def _forms(draw: st.DrawFn, key: str | int) -> Any:
    """One form of ``key`` that the value rules make equal to it."""
    if isinstance(key, int):
        form: Any = draw(st.sampled_from([key, float(key), str(key), f"{key}.0"]))
    else:
        form = key
    if isinstance(form, str):
        form = draw(_blanks) + form + draw(_blanks)
    if draw(st.booleans()):
        form = {"type": draw(st.sampled_from(["telephone", "text"])), "value": form}
    return form


@st.composite
def _inputs(draw: st.DrawFn) -> list[tuple[str, Any]]:
    """(canonical form, input form) of distinct keys."""
    keys = draw(st.lists(st.one_of(_emails, _numbers), min_size=1, max_size=12, unique_by=key_text))
    return [(str(key), draw(_forms(key))) for key in keys]


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(keys=_inputs())
def test_query_and_scan_find_every_equivalent_form_of_a_key(
    shared_server: FakeWolkvoxServer, keys: list[tuple[str, Any]]
) -> None:
    server = shared_server
    server.reset()
    ids = seed(server, [{"Clave": canonical, "Nombre": f"N{n}"} for n, (canonical, _) in enumerate(keys)])
    records = [{"Clave": form, "Nombre": f"N{n}"} for n, (_, form) in enumerate(keys)]

    by_query = WolkvoxHook().upsert_many(MODULE, records, key_field="Clave", lookup="query")
    by_scan = WolkvoxHook().upsert_many(MODULE, records, key_field="Clave", lookup="scan")

    expected = [(RecordStatus.UNCHANGED, wolkvox_id) for wolkvox_id in ids]
    assert [(r.status, r.wolkvox_id) for r in by_query.results] == expected
    assert [(r.status, r.wolkvox_id) for r in by_scan.results] == expected
    assert (
        by_query.ids_by_key
        == by_scan.ids_by_key
        == {canonical: i for (canonical, _), i in zip(keys, ids, strict=True)}
    )
    assert writes(server) == 0
    assert server.record_count(MODULE) == len(keys)


# Other writers: a key created after the look-up


def _after_the_look_up(records: list[dict[str, Any]], insert: Callable[[], object]) -> Callable[[], Any]:
    """A source whose second pass (the writes, after the look-ups) is preceded by ``insert``."""
    passes = 0

    def source() -> Iterable[tuple[int, dict[str, Any]]]:
        nonlocal passes
        passes += 1
        if passes == 2:
            insert()
        return enumerate(records)

    return source


def test_a_key_another_writer_created_after_the_look_up_is_updated_not_rejected(
    server: FakeWolkvoxServer,
) -> None:
    seed(server, [contact(0)])
    records = [contact(0), contact(1, Nombre="Nuevo"), contact(2)]
    taken: list[str] = []
    source = _after_the_look_up(records, lambda: taken.extend(seed(server, [contact(1, Ciudad="Cali")])))

    results = list(WolkvoxHook().iter_upsert_many(MODULE, source, key_field="Email", lookup="query"))

    assert [(r.status, r.wolkvox_id, r.fields) for r in results[:2]] == [
        (RecordStatus.UNCHANGED, results[0].wolkvox_id, None),
        (RecordStatus.UPDATED, taken[0], ("Nombre",)),
    ]
    assert results[2].status is RecordStatus.CREATED
    assert server.calls(api.UPDATE_PATH) == 1
    assert server.calls(api.QUERY_PATH) == 3 + 1  # the look-ups, and once more after the refusal
    held = {record["Email"]: record for record in server.records(MODULE)}
    assert len(held) == server.record_count(MODULE) == 3
    assert (held["c1@example.com"]["Nombre"], held["c1@example.com"]["Ciudad"]) == ("Nuevo", "Cali")


@pytest.mark.parametrize(
    ("mode", "expected"), [("upsert", RecordStatus.UNCHANGED), ("insert_only", RecordStatus.SKIPPED)]
)
def test_a_key_another_writer_created_with_the_same_values_is_unchanged_or_skipped(
    server: FakeWolkvoxServer, mode: str, expected: RecordStatus
) -> None:
    taken: list[str] = []
    source = _after_the_look_up([contact(0)], lambda: taken.extend(seed(server, [contact(0)])))

    results = list(WolkvoxHook().iter_upsert_many(MODULE, source, key_field="Email", mode=mode))

    assert [(r.status, r.wolkvox_id, r.key) for r in results] == [(expected, taken[0], "c0@example.com")]
    assert server.calls(api.UPDATE_PATH) == 0
    assert server.record_count(MODULE) == 1


def test_a_key_created_by_another_thread_during_the_sync_is_never_rejected(server: FakeWolkvoxServer) -> None:
    # Another writer creates keys while the sync writes: every key ends in the CRM once.
    records = [contact(n) for n in range(200)]

    def other_writer() -> None:
        for n in range(199, 100, -3):
            with contextlib.suppress(ValueError):  # the sync created it first: the CRM refuses it
                seed(server, [contact(n, Nombre="Otro")])

    other = threading.Thread(target=other_writer)
    source = _after_the_look_up(records, other.start)

    results = list(
        WolkvoxHook().iter_upsert_many(MODULE, source, key_field="Email", lookup="query", batch_size=10)
    )
    other.join()

    assert not [r for r in results if r.failed]
    held = {record["Email"]: record["wolkvox_id"] for record in server.records(MODULE)}
    assert len(held) == server.record_count(MODULE) == 200
    assert {r.key: r.wolkvox_id for r in results} == held
    assert {record["Nombre"] for record in server.records(MODULE)} == {r["Nombre"] for r in records}


def test_a_create_refused_for_another_reason_stays_rejected_after_one_look_up(
    server: FakeWolkvoxServer,
) -> None:
    too_long = "x" * (api.MAX_TEXT_LENGTH + 1)
    records = [contact(0, Nombre=too_long)]

    results = list(WolkvoxHook().iter_upsert_many(MODULE, records, key_field="Email", lookup="query"))

    assert [(r.status, r.key) for r in results] == [(RecordStatus.REJECTED, "c0@example.com")]
    assert "LONGER THAN" in str(results[0].msg)
    assert server.calls(api.QUERY_PATH) == 2  # the look-up, and once more after the refusal
    assert server.record_count(MODULE) == 0


# Nothing learned twice


def test_an_unchanged_insert_only_rerun_with_a_state_makes_no_call(
    server: FakeWolkvoxServer, tmp_path: Path
) -> None:
    seed(server, [contact(n) for n in range(30)])
    state = str(tmp_path / "state.jsonl")
    records = [contact(n) for n in range(40)]
    first = WolkvoxHook().upsert_many(
        MODULE, records, key_field="Email", mode="insert_only", state_path=state
    )
    assert statuses(first.results) == [RecordStatus.SKIPPED] * 30 + [RecordStatus.CREATED] * 10
    before = server.calls()

    second = WolkvoxHook().upsert_many(
        MODULE, records, key_field="Email", mode="insert_only", state_path=state
    )

    assert server.calls() == before
    assert statuses(second.results) == [RecordStatus.SKIPPED] * 40
    assert second.ids_by_key == first.ids_by_key
    assert (second.plan.known, second.plan.changed, second.plan.to_look_up) == (40, 0, 0)


def test_an_upsert_after_an_insert_only_run_still_looks_up_keys_whose_values_it_never_wrote(
    server: FakeWolkvoxServer, tmp_path: Path
) -> None:
    seed(server, [contact(n) for n in range(3)])
    state = str(tmp_path / "state.jsonl")
    WolkvoxHook().upsert_many(
        MODULE, [contact(n) for n in range(3)], key_field="Email", mode="insert_only", state_path=state
    )
    lookups = server.calls(api.QUERY_PATH)

    result = WolkvoxHook().upsert_many(
        MODULE, [contact(0), contact(1, Nombre="Otro"), contact(2)], key_field="Email", state_path=state
    )

    assert server.calls(api.QUERY_PATH) - lookups == 3
    assert statuses(result.results) == [RecordStatus.UNCHANGED, RecordStatus.UPDATED, RecordStatus.UNCHANGED]


@pytest.mark.parametrize("mode", ["upsert", "insert_only"])
def test_a_rerun_on_the_same_journal_without_a_state_makes_no_call(
    server: FakeWolkvoxServer, mode: str
) -> None:
    seed(server, [contact(n) for n in range(30)])
    store = DictStateStore()
    records = [contact(n) for n in range(40)]
    hook = WolkvoxHook()
    first = list(hook.iter_upsert_many(MODULE, records, key_field="Email", mode=mode, journal=Journal(store)))
    before = server.calls()

    second = list(
        hook.iter_upsert_many(MODULE, records, key_field="Email", mode=mode, journal=Journal(store))
    )
    notes = len(store.values)
    third = list(hook.iter_upsert_many(MODULE, records, key_field="Email", mode=mode, journal=Journal(store)))

    assert server.calls() == before
    found = RecordStatus.UNCHANGED if mode == "upsert" else RecordStatus.SKIPPED
    assert statuses(first) == [found] * 30 + [RecordStatus.CREATED] * 10
    assert [(r.status, r.wolkvox_id, r.key) for r in second] == [
        (r.status, r.wolkvox_id, r.key) for r in first
    ]
    assert [(r.status, r.wolkvox_id) for r in third] == [(r.status, r.wolkvox_id) for r in first]
    assert len(store.values) == notes  # what an earlier try noted is not noted again


def test_a_clear_of_the_operator_after_success_without_a_state_makes_no_call(
    server: FakeWolkvoxServer,
) -> None:
    seed(server, [contact(n) for n in range(40)])
    store = DictStateStore()
    operator = WolkvoxUpsertOperator(
        task_id="sync", module=MODULE, key_field="Email", records=[contact(n) for n in range(40)]
    )
    first = operator.execute({"ti": RecordingTaskInstance(), "task_state_store": store})  # type: ignore[arg-type]
    assert server.calls(api.QUERY_PATH) == 40
    before = server.calls()

    second = operator.execute({"ti": RecordingTaskInstance(), "task_state_store": store})  # type: ignore[arg-type]

    assert server.calls() == before
    assert second == first
    assert writes(server) == 0
