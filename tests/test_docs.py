"""The docs cannot drift from the code: the links, code blocks and shell lines of every page are checked.

Pages are read with markdown-it (CommonMark and tables, as GitHub renders them). Every ``python``
block is an excerpt of a file under ``example_dags/`` or ``docs/samples/``, and every sample runs
against the fake CRM; ``json`` blocks parse, and samples of the provider's own formats are read back
by the provider's code; ``bash`` lines are each one of the forms below, checked by the tool it names.
"""

from __future__ import annotations

import itertools
import json
import re
import shlex
import subprocess
import sys
import textwrap
from collections.abc import Callable, Iterator
from functools import cache
from importlib.resources import files
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from markdown_it import MarkdownIt
from markdown_it.token import Token

from airflow_provider_wolkvox import PACKAGE_NAME
from airflow_provider_wolkvox.hooks.wolkvox import WolkvoxHook
from airflow_provider_wolkvox.loads.results import NOT_IN_INPUT, RecordResult, RecordStatus
from airflow_provider_wolkvox.loads.sync.state import STATE_FORMAT, StateHeader, read_state, write_state
from airflow_provider_wolkvox.operators.quota import QuotaWaits, now
from airflow_provider_wolkvox.operators.results_file import ResultLines
from airflow_provider_wolkvox.state_file import StateFile
from airflow_provider_wolkvox.testing.__main__ import _parser as fake_command_parser
from tests.conftest import REPO_ROOT

README = REPO_ROOT / "README.md"
DOCS = REPO_ROOT / "docs"
PAGES = [
    README,
    REPO_ROOT / "CONTRIBUTING.md",
    REPO_ROOT / "benchmarks" / "README.md",
    *sorted(DOCS.glob("*.md")),
]
SAMPLES = sorted((DOCS / "samples").glob("*.py"))
EXCERPT_SOURCES = [*sorted((REPO_ROOT / "example_dags").glob("*.py")), *SAMPLES]
README_LIMIT = 10_000
LANGUAGES = ("python", "json", "bash", "text")
#: Airflow's REST API route of a task instance's state store (Airflow 3.3+).
STATE_STORE_ROUTE = "/api/v2/dags/{dag_id}/dagRuns/{dag_run_id}/taskInstances/{task_id}/state-store"
SAMPLE_TIMEOUT = 120

_MARKDOWN = MarkdownIt("commonmark").enable("table")


def page_id(path: Path) -> str:
    return str(path.relative_to(REPO_ROOT))


@cache
def tokens(page: Path) -> list[Token]:
    return _MARKDOWN.parse(page.read_text(encoding="utf-8"))


def fences(page: Path) -> Iterator[tuple[int, str, str]]:
    """(line of the first content line, language, content) of each fenced block."""
    for token in tokens(page):
        if token.type == "fence" and token.map is not None:
            yield token.map[0] + 2, token.info.strip(), token.content


def blocks(page: Path, language: str) -> Iterator[tuple[int, str]]:
    return ((line, text) for line, info, text in fences(page) if info == language)


def links(page: Path) -> Iterator[tuple[int, str]]:
    """(line, target) of each link and image."""
    for token in tokens(page):
        if token.type != "inline" or token.map is None:
            continue
        line = token.map[0] + 1
        for child in token.children or []:
            line += child.type in ("softbreak", "hardbreak")
            if child.type in ("link_open", "image"):
                yield line, str(child.attrs.get("href") or child.attrs.get("src"))


def anchors(page: Path) -> set[str]:
    """The anchors GitHub gives the page's headings (a repeated one gets ``-1``, ``-2``...)."""
    seen: dict[str, int] = {}
    found = set()
    parts = tokens(page)
    for heading, inline in itertools.pairwise(parts):
        if heading.type == "heading_open":
            text = "".join(c.content for c in inline.children or [] if c.type in ("text", "code_inline"))
            slug = re.sub(r"[^\w\- ]", "", text.strip().lower()).replace(" ", "-")
            found.add(slug if slug not in seen else f"{slug}-{seen[slug]}")
            seen[slug] = seen.get(slug, 0) + 1
    return found


def local_targets(page: Path) -> Iterator[tuple[int, Path, str]]:
    """(line, file, anchor) of each link to this repository's files."""
    for line, target in links(page):
        parts = urlsplit(target)
        if not parts.scheme:
            yield line, (page.parent / parts.path).resolve() if parts.path else page, parts.fragment


@pytest.mark.parametrize("page", PAGES, ids=page_id)
def test_links_lead_to_files_and_headings(page: Path) -> None:
    problems = []
    for line, path, anchor in local_targets(page):
        if not path.exists():
            problems.append(f"line {line}: no {page_id(path)}")
        elif anchor and (path.suffix != ".md" or anchor not in anchors(path)):
            problems.append(f"line {line}: no heading #{anchor} in {page_id(path)}")
    assert problems == []


@pytest.mark.parametrize("page", PAGES, ids=page_id)
def test_code_blocks_name_a_checked_language(page: Path) -> None:
    assert [(line, info) for line, info, _ in fences(page) if info not in LANGUAGES] == []


def excerpt_lines(text: str) -> list[str]:
    lines = [line.rstrip() for line in textwrap.dedent(text).splitlines()]
    while lines and not lines[-1]:
        lines.pop()
    return lines


def is_excerpt(block: list[str], source: list[str]) -> bool:
    """Whether ``block`` is a run of ``source``'s lines, all indented alike in the source."""
    for start, line in enumerate(source):
        indent = line[: len(line) - len(block[0])]
        if indent.strip() or line[len(indent) :] != block[0]:
            continue
        if source[start : start + len(block)] == [indent + want if want else "" for want in block]:
            return True
    return False


@cache
def source_lines(path: Path) -> list[str]:
    return [line.rstrip() for line in path.read_text(encoding="utf-8").splitlines()]


def quoted_in(block: list[str]) -> list[Path]:
    return [path for path in EXCERPT_SOURCES if is_excerpt(block, source_lines(path))]


@pytest.mark.parametrize("page", PAGES, ids=page_id)
def test_python_blocks_are_excerpts_of_example_dags_or_samples(page: Path) -> None:
    unquoted = [line for line, text in blocks(page, "python") if not quoted_in(excerpt_lines(text))]
    assert unquoted == [], f"{page_id(page)}: the blocks at these lines are in no example DAG or sample"


@pytest.mark.parametrize("sample", SAMPLES, ids=page_id)
def test_every_sample_is_quoted_by_a_page(sample: Path) -> None:
    quoted = {
        path
        for page in PAGES
        for _, text in blocks(page, "python")
        for path in quoted_in(excerpt_lines(text))
    }
    assert sample in quoted


@pytest.mark.parametrize("sample", SAMPLES, ids=page_id)
def test_samples_run_against_the_fake_crm(sample: Path) -> None:
    run = subprocess.run(
        [sys.executable, str(sample)], cwd=REPO_ROOT, capture_output=True, text=True, timeout=SAMPLE_TIMEOUT
    )
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]


def check_json_sample(value: Any, scratch: Path) -> None:
    """Read a sample of one of the provider's formats back with the provider's own code."""
    state = scratch / "sample.sync-state.jsonl"
    if isinstance(value, dict) and value.keys() >= {"status", "try"}:  # a results line
        [position] = value.keys() & {"line", "row", "index"}
        lines = ResultLines(position, value["try"], key_field="key")
        if value[position] is not None:
            list(lines.track([(value[position], {"key": value.get("key")})]))
        outcome: dict[str, Any] = {
            name: value[name] for name in ("wolkvox_id", "error", "msg") if name in value
        }
        outcome.update((name, tuple(value[name])) for name in ("fields", "matches") if name in value)
        if value[position] is None:  # a mirror's delete: no input record's, its key in the result
            result = RecordResult(NOT_IN_INPUT, RecordStatus(value["status"]), key=value["key"], **outcome)
            assert lines.line(result) == value
            return
        result = RecordResult(0, RecordStatus(value["status"]), **outcome)
        assert {**lines.line(result), position: value[position]} == value
    elif isinstance(value, dict) and value.get("format") == STATE_FORMAT:  # a sync state's first line
        state.write_text(json.dumps(value) + "\n", encoding="utf-8")
        expected = StateHeader(value["operation"], value["module"], value["key_field"], value["module_size"])
        assert read_state(StateFile(str(state)), expected)[0] == expected
    elif isinstance(value, dict) and value.keys() >= {"key", "wolkvox_id"}:  # a sync state's key line
        header = StateHeader("demo", "contacts", "Email")
        write_state(StateFile(str(state)), header, [])
        with state.open("a", encoding="utf-8") as handle:
            handle.write(json.dumps(value) + "\n")
        rows = list(read_state(StateFile(str(state)), header)[1])
        assert rows == [(value["key"], value["wolkvox_id"], value.get("fields"))]
    elif isinstance(value, list) and value and "calls_left_to_make" in value[0]:  # the quota_waits XCom
        waits = QuotaWaits(try_number=1)
        waits.add(now(), now(), 0, 0)
        assert [entry.keys() for entry in value] == [waits.waits[0].keys()] * len(value)


@pytest.mark.parametrize("page", PAGES, ids=page_id)
def test_json_blocks_parse_and_samples_of_the_formats_read_back(page: Path, tmp_path: Path) -> None:
    problems = []
    for line, text in blocks(page, "json"):
        try:
            check_json_sample(json.loads(text), tmp_path)
        except (AssertionError, LookupError, TypeError, ValueError) as error:
            problems.append(f"{page_id(page)} line {line}: {type(error).__name__}: {error}")
    assert problems == []


def commands(text: str) -> Iterator[tuple[int, list[str]]]:
    """(line offset, words) of each command of a shell block: continued lines and open quotes joined."""
    pending, start = "", 0
    for offset, line in enumerate(text.splitlines()):
        if not pending and (not line.strip() or line.lstrip().startswith("#")):
            continue
        start = offset if not pending else start
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        pending += line
        try:
            words = shlex.split(pending, comments=True)
        except ValueError:  # a quote opened on this line closes on a later one
            pending += "\n"
            continue
        yield start, words
        pending = ""
    assert not pending, f"unterminated command: {pending!r}"


def check_make(words: list[str], _: pytest.FixtureRequest) -> None:
    [target] = words[1:]
    dry_run = subprocess.run(["make", "-n", "-C", str(REPO_ROOT), target], capture_output=True, text=True)
    assert dry_run.returncode == 0, dry_run.stderr.strip()


def check_fake_command(words: list[str], _: pytest.FixtureRequest) -> None:
    fake_command_parser().parse_args(words[3:])  # argparse exits on what it cannot parse


def check_script(words: list[str], _: pytest.FixtureRequest) -> None:
    assert re.fullmatch(r"benchmarks/\w+\.py", words[1])
    assert (REPO_ROOT / words[1]).is_file()


def check_pytest(words: list[str], request: pytest.FixtureRequest) -> None:
    markers = {line.split(":")[0].strip() for line in request.config.getini("markers")}
    arguments = iter(words[3:])
    for word in arguments:
        if word == "-m":
            assert set(re.findall(r"\w+", next(arguments))) - {"and", "or", "not"} <= markers
        elif word in ("-p", "-k"):
            next(arguments)
        elif not word.startswith("-"):
            assert (REPO_ROOT / word.split("::")[0]).exists(), word


def check_pip_install(words: list[str], _: pytest.FixtureRequest) -> None:
    assert words == ["pip", "install", PACKAGE_NAME]


def check_export(words: list[str], request: pytest.FixtureRequest) -> None:
    [name, value] = words[1].split("=", 1)
    assert name.startswith("AIRFLOW_CONN_")
    assert json.loads(value)["conn_type"] == "wolkvox"
    request.getfixturevalue("monkeypatch").setenv(name, value)
    hook = WolkvoxHook(name.removeprefix("AIRFLOW_CONN_").lower())
    with hook.client:  # the hook builds its client from it
        assert hook.client.base_url.startswith("https://")
        assert hook.operation_for()


def check_pools_set(words: list[str], _: pytest.FixtureRequest) -> None:
    from airflow.cli.cli_parser import get_parser

    get_parser().parse_args(words[1:])


def check_clear_state(words: list[str], _: pytest.FixtureRequest) -> None:
    [method, url, header] = [words[2], words[3], words[4:]]
    path = url.removeprefix("$AIRFLOW_URL").split("?")[0]
    documented, route = path.split("/"), STATE_STORE_ROUTE.split("/")
    assert method == "DELETE"
    assert url.startswith("$AIRFLOW_URL/")
    assert len(documented) == len(route)
    for mine, airflows in zip(documented, route, strict=True):
        assert mine == airflows or (mine.startswith("<") and airflows.startswith("{")), mine
    assert header == ["-H", "Authorization: Bearer $TOKEN"]


def check_ci(words: list[str], _: pytest.FixtureRequest) -> None:
    assert words == [".ci/run"]
    assert (REPO_ROOT / ".ci" / "run").stat().st_mode & 0o111


#: The forms of shell lines the docs use, by their first words, and what checks each.
SHELL_FORMS: dict[tuple[str, ...], Callable[[list[str], pytest.FixtureRequest], None]] = {
    ("make",): check_make,
    ("python", "-m", "airflow_provider_wolkvox.testing"): check_fake_command,
    (".venv/bin/python", "-m", "pytest"): check_pytest,
    (".venv/bin/python",): check_script,
    ("pip", "install"): check_pip_install,
    ("export",): check_export,
    ("airflow", "pools", "set"): check_pools_set,
    ("curl", "-X"): check_clear_state,
    (".ci/run",): check_ci,
}


@pytest.mark.parametrize("page", PAGES, ids=page_id)
def test_bash_lines_are_the_documented_forms(page: Path, request: pytest.FixtureRequest) -> None:
    problems = []
    for first_line, text in blocks(page, "bash"):
        for offset, words in commands(text):
            form = max((f for f in SHELL_FORMS if tuple(words[: len(f)]) == f), key=len, default=None)
            try:
                assert form is not None, "not one of the documented forms"
                SHELL_FORMS[form](words, request)
            except SystemExit:  # argparse said why on stderr
                problems.append(f"{page_id(page)} line {first_line + offset}: {shlex.join(words)} (refused)")
            except (AssertionError, ValueError) as error:
                problems.append(f"{page_id(page)} line {first_line + offset}: {shlex.join(words)} ({error})")
    assert problems == []


def test_the_readme_is_short_and_links_every_page() -> None:
    assert len(README.read_text(encoding="utf-8")) < README_LIMIT
    required = {*DOCS.glob("*.md"), REPO_ROOT / "benchmarks" / "README.md", REPO_ROOT / "CONTRIBUTING.md"}
    assert required - {path for _, path, _ in local_targets(README)} == set()


def test_the_docs_index_links_every_page() -> None:
    index = DOCS / "README.md"
    assert set(DOCS.glob("*.md")) - {index} - {path for _, path, _ in local_targets(index)} == set()


def contributing_layout() -> str:
    """CONTRIBUTING's Layout section: its paragraphs and its picture of the package."""
    text = (REPO_ROOT / "CONTRIBUTING.md").read_text(encoding="utf-8")
    section = re.search(r"^## Layout\n(.*?)(?=^## )", text, flags=re.MULTILINE | re.DOTALL)
    assert section is not None, "CONTRIBUTING.md has no Layout section"
    return section.group(1)


def layout_names(text: str) -> list[str]:
    """The folders (``loads/sync/``) and modules (``api.py``) a text names, relative to the package."""
    return re.findall(r"(?<![\w/.])((?:\w+/)*\w+\.py|(?:\w+/)+)(?![\w/])", text)


def test_the_contributing_layout_names_every_folder_and_top_level_module() -> None:
    """Every package folder and every module at the package's top: the map cannot drift from the tree."""
    package = REPO_ROOT / "airflow_provider_wolkvox"
    folders = {
        f"{path.parent.relative_to(package).as_posix()}/"
        for path in package.rglob("__init__.py")
        if path.parent != package
    }
    top_level = {path.name for path in package.glob("*.py")}
    assert folders >= {"client/", "loads/", "loads/sync/", "hooks/", "operators/", "testing/"}
    assert sorted((folders | top_level) - set(layout_names(contributing_layout()))) == []


def test_the_contributing_layout_names_only_what_exists() -> None:
    package = REPO_ROOT / "airflow_provider_wolkvox"
    [picture] = [
        token.content
        for token in _MARKDOWN.parse(contributing_layout())
        if token.type == "fence" and token.info.strip() == "text"
    ]
    named = [name for name in layout_names(picture) if name != "airflow_provider_wolkvox/"]
    assert [name for name in named if not (package / name).exists()] == []


def test_the_documented_state_store_route_is_airflows() -> None:
    import yaml  # an Airflow dependency

    try:
        spec = files("airflow.api_fastapi.core_api.openapi").joinpath("v2-rest-api-generated.yaml")
        text = spec.read_text(encoding="utf-8")
    except (ModuleNotFoundError, FileNotFoundError):
        pytest.skip("Airflow's REST API v2 and its task state store arrived in Airflow 3")
    paths = yaml.load(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))["paths"]
    assert "delete" in paths[STATE_STORE_ROUTE]
