"""The layers hold in the code: each knows only the ones below, and the package has no import cycle.

Every module of the package is parsed with ``ast``; nothing of it is imported or run. Every import
counts: at module level, under ``if TYPE_CHECKING:`` and inside functions alike.

- ``client/`` (the HTTP client) imports nothing of the engines, the hook, the operators, the
  record sources or the state file;
- ``loads/`` (the engines) imports none of the hook, the operators, the sources, the state file,
  nor Airflow (its errors come through ``airflow_provider_wolkvox.exceptions``), and does no file
  I/O of its own: its storage is passed in;
- ``operators/`` imports the engines through their public API, ``airflow_provider_wolkvox.loads``,
  never one of its modules;
- no cycle in the package's own imports; no module over ``MAX_LINES`` lines.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import pytest

from tests.conftest import REPO_ROOT

PACKAGE = "airflow_provider_wolkvox"
PACKAGE_DIR = REPO_ROOT / PACKAGE
MAX_LINES = 400
#: Calls that read or write files: the engines get their storage passed in instead.
FILE_IO_CALLS = frozenset({"open", "os.replace", "ObjectStoragePath"})


@dataclass(frozen=True)
class Import:
    """One imported module, as named in the source (``from a import b`` may name module ``a.b``)."""

    module: str
    line: int


def module_name(path: Path) -> str:
    parts = list(path.relative_to(REPO_ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


@cache
def modules() -> dict[str, Path]:
    """Every module of the package by its dotted name."""
    return {module_name(path): path for path in sorted(PACKAGE_DIR.rglob("*.py"))}


@cache
def tree(name: str) -> ast.Module:
    path = modules()[name]
    return ast.parse(path.read_text(encoding="utf-8"), filename=str(path))


def _absolute(name: str, node: ast.ImportFrom) -> str:
    """The module a ``from ... import`` names, relative imports resolved against module ``name``."""
    if not node.level:
        return node.module or ""
    is_package = modules()[name].name == "__init__.py"
    base = name.split(".")
    base = base if is_package else base[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join([*base, node.module] if node.module else base)


def imports(name: str) -> list[Import]:
    """Every module ``name`` imports, wherever the import statement stands."""
    found: list[Import] = []
    for node in ast.walk(tree(name)):
        if isinstance(node, ast.Import):
            found.extend(Import(alias.name, node.lineno) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            source = _absolute(name, node)
            for alias in node.names:
                submodule = f"{source}.{alias.name}"
                # ``from package import module`` imports the module; ``from module import name`` the module.
                found.append(Import(submodule if submodule in modules() else source, node.lineno))
    return found


def internal_imports(name: str) -> set[str]:
    """The package's own modules ``name`` imports."""
    return {found.module for found in imports(name) if found.module in modules() and found.module != name}


def layer(name: str, folder: str) -> bool:
    """Whether module ``name`` is ``folder`` (``"client"``, ``"loads"``, ...) or inside it."""
    prefix = f"{PACKAGE}.{folder}"
    return name == prefix or name.startswith(f"{prefix}.")


def in_layer(folder: str) -> list[str]:
    return [name for name in modules() if layer(name, folder)]


def violations(folder: str, forbidden: tuple[str, ...]) -> list[str]:
    """``module:line imports target`` for each import from ``folder`` of a module under ``forbidden``."""
    return [
        f"{name}:{found.line} imports {found.module}"
        for name in in_layer(folder)
        for found in imports(name)
        if any(found.module == f"{PACKAGE}.{other}" or layer(found.module, other) for other in forbidden)
    ]


def call_name(node: ast.Call) -> str:
    """``open``, ``os.replace``, ``ObjectStoragePath``...: the called name as written."""
    parts: list[str] = []
    target = node.func
    while isinstance(target, ast.Attribute):
        parts.append(target.attr)
        target = target.value
    if isinstance(target, ast.Name):
        parts.append(target.id)
    return ".".join(reversed(parts))


def calls(name: str) -> Iterator[tuple[int, str]]:
    for node in ast.walk(tree(name)):
        if isinstance(node, ast.Call):
            yield node.lineno, call_name(node)


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle of ``graph`` as its modules in import order (the first repeated at the end), or None."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for target in sorted(graph.get(node, ())):
            if state.get(target) == 1:
                return [*path[path.index(target) :], target]
            if target not in state and (cycle := visit(target)) is not None:
                return cycle
        path.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (cycle := visit(node)) is not None:
            return cycle
    return None


def test_the_package_and_its_layers_are_found() -> None:
    for folder in ("client", "loads", "loads.sync", "hooks", "operators", "testing"):
        assert f"{PACKAGE}.{folder}" in modules(), folder
    assert f"{PACKAGE}.loads.bulk" in internal_imports(f"{PACKAGE}.loads")


def airflow_imports(folder: str) -> list[str]:
    """``module:line imports target`` for each import of Airflow itself from ``folder``."""
    return [
        f"{name}:{found.line} imports {found.module}"
        for name in in_layer(folder)
        for found in imports(name)
        if found.module == "airflow" or found.module.startswith("airflow.")
    ]


def test_the_client_imports_no_layer_above_it() -> None:
    forbidden = ("loads", "hooks", "operators", "sources", "state_file")
    assert violations("client", forbidden) == []
    assert airflow_imports("client") == [], "the client reaches Airflow only through exceptions.py"


def test_the_engines_import_neither_the_layers_above_nor_airflow() -> None:
    assert violations("loads", ("hooks", "operators", "sources", "state_file")) == []
    assert airflow_imports("loads") == [], "the engines reach Airflow only through exceptions.py"


def test_the_engines_do_no_file_io() -> None:
    found = [
        f"{name}:{line} calls {called}"
        for name in in_layer("loads")
        for line, called in calls(name)
        if called in FILE_IO_CALLS or called.endswith(".ObjectStoragePath")
    ]
    assert found == [], "storage is passed into the engines (a journal store, a StateStorage)"


def test_the_operators_use_only_the_engines_public_api() -> None:
    public = f"{PACKAGE}.loads"
    assert [
        f"{name}:{found.line} imports {found.module}"
        for name in in_layer("operators")
        for found in imports(name)
        if layer(found.module, "loads") and found.module != public
    ] == []


def test_the_package_has_no_import_cycle() -> None:
    graph = {name: internal_imports(name) for name in modules()}
    cycle = find_cycle(graph)
    assert cycle is None, "import cycle: " + " → ".join(cycle or [])


@pytest.mark.parametrize(
    ("graph", "expected"),
    [
        ({"a": {"b"}, "b": {"c"}, "c": set()}, None),
        ({"a": {"b"}, "b": {"a"}}, ["a", "b", "a"]),
        ({"a": {"b"}, "b": {"c"}, "c": {"b"}}, ["b", "c", "b"]),
        ({"a": {"a"}}, ["a", "a"]),
    ],
)
def test_find_cycle_names_the_cycles_modules(graph: dict[str, set[str]], expected: list[str] | None) -> None:
    assert find_cycle(graph) == expected


def test_relative_imports_resolve_against_the_importing_module() -> None:
    source = ast.parse("from . import api\nfrom .client import client\nfrom ..loads import BulkLoad\n")
    nodes = [node for node in source.body if isinstance(node, ast.ImportFrom)]
    name = f"{PACKAGE}.client.retry"
    assert [_absolute(name, node) for node in nodes] == [
        f"{PACKAGE}.client",
        f"{PACKAGE}.client.client",
        f"{PACKAGE}.loads",
    ]


def test_no_module_is_over_the_line_limit() -> None:
    long = {
        name: count
        for name, path in modules().items()
        if (count := len(path.read_text(encoding="utf-8").splitlines())) > MAX_LINES
    }
    assert long == {}
