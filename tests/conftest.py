"""What the test files share: the checkout's root, the recordings folder, and ways to pick results.

Tests import these names (``from conftest import ROOT, by_id``) as they import ``nvml_replay``: the
tests folder is on ``sys.path`` under pytest's default (prepend) import mode.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

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
