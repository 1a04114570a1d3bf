"""The release artefacts: ``python -m build`` makes an sdist and a wheel that PyPI would accept and
that Airflow discovers once installed."""

from __future__ import annotations

import os
import subprocess
import sys
import tarfile
import zipfile
from email.parser import HeaderParser
from pathlib import Path

import pytest

import airflow_provider_wolkvox
from tests.conftest import REPO_ROOT

pytestmark = pytest.mark.packaging

BUILD_TIMEOUT = 300
PACKAGE = "airflow_provider_wolkvox"
DIST_INFO = f"{PACKAGE}-{airflow_provider_wolkvox.__version__}.dist-info"


@pytest.fixture(scope="module")
def dist(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The sdist and wheel, built as a release would be: in an isolated build environment."""
    out = tmp_path_factory.mktemp("dist")
    result = subprocess.run(
        [sys.executable, "-m", "build", "--outdir", str(out), str(REPO_ROOT)],
        capture_output=True,
        text=True,
        timeout=BUILD_TIMEOUT,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return out


@pytest.fixture(scope="module")
def wheel(dist: Path) -> Path:
    [path] = dist.glob("*.whl")
    return path


def test_build_makes_one_sdist_and_one_wheel(dist: Path) -> None:
    version = airflow_provider_wolkvox.__version__
    assert sorted(path.name for path in dist.iterdir()) == [
        f"{PACKAGE}-{version}-py3-none-any.whl",
        f"{PACKAGE}-{version}.tar.gz",
    ]


def test_twine_check_passes(dist: Path) -> None:
    # --strict turns warnings (e.g. a missing long description) into failures, as PyPI's page needs.
    result = subprocess.run(
        [sys.executable, "-m", "twine", "check", "--strict", *map(str, sorted(dist.iterdir()))],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "NO_COLOR": "1"},
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.count("PASSED") == 2


def test_wheel_ships_the_package_typed_with_its_testing_tools(wheel: Path) -> None:
    names = set(zipfile.ZipFile(wheel).namelist())
    assert f"{PACKAGE}/py.typed" in names
    assert f"{PACKAGE}/hooks/wolkvox.py" in names
    assert f"{PACKAGE}/operators/insert.py" in names
    # The fake server ships for users' own DAG tests.
    assert f"{PACKAGE}/testing/server.py" in names
    assert not {name for name in names if name.startswith(("tests/", "example_dags/", "benchmarks/"))}


def test_wheel_metadata_declares_the_airflow_provider(wheel: Path) -> None:
    with zipfile.ZipFile(wheel) as archive:
        entry_points = archive.read(f"{DIST_INFO}/entry_points.txt").decode()
        metadata = HeaderParser().parsestr(archive.read(f"{DIST_INFO}/METADATA").decode())
    assert "[apache_airflow_provider]" in entry_points
    assert f"provider_info = {PACKAGE}:get_provider_info" in entry_points
    assert "Framework :: Apache Airflow :: Provider" in metadata.get_all("Classifier", [])
    assert "Typing :: Typed" in metadata.get_all("Classifier", [])
    assert metadata["Requires-Python"] == ">=3.10"


def test_installed_wheel_exposes_the_provider_info(wheel: Path, tmp_path: Path) -> None:
    """Airflow finds providers by entry point: check it resolves from the wheel alone.

    The wheel goes into an empty folder, and a Python without site-packages (``-S``) imports from
    there only, so the editable install of this checkout cannot answer instead.
    """
    target = tmp_path / "site"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--quiet",
            "--no-deps",
            "--no-index",
            "--target",
            str(target),
            str(wheel),
        ],
        check=True,
        capture_output=True,
        timeout=120,
    )
    probe = (
        "import sys; sys.path.insert(0, sys.argv[1]); from importlib.metadata import entry_points; "
        "[entry] = entry_points(group='apache_airflow_provider'); "
        "info = entry.load()(); print(info['package-name'], info['connection-types'][0]['connection-type'], "
        "entry.load().__module__, __import__(entry.module).__file__)"
    )
    result = subprocess.run(
        [sys.executable, "-S", "-c", probe, str(target)],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    name, conn_type, module, module_file = result.stdout.split()
    assert (name, conn_type, module) == ("airflow-provider-wolkvox", "wolkvox", PACKAGE)
    assert Path(module_file).is_relative_to(target)


def test_sdist_carries_the_sources_and_build_config(dist: Path) -> None:
    [sdist] = dist.glob("*.tar.gz")
    root = f"{PACKAGE}-{airflow_provider_wolkvox.__version__}"
    with tarfile.open(sdist) as archive:
        names = set(archive.getnames())
    assert {f"{root}/pyproject.toml", f"{root}/PKG-INFO", f"{root}/{PACKAGE}/py.typed"} <= names
    assert f"{root}/{PACKAGE}/testing/server.py" in names
