"""Small helpers shared by the judges: reading snapshot values, versions, units.

Results are built with :class:`dlverify.results.Recorder`:
``j.check(id, name).fail(observed, expected, why)``.
"""

from __future__ import annotations

from typing import Any

from dlverify.hwspec.compat import vkey
from dlverify.unavailable import why_missing

# A snapshot section as the judges receive it: JSON from a probe or a file, possibly hand-edited, so
# every value is read defensively through missing() and get() rather than trusted to a declared shape.
Json = Any


def missing(value: Any) -> str | None:
    """Why a snapshot value is missing (``{"unavailable": why}``, or absent), else None."""
    return why_missing(value)


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


def gib(n: float) -> str:
    return f"{n / 2**30:.1f} GiB"


def gb(n: float) -> str:
    return f"{n / 1e9:.0f} GB" if n < 1e12 else f"{n / 1e12:.2f} TB"
