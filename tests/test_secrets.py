"""The token never shows: not in logs, errors, reprs, XCom or results files; the masker knows it."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from pathlib import Path

import pytest
from airflow.providers.common.compat.sdk import AirflowException, redact

from airflow_provider_wolkvox import api
from airflow_provider_wolkvox.hooks.wolkvox import WolkvoxHook
from airflow_provider_wolkvox.operators.insert import WolkvoxInsertManyOperator, WolkvoxInsertOperator
from airflow_provider_wolkvox.testing import CONN_ENV_VAR, FakeWolkvoxServer, Fault
from tests.conftest import OPERATION, RecordingTaskInstance

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
    ti = RecordingTaskInstance()
    with FakeWolkvoxServer({SLASHED: OPERATION}) as fake:
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
    output = capfd.readouterr()
    shown = [str(raised.value), json.dumps(ti.pushed), results_path.read_text(), caplog.text, output.out]
    for text in shown:
        assert SLASHED not in text
        assert echoed not in text
    # The masker knows every form, so Airflow's own log lines hide them too.
    assert echoed not in str(redact(f"echo={echoed}"))
