"""The result type every judge produces (checks, lint, bench) and the report consumes.

Kept at the bottom of the import graph: it knows nothing about GPUs, specs or probes.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from typing import Any


class Status(str, enum.Enum):
    PASS = "pass"
    WARN = "warn"
    FAIL = "fail"
    SKIP = "skip"


# Exit codes shared by every command (documented in the README).
EXIT_OK = 0  # no failed check (warnings and skips allowed)
EXIT_FAIL = 1  # at least one check failed / the spec is incompatible
EXIT_USAGE = 2  # bad spec, unreadable input, bad usage, nothing to run on


@dataclass(frozen=True)
class CheckResult:
    """One judged fact.

    id: stable machine key, e.g. ``gpu.ecc.volatile_uncorrected`` (scripts key on it; never reword it).
    group: where it belongs in the report: ``host``, ``gpu0``..``gpuN``, ``software``, ``spec``, ``bench``.
    name: short human label.
    observed / expected: what the machine showed and what the spec asked, as display strings.
    detail: the reason; required for every status other than pass (a skip always says why).
    """

    id: str
    group: str
    name: str
    status: Status
    observed: str | None = None
    expected: str | None = None
    detail: str = ""

    def __post_init__(self) -> None:
        if self.status is not Status.PASS and not self.detail:
            raise ValueError(f"{self.id}: a {self.status.value} result needs a detail saying why")

    def to_dict(self) -> dict[str, str | None]:
        d = asdict(self)
        d["status"] = self.status.value
        return d


def _text(value: Any) -> str | None:
    return None if value is None else str(value)


@dataclass(frozen=True)
class Check:
    """One check about to be judged: ``rec.check(id, name).fail(observed, expected, why)``.

    Each verdict builds the :class:`CheckResult`, appends it to the recorder and returns it. ``where``
    (lint: ``key at file:line``) is appended to the reason, or is the reason when there is none.
    """

    rec: Recorder
    id: str
    name: str
    where: str = ""

    def status(
        self, status: Status, observed: Any = None, expected: Any = None, why: str = ""
    ) -> CheckResult:
        if self.where:
            why = f"{why} ({self.where})" if why else self.where
        r = CheckResult(self.id, self.rec.group, self.name, status, _text(observed), _text(expected), why)
        self.rec.results.append(r)
        return r

    def ok(self, observed: Any = None, expected: Any = None, why: str = "") -> CheckResult:
        return self.status(Status.PASS, observed, expected, why)

    def warn(self, observed: Any, expected: Any, why: str) -> CheckResult:
        return self.status(Status.WARN, observed, expected, why)

    def fail(self, observed: Any, expected: Any, why: str) -> CheckResult:
        return self.status(Status.FAIL, observed, expected, why)

    def skip(self, why: str, observed: Any = None, expected: Any = None) -> CheckResult:
        return self.status(Status.SKIP, observed, expected, why)

    def policy(self, level: str, observed: Any, expected: Any, why: str) -> CheckResult:
        """A failed condition under a spec policy level: ``fail`` / ``warn`` / ``ignore`` (a skip)."""
        if level == "ignore":
            return self.skip(f"ignored by the spec's checks policy ({why})", observed, expected)
        return self.status(Status.WARN if level == "warn" else Status.FAIL, observed, expected, why)


@dataclass
class Recorder:
    """Collects the results of one report group; recorders made by :meth:`for_group` share one list."""

    group: str
    results: list[CheckResult] = field(default_factory=list)

    def check(self, cid: str, name: str, where: str = "") -> Check:
        return Check(self, cid, name, where)

    def for_group(self, group: str) -> Recorder:
        """A recorder for another group that appends to the same list (keeps report order)."""
        return Recorder(group, self.results)


def summarize(results: Iterable[CheckResult]) -> dict[str, int]:
    counts = {s.value: 0 for s in Status}
    for r in results:
        counts[r.status.value] += 1
    return counts


def exit_code(results: Iterable[CheckResult]) -> int:
    return EXIT_FAIL if any(r.status is Status.FAIL for r in results) else EXIT_OK
