"""A value a probe could not give, and why: the one definition, its JSON form, and how to read it back.

Probes return an :class:`Unavailable` (in the style of nvitop's NA); the snapshot stores it as
``{"unavailable": "<reason>"}``; judges (checks, bench) ask :func:`why_missing` and turn the reason into a
skip or a failure. Reasons the judges compare against are named here once.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

KEY = "unavailable"

# reasons the probes give and the judges recognise
NO_NVLINK = "no NVLink on this card"
NO_FABRIC = "no NVSwitch fabric on this GPU"


@dataclass(frozen=True)
class Unavailable:
    """A value NVML (or another probe) could not give, and why."""

    reason: str

    def __bool__(self) -> bool:  # so `if value:` never mistakes it for data
        return False

    def to_json(self) -> dict[str, str]:
        return {KEY: self.reason}


def is_unavailable(value: object) -> bool:
    return isinstance(value, Unavailable) or (isinstance(value, dict) and set(value) == {KEY})


def why_missing(value: Any) -> str | None:
    """Why a value is missing (an Unavailable, its JSON form, or absent: None), else None."""
    if value is None:
        return "not recorded in the snapshot"
    if isinstance(value, Unavailable):
        return value.reason
    if isinstance(value, dict) and set(value) == {KEY}:
        return str(value[KEY])
    return None
