"""Small helpers shared by the judges: reading snapshot values, versions, building results."""

from __future__ import annotations

from typing import Any

from dlverify.hwspec.compat import vkey
from dlverify.results import CheckResult, Status


def missing(value: Any) -> str | None:
    """Why a snapshot value is missing (``{"unavailable": why}``, or absent), else None."""
    if value is None:
        return "not recorded in the snapshot"
    if isinstance(value, dict) and set(value) == {"unavailable"}:
        return str(value["unavailable"])
    return None


def get(d: Any, *path: str | int) -> Any:
    """Walk dicts/lists; a missing or unavailable step yields that step (or None), never an exception."""
    cur = d
    for key in path:
        if missing(cur) is not None and cur is not None:
            return cur
        try:
            cur = cur[key]  # type: ignore[index]
        except (KeyError, IndexError, TypeError):
            return None
    return cur


def version_matches(want: str, have: Any) -> bool:
    """The components the spec gives must equal the observed ones: "535" matches "535.54.03"."""
    w, h = vkey(want), vkey(str(have))
    return bool(w) and h[: len(w)] == w


class Judge:
    """Collects results for one group with short constructors."""

    def __init__(self, group: str) -> None:
        self.group = group
        self.results: list[CheckResult] = []

    def add(
        self,
        cid: str,
        name: str,
        status: Status,
        observed: Any = None,
        expected: Any = None,
        detail: str = "",
    ) -> None:
        self.results.append(
            CheckResult(
                cid,
                self.group,
                name,
                status,
                None if observed is None else str(observed),
                None if expected is None else str(expected),
                detail,
            )
        )

    def ok(self, cid: str, name: str, observed: Any = None, expected: Any = None, detail: str = "") -> None:
        self.add(cid, name, Status.PASS, observed, expected, detail)

    def fail(self, cid: str, name: str, observed: Any, expected: Any, detail: str) -> None:
        self.add(cid, name, Status.FAIL, observed, expected, detail)

    def warn(self, cid: str, name: str, observed: Any, expected: Any, detail: str) -> None:
        self.add(cid, name, Status.WARN, observed, expected, detail)

    def skip(self, cid: str, name: str, detail: str, observed: Any = None, expected: Any = None) -> None:
        self.add(cid, name, Status.SKIP, observed, expected, detail)

    def policy(self, cid: str, name: str, policy: str, observed: Any, expected: Any, detail: str) -> None:
        """A failed condition under a ``required|fail`` / ``warn`` / ``ignore`` policy."""
        if policy == "ignore":
            self.skip(cid, name, f"ignored by the spec's checks policy ({detail})", observed, expected)
        elif policy == "warn":
            self.warn(cid, name, observed, expected, detail)
        else:
            self.fail(cid, name, observed, expected, detail)


def gib(n: float) -> str:
    return f"{n / 2**30:.1f} GiB"


def gb(n: float) -> str:
    return f"{n / 1e9:.0f} GB" if n < 1e12 else f"{n / 1e12:.2f} TB"
