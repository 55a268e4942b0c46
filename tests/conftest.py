"""What the test files share: the checkout's root, the recordings folder, and ways to pick results.

Tests import these names (``from conftest import ROOT, by_id``) as they import ``nvml_replay``: the
tests folder is on ``sys.path`` under pytest's default (prepend) import mode.
"""

from __future__ import annotations

import socket
from collections.abc import Iterable, Iterator
from pathlib import Path

import pytest

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


def pytest_sessionstart(session: object) -> None:
    """The code under test is this checkout's: an editable install from another clone (the package-dir
    remap resolves `dlverify` to whichever checkout installed it last) would test someone else's code."""
    import dlverify

    where = Path(dlverify.__file__).resolve()
    if not where.is_relative_to(ROOT):
        raise RuntimeError(
            f"dlverify is imported from {where}, not from this checkout ({ROOT}): "
            f"reinstall it here with `{ROOT}/.venv/bin/pip install -e .` (or `make test-venv`)"
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
