"""The result type every judge produces (checks, lint, bench) and the report consumes.

Kept at the bottom of the import graph: it knows nothing about GPUs, specs or probes.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable
from dataclasses import asdict, dataclass


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


def summarize(results: Iterable[CheckResult]) -> dict[str, int]:
    counts = {s.value: 0 for s in Status}
    for r in results:
        counts[r.status.value] += 1
    return counts


def exit_code(results: Iterable[CheckResult]) -> int:
    return EXIT_FAIL if any(r.status is Status.FAIL for r in results) else EXIT_OK
