"""NVML clocks-event reasons: one table for the probe, the bench sampler, the spec's key table, and the
severity both `dlverify check` (a snapshot) and `dlverify bench` (under load) judge them with.

Severity: a *fault* reason means the card is protecting itself from heat or a power-delivery problem
(``hw_slowdown``, ``hw_thermal_slowdown``, ``hw_power_brake_slowdown`` and ``sw_thermal_slowdown``, the
driver's own thermal slowdown): it fails, whatever ``checks.allowed_clock_event_reasons`` says. Any other
reason passes when the spec allows it and warns when it does not.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from dlverify.results import Status


@dataclass(frozen=True)
class ClockEventReason:
    name: str  # the name nvidia-smi prints, lower_snake_case; the spec's allowed_clock_event_reasons use it
    bit: int  # NVML's ABI (nvml.h nvmlClocksEventReason*), stable across driver branches
    fault: bool  # the card is protecting itself: fails in check and bench, cannot be allowed
    meaning: str = ""  # for a fault: what it tells about the card (bench names it as the likely cause)


REASONS: tuple[ClockEventReason, ...] = (
    ClockEventReason("gpu_idle", 0x1, False),
    ClockEventReason("applications_clocks_setting", 0x2, False),
    ClockEventReason("sw_power_cap", 0x4, False),
    ClockEventReason("hw_slowdown", 0x8, True, "hardware slowdown (thermal or power-supply signal)"),
    ClockEventReason("sync_boost", 0x10, False),
    ClockEventReason("sw_thermal_slowdown", 0x20, True, "thermal throttling (driver)"),
    ClockEventReason("hw_thermal_slowdown", 0x40, True, "thermal throttling (hardware)"),
    ClockEventReason("hw_power_brake_slowdown", 0x80, True, "power brake (external power/PSU signal)"),
    # nvidia-smi -q -x says display_clocks_setting
    ClockEventReason("display_clock_setting", 0x100, False),
)
BY_NAME = {r.name: r for r in REASONS}
NAMES = tuple(r.name for r in REASONS)
FAULTS = tuple(r.name for r in REASONS if r.fault)


def decode(mask: int) -> list[str]:
    """The reason names set in an NVML mask, in table order; unknown bits as ``unknown_0x...``."""
    names = [r.name for r in REASONS if mask & r.bit]
    unknown = mask & ~sum(r.bit for r in REASONS)
    if unknown:
        names.append(f"unknown_0x{unknown:x}")
    return names


def severity(name: str, allowed: Iterable[str]) -> Status:
    """FAIL for a fault reason, PASS for one the spec allows, WARN for any other (unknown bits too)."""
    if name in FAULTS:
        return Status.FAIL
    return Status.PASS if name in allowed else Status.WARN


def worst(names: Iterable[str], allowed: Iterable[str]) -> Status:
    allowed = tuple(allowed)
    order = (Status.PASS, Status.WARN, Status.FAIL)
    return max((severity(n, allowed) for n in names), key=order.index, default=Status.PASS)


def meaning(name: str) -> str:
    """What a fault reason says about the card; other reasons are shown by name."""
    r = BY_NAME.get(name)
    return r.meaning if r and r.meaning else name
