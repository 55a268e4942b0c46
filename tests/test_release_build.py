"""The Python release: `python -m build` makes an sdist and a wheel, `twine check` passes both, the
wheel holds the data files the code reads at run time, and the wheel installed into a fresh venv (outside this
checkout) runs `dlverify --version` and `dlverify spec lint` on the repo's hwspec.yaml.

Marked `release`: it builds in an isolated environment (setuptools from the package index) and installs the
wheel's dependencies into a fresh venv, ~30-60 s. `pytest -m "not release"` leaves it out.
"""

from __future__ import annotations

import importlib.metadata
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
VERSION = importlib.metadata.version("dlverify")

pytestmark = [pytest.mark.release, pytest.mark.slow]


def _run(*cmd: str | Path, cwd: Path = REPO, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    r = subprocess.run([str(c) for c in cmd], cwd=cwd, capture_output=True, text=True, timeout=timeout)
    shown = " ".join(str(c) for c in cmd)
    assert r.returncode == 0, f"{shown}: exit {r.returncode}\n{r.stdout[-2000:]}\n{r.stderr[-2000:]}"
    return r


@pytest.fixture(scope="module")
def dist(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("dist")
    _run(sys.executable, "-m", "build", "--sdist", "--wheel", "--outdir", out, REPO)
    return out


def _one(dist: Path, pattern: str) -> Path:
    found = sorted(dist.glob(pattern))
    assert len(found) == 1, (pattern, found)
    return found[0]


def test_build_makes_an_sdist_and_a_wheel_of_this_version_that_twine_accepts(dist: Path) -> None:
    wheel = _one(dist, f"dlverify-{VERSION}-py3-none-any.whl")
    sdist = _one(dist, f"dlverify-{VERSION}.tar.gz")
    r = _run(sys.executable, "-m", "twine", "check", "--strict", wheel, sdist)
    assert r.stdout.count("PASSED") == 2, r.stdout


def test_the_wheel_holds_the_data_files_the_license_and_no_tests(dist: Path) -> None:
    names = set(zipfile.ZipFile(_one(dist, "*.whl")).namelist())
    for folder, suffix in (("hwspec/data", ".yaml"), ("benchmarks/references", ".json")):
        expected = {f"dlverify/{folder}/{p.name}" for p in (REPO / folder).glob(f"*{suffix}")}
        assert expected and expected <= names, sorted(expected - names)
    assert "dlverify/hwspec/hwspec.schema.json" in names
    assert {f"dlverify/hwspec/examples/{p.name}" for p in (REPO / "hwspec/examples").glob("*.yaml")} <= names
    assert f"dlverify-{VERSION}.dist-info/licenses/LICENSE" in names
    assert not any(n.startswith(("tests/", "roles/", "dlverify/benchmarks/device/")) for n in names)
    metadata = zipfile.ZipFile(_one(dist, "*.whl")).read(f"dlverify-{VERSION}.dist-info/METADATA").decode()
    assert f"Version: {VERSION}\n" in metadata and "License-Expression: Apache-2.0" in metadata


def test_the_sdist_holds_the_license_and_the_changelog_is_in_the_repo(dist: Path) -> None:
    with tarfile.open(_one(dist, "*.tar.gz")) as t:
        names = set(t.getnames())
    assert f"dlverify-{VERSION}/LICENSE" in names and f"dlverify-{VERSION}/pyproject.toml" in names


def test_the_wheel_installed_in_a_fresh_venv_works_outside_the_checkout(dist: Path, tmp_path: Path) -> None:
    venv = tmp_path / "venv"
    _run(sys.executable, "-m", "venv", venv, cwd=tmp_path)
    _run(venv / "bin/python", "-m", "pip", "install", "-q", _one(dist, "*.whl"), cwd=tmp_path)
    r = _run(venv / "bin/dlverify", "--version", cwd=tmp_path)
    assert r.stdout.strip() == f"dlverify {VERSION}"
    r = _run(venv / "bin/dlverify", "spec", "lint", REPO / "hwspec.yaml", cwd=tmp_path)
    assert "0 failed" in r.stdout
    # the installed code, not this checkout's, answered
    r = _run(venv / "bin/python", "-c", "import dlverify; print(dlverify.__file__)", cwd=tmp_path)
    assert r.stdout.strip().startswith(str(venv)), r.stdout
