"""The version is written once (verify/__init__.py `__version__`, read by setuptools' dynamic version) and
every place that shows it agrees with the installed package's metadata: `dlverify --version` and the `tool`
field of every JSON document a command writes (check, bench, spec lint, spec errors, snapshot,
fleet report)."""

from __future__ import annotations

import importlib.metadata
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

import dlverify

REPO = Path(__file__).resolve().parent.parent
BENCH_RUN = REPO / "benchmarks/results/2026-11-28-h200-run1/bench_warm.json"


def _dlverify(*args: str, cwd: Path = REPO) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "dlverify.cli", *args], cwd=cwd, capture_output=True, text=True, timeout=60
    )


def test_the_version_is_written_in_one_place() -> None:
    tomllib = pytest.importorskip("tomllib")  # Python 3.11+
    project = tomllib.loads((REPO / "pyproject.toml").read_text())
    assert "version" not in project["project"], "pyproject must not repeat the version"
    assert "version" in project["project"]["dynamic"]
    assert project["tool"]["setuptools"]["dynamic"]["version"] == {"attr": "dlverify.__version__"}
    assert re.fullmatch(r"\d+\.\d+\.\d+(?:[ab]\d+|rc\d+)?", dlverify.__version__)
    assert importlib.metadata.version("dlverify") == dlverify.__version__


def test_dlverify_version_prints_the_package_version() -> None:
    r = _dlverify("--version")
    assert r.returncode == 0
    assert r.stdout.strip() == f"dlverify {importlib.metadata.version('dlverify')}"


@pytest.fixture(scope="module")
def json_reports(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict]:
    tmp = tmp_path_factory.mktemp("reports")
    snap = tmp / "snap.json"
    assert _dlverify("snapshot", "-o", str(snap)).returncode == 0
    bad_spec = tmp / "bad.yaml"
    bad_spec.write_text("hardware: [\n")
    fleet = tmp / "fleet"
    (fleet / "gpu01").mkdir(parents=True)
    (fleet / "gpu01/unreachable").write_text("ssh: connect to host gpu01 port 22: timed out\n")
    runs = {
        "check": ("check", "hwspec.yaml", "--snapshot", str(snap), "--format", "json"),
        "bench": ("bench", "--replay", str(BENCH_RUN), "--format", "json", "-q"),
        "spec lint": ("spec", "lint", "hwspec.yaml", "--format", "json"),
        "spec lint (invalid spec)": ("spec", "lint", str(bad_spec), "--format", "json"),
        "fleet report": ("fleet", "report", str(fleet), "--format", "json"),
    }
    docs = {"snapshot": json.loads(snap.read_text())}
    for name, args in runs.items():
        r = _dlverify(*args)
        assert r.stdout.lstrip().startswith("{"), f"{name}: exit {r.returncode}: {r.stderr[-500:]}"
        docs[name] = json.loads(r.stdout)
    return docs


@pytest.mark.parametrize(
    "name", ["check", "bench", "spec lint", "spec lint (invalid spec)", "fleet report", "snapshot"]
)
def test_every_json_report_names_the_tool_and_its_version(json_reports: dict[str, dict], name: str) -> None:
    doc = json_reports[name]
    assert doc["tool"] == f"dlverify {importlib.metadata.version('dlverify')}"
    assert "schema" in doc  # the existing fields stay as they were


def test_the_changelog_and_license_ship_with_the_repo() -> None:
    license_text = (REPO / "LICENSE").read_text()
    assert "Apache License" in license_text and "Version 2.0, January 2004" in license_text
    assert "END OF TERMS AND CONDITIONS" in license_text
    changelog = (REPO / "CHANGELOG.md").read_text()
    assert "## [Unreleased]" in changelog and "keepachangelog.com" in changelog
