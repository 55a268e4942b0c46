"""What the test files share: the checkout's root, the recordings folder, and ways to pick results.

Tests import these names (``from conftest import ROOT, by_id``) as they import ``nvml_replay``: the
tests folder is on ``sys.path`` under pytest's default (prepend) import mode.
"""

from __future__ import annotations

import importlib.util
import os
import socket
import sys
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if sys.version_info >= (3, 11):
    import tomllib
else:  # Python 3.10 (Ubuntu 22.04): mypy depends on tomli there
    import tomli as tomllib

if TYPE_CHECKING:  # imported here only for the hints: the install guard below must run before any import
    from dlverify.results import CheckResult

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = ROOT / "tests" / "fixtures"


def by_id(results: Iterable[CheckResult], group: str | None = None) -> dict[str, CheckResult]:
    """Results keyed by id (of one group, when given); a later result of the same id wins."""
    return {r.id: r for r in results if group is None or r.group == group}


def one(results: Iterable[CheckResult], rid: str, group: str) -> CheckResult:
    """The one result with this id in this group (fails the test if there are none or several)."""
    hits = [r for r in results if r.id == rid and r.group == group]
    assert len(hits) == 1, (rid, group, hits)
    return hits[0]


def install_problems(root: Path = ROOT) -> list[str]:
    """What of the checkout at `root` the installed dlverify does not reach: each listed package (pyproject's
    ``packages``, mapped by ``package-dir``) must be importable from there, and each of its modules and data
    files must be a file of that package as installed. A strict editable install (``make test-venv``) links
    every file once, when it installs: a file added since is not there until it is installed again; an
    install from another clone reaches that clone's files, not these."""
    setup = tomllib.loads((root / "pyproject.toml").read_text())["tool"]["setuptools"]
    dirs: dict[str, str] = setup["package-dir"]
    problems = []
    for package in setup["packages"]:
        top = max((name for name in dirs if package == name or package.startswith(name + ".")), key=len)
        folder = root / dirs[top] / package[len(top) :].lstrip(".").replace(".", "/")
        try:
            spec = importlib.util.find_spec(package)
        except ImportError as exc:
            problems.append(f"{package} ({folder.relative_to(root)}/) cannot be imported: {exc}")
            continue
        if spec is None or not spec.submodule_search_locations:
            problems.append(f"{package} ({folder.relative_to(root)}/) is not installed")
            continue
        installed = [Path(location) for location in spec.submodule_search_locations]
        globs = ["*.py", *setup.get("package-data", {}).get(package, [])]
        for path in sorted({p for pattern in globs for p in folder.glob(pattern) if p.is_file()}):
            if not any((where / path.name).resolve() == path.resolve() for where in installed):
                problems.append(
                    f"{path.relative_to(root)} is not in the installed {package} ({installed[0]})"
                )
    return problems


def pytest_sessionstart(session: pytest.Session) -> None:
    """The code under test is this checkout's, all of it: an install from another clone would test someone
    else's code, and a file added since the (strict editable) install would be missing from the package.
    Checked once, by the controller (pytest-xdist's workers start after it)."""
    if os.environ.get("PYTEST_XDIST_WORKER"):
        return
    problems = install_problems()
    if problems:
        shown = "\n  ".join(problems[:12]) + (
            f"\n  ... and {len(problems) - 12} more" if len(problems) > 12 else ""
        )
        pytest.exit(
            f"the installed dlverify does not match this checkout ({ROOT}):\n  {shown}\n"
            "run `make test-venv` again (a strict editable install links each file when it installs)",
            returncode=pytest.ExitCode.USAGE_ERROR,
        )


# Whole files whose tests start real processes: torch workers on the CPU, ansible-playbook, dpkg/gpg, pip and
# builds, hostile inputs each in a subprocess under a time limit. `pytest -m "not slow"` leaves them out (the
# fast set, for the edit-test loop); `make test` and CI run everything.
SLOW_FILES = {
    "test_bench_cli.py",
    "test_bench_recipe.py",
    "test_bench_runner.py",
    "test_bench_signals.py",
    "test_bench_soak.py",
    "test_bench_suites.py",
    "test_bench_watchdog.py",
    "test_device_scripts.py",
    "test_fleet_playbook.py",
    "test_fleet_scenario.py",
    "test_harness_jammy.py",
    "test_harness_mirror_build.py",
    "test_harness_standins.py",
    "test_hostile_inputs.py",
    "test_monitoring_rules.py",
    "test_quickstart.py",
    "test_release_build.py",
    "test_release_collection.py",
    "test_site_gate.py",
    "test_spec_mapping_services.py",
}


@pytest.fixture
def fake_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A harness cache (DLV_HARNESS_CACHE, and a free DLV_MIRROR_PORT) whose wheel dir already holds
    look-alikes of NVIDIA's three wheels (tests/harness_mirror.py), so a mirror build needs no download; the
    gpg-agents of the GnuPG homes made under it are stopped after the test."""
    from harness_mirror import kill_gpg_agents, write_fake_wheels

    cache = tmp_path / "cache"
    write_fake_wheels(cache / "wheels")
    monkeypatch.setenv("DLV_HARNESS_CACHE", str(cache))
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        monkeypatch.setenv("DLV_MIRROR_PORT", str(sock.getsockname()[1]))
    yield cache
    kill_gpg_agents(tmp_path)


def pytest_collection_modifyitems(config: object, items: list) -> None:
    for item in items:
        if item.path.name in SLOW_FILES:
            item.add_marker(pytest.mark.slow)
