"""The token never shows: not in logs, errors, reprs, XCom or results files; the masker knows it."""

from __future__ import annotations

import base64
import json
import logging
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from airflow.providers.common.compat.sdk import AirflowException, AirflowFailException, redact

from airflow_provider_wolkvox import api
from airflow_provider_wolkvox.client.redaction import Redactor
from airflow_provider_wolkvox.exceptions import WolkvoxUnreadableIdError
from airflow_provider_wolkvox.hooks.wolkvox import WolkvoxHook
from airflow_provider_wolkvox.operators.insert import WolkvoxInsertManyOperator, WolkvoxInsertOperator
from airflow_provider_wolkvox.testing import CONN_ENV_VAR, FakeWolkvoxServer, Fault
from tests.conftest import OPERATION, DictStateStore, RecordingTaskInstance

SECRET = "s3cr3t-wolkvox-token-5f2a9c"


@pytest.fixture
def server(monkeypatch: pytest.MonkeyPatch, fast_retries: object) -> Iterator[FakeWolkvoxServer]:
    with FakeWolkvoxServer({SECRET: OPERATION}) as fake:
        monkeypatch.setenv(CONN_ENV_VAR, fake.airflow_connection())
        yield fake


def echoing(server: FakeWolkvoxServer, status: int, times: int | None = None) -> None:
    """Make the server echo the token in its error message, as a careless proxy or API might."""
    body = {
        "code": status,
        "error": "FORBIDDEN" if status == 403 else "BAD REQUEST",
        "msg": f"BAD TOKEN {SECRET}",
    }
    server.inject(Fault.RESPOND, status=status, body=body, times=times)


def test_the_token_is_registered_with_the_secret_masker(server: FakeWolkvoxServer) -> None:
    WolkvoxHook().client  # noqa: B018 - reading the Connection registers the token
    assert SECRET not in str(redact(f"token={SECRET}"))


def test_reprs_hide_the_token(server: FakeWolkvoxServer) -> None:
    hook = WolkvoxHook()
    shown = [
        repr(hook),
        repr(hook.client),
        repr(WolkvoxInsertOperator(task_id="one", module="contacts", fields={"a": 1})),
        repr(WolkvoxInsertManyOperator(task_id="many", module="contacts", records=[{"a": 1}])),
        repr(hook.token_info()),
    ]
    assert not any(SECRET in text for text in shown)


def test_errors_and_logs_never_carry_the_token(
    server: FakeWolkvoxServer, caplog: pytest.LogCaptureFixture, capfd: pytest.CaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    texts: list[str] = []
    echoing(server, 403, times=None)
    for call in (
        lambda: WolkvoxHook().insert("contacts", {"a": 1}),
        lambda: WolkvoxHook().token_info(),
        lambda: WolkvoxInsertOperator(task_id="t", module="contacts", fields={"a": 1}).execute({}),  # type: ignore[arg-type]
    ):
        with pytest.raises(AirflowException) as raised:
            call()
        texts += [str(raised.value), repr(raised.value), str(raised.value.__cause__)]
    ok, message = WolkvoxHook().test_connection()
    assert not ok
    texts.append(message)
    assert all("BAD TOKEN ***" in text for text in texts[:2])
    output = capfd.readouterr()
    for text in [*texts, caplog.text, output.out, output.err]:
        assert SECRET not in text


def test_xcom_and_results_file_never_carry_the_token(server: FakeWolkvoxServer, tmp_path: Path) -> None:
    echoing(server, 400, times=None)  # every batch (and every split of it) is refused, echoing the token
    results_path = tmp_path / "results.jsonl"
    ti = RecordingTaskInstance()
    operator = WolkvoxInsertManyOperator(
        task_id="t",
        module="contacts",
        records=[{"a": n} for n in range(4)],
        results_path=str(results_path),
        max_failed_records=4,
    )
    ids = operator.execute({"ti": ti})  # type: ignore[arg-type]

    assert ids == [None] * 4
    assert [f["msg"] for f in ti.pushed["failed_records"]] == ["BAD TOKEN ***"] * 4
    assert SECRET not in json.dumps(ti.pushed)
    assert SECRET not in results_path.read_text()
    assert server.calls(api.INSERT_MANY_PATH) + server.calls(api.INSERT_PATH) > 0


SLASHED = "s3cr3t/wolkvox+token=5f2a9c"


def refused_echoing(
    monkeypatch: pytest.MonkeyPatch, token: str, body: str | bytes, results_path: Path
) -> tuple[AirflowException, RecordingTaskInstance]:
    """A single insert and a bulk load of one record, each refused (400) by a CRM echoing ``body``."""
    ti = RecordingTaskInstance()
    with FakeWolkvoxServer({token: OPERATION}) as fake:
        monkeypatch.setenv(CONN_ENV_VAR, fake.airflow_connection())
        fake.inject(Fault.RESPOND, status=400, body=body, times=None)
        with pytest.raises(AirflowException) as raised:
            WolkvoxHook().insert("contacts", {"a": 1})
        WolkvoxInsertManyOperator(
            task_id="t",
            module="contacts",
            records=[{"a": 1}],
            results_path=str(results_path),
            max_failed_records=1,
        ).execute({"ti": ti})  # type: ignore[arg-type]
    assert str(raised.value).endswith("HTTP 400: BAD REQUEST BAD TOKEN ***")
    assert [f["msg"] for f in ti.pushed["failed_records"]] == ["BAD TOKEN ***"]
    return raised.value, ti


# The forms a CRM could echo: PHP's json_encode escapes "/", a URL-encoding proxy encodes "/+=".
@pytest.mark.parametrize("echoed", ["s3cr3t\\/wolkvox+token=5f2a9c", "s3cr3t%2Fwolkvox%2Btoken%3D5f2a9c"])
def test_the_token_is_redacted_in_the_forms_the_crm_could_echo(
    monkeypatch: pytest.MonkeyPatch,
    fast_retries: object,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    capfd: pytest.CaptureFixture,
    echoed: str,
) -> None:
    caplog.set_level(logging.DEBUG)
    body = '{"code":400,"error":"BAD REQUEST","msg":"BAD TOKEN ' + echoed + '"}'
    results_path = tmp_path / "results.jsonl"
    raised, ti = refused_echoing(monkeypatch, SLASHED, body, results_path)
    output = capfd.readouterr()
    shown = [str(raised), json.dumps(ti.pushed), results_path.read_text(), caplog.text, output.out]
    for text in shown:
        assert SLASHED not in text
        assert echoed not in text
    # The masker knows every form, so Airflow's own log lines hide them too.
    assert echoed not in str(redact(f"echo={echoed}"))


def _runs(token: str) -> set[str]:
    """Every run of 8 characters of ``token`` (the token itself when shorter), lower-cased."""
    size = min(8, len(token))
    return {token[start : start + size].lower() for start in range(len(token) - size + 1)}


def leaks(text: str, token: str) -> list[str]:
    """The forms of ``token`` that ``text`` holds: a run of it in any case, or a base64 form."""
    raw = token.encode("latin-1")
    encoded = {base64.b64encode(raw).decode(), base64.urlsafe_b64encode(raw).decode()}
    lowered = text.lower()
    found = [run for run in _runs(token) if run in lowered]
    found += [form.rstrip("=") for form in encoded if form.rstrip("=") in text]
    # The whole token but one character, as UTF-8 decoding with replacement shows a Latin-1 one.
    found += [run for run in _runs(raw.decode("utf-8", errors="replace")) if run in lowered]
    return found


def json_escaped(text: str) -> str:
    """``text`` with every character written as a JSON ``\\uXXXX`` escape: valid JSON, and unreadable."""
    return "".join(f"\\u{ord(char):04x}" for char in text)


# How a hostile or careless CRM could echo the token, as the raw text of a JSON string.
ECHOES: dict[str, Callable[[str], str]] = {
    "json escapes": json_escaped,
    "first 20 characters": lambda token: token[:20],
    "upper case": str.upper,
    "base64": lambda token: base64.b64encode(token.encode()).decode(),
    "base64url unpadded": lambda token: base64.urlsafe_b64encode(token.encode()).decode().rstrip("="),
    "url-encoded": lambda token: quote(token, safe=""),
}


def shown_by(
    ti: RecordingTaskInstance, results_path: Path, caplog: pytest.LogCaptureFixture, capfd: Any, *extra: str
) -> list[str]:
    output = capfd.readouterr()
    results = results_path.read_text() if results_path.exists() else ""
    decoded = [json.dumps(json.loads(line), ensure_ascii=False) for line in results.splitlines()]
    return [
        *extra,
        json.dumps(ti.pushed, ensure_ascii=False),
        results,
        *decoded,
        caplog.text,
        output.out,
        output.err,
    ]


@pytest.mark.parametrize("echo", ECHOES.values(), ids=ECHOES.keys())
def test_a_success_answer_echoing_the_token_as_the_id_leaves_no_copy_of_it(
    server: FakeWolkvoxServer,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    capfd: pytest.CaptureFixture,
    echo: Callable[[str], str],
) -> None:
    caplog.set_level(logging.DEBUG)
    echoed = echo(SECRET)
    one = '{"code":200,"error":"null","msg":"Succesfully create record","data":{"wolkvox_id":"ECHO"}}'
    many = '{"code":200,"error":"null","msg":"ok","data":[{"wolkvox_id":"ECHO"}]}'
    one, many = one.replace("ECHO", echoed), many.replace("ECHO", echoed)
    server.inject(Fault.RESPOND, status=200, body=one, path=api.INSERT_PATH, times=None)
    server.inject(Fault.RESPOND, status=200, body=many, path=api.INSERT_MANY_PATH, times=None)
    store, ti, results_path = DictStateStore(), RecordingTaskInstance(), tmp_path / "results.jsonl"

    with pytest.raises(AirflowFailException) as raised:
        WolkvoxInsertOperator(task_id="one", module="contacts", fields={"a": 1}).execute(
            {"ti": ti, "task_state_store": store}  # type: ignore[arg-type]
        )
    ids = WolkvoxInsertManyOperator(
        task_id="many", module="contacts", records=[{"a": 1}], results_path=str(results_path)
    ).execute({"ti": ti, "task_state_store": store})  # type: ignore[arg-type]

    assert isinstance(raised.value.__cause__, WolkvoxUnreadableIdError)
    assert str(raised.value).startswith(
        "wolkvox insert.php (module 'contacts'): the record was created, but the id in the answer is "
        "unreadable ("
    )
    assert ids == [None]
    assert [json.loads(line)["status"] for line in results_path.read_text().splitlines()] == [
        "created_id_unknown"
    ]
    texts = shown_by(ti, results_path, caplog, capfd, str(raised.value), repr(raised.value))
    texts.append(json.dumps(store.values, ensure_ascii=False))
    assert [leaks(text, SECRET) for text in texts] == [[]] * len(texts)


LATIN1 = "s3cr3t-wolkvox-tok\u00e9n-5f2a9c"


@pytest.mark.parametrize("echo", [*ECHOES.values(), None], ids=[*ECHOES.keys(), "raw latin-1 bytes"])
def test_an_error_echoing_the_token_in_any_form_leaves_no_copy_of_it(
    monkeypatch: pytest.MonkeyPatch,
    fast_retries: object,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    capfd: pytest.CaptureFixture,
    echo: Callable[[str], str] | None,
) -> None:
    caplog.set_level(logging.DEBUG)
    token = SECRET if echo is not None else LATIN1
    if echo is None:  # the token's header bytes echoed as they came, in a UTF-8 body
        body: str | bytes = (
            b'{"code":400,"error":"BAD REQUEST","msg":"BAD TOKEN ' + token.encode("latin-1") + b'"}'
        )
    else:
        body = '{"code":400,"error":"BAD REQUEST","msg":"BAD TOKEN ECHO"}'.replace("ECHO", echo(token))
    results_path = tmp_path / "results.jsonl"
    raised, ti = refused_echoing(monkeypatch, token, body, results_path)
    texts = shown_by(ti, results_path, caplog, capfd, str(raised), repr(raised))
    assert [leaks(text, token) for text in texts] == [[]] * len(texts)


@pytest.mark.parametrize(
    "message",
    [
        "Succesfully create record",
        "THE RECORD DOES NOT EXIST",
        "1 records were are found: s3cr3t (a 6-character run of the token is no secret)",
        "64cb1f0e2a9d4c0012ab34cd",
    ],
)
def test_redaction_is_not_over_eager(message: str) -> None:
    assert Redactor(SECRET).text(message) == message
