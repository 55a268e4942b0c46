"""Per-card judges of heat, clocks and power: temperature, clocks-event reasons (severity from
``dlverify.clocks``, as in ``dlverify bench``), power limit against the default. Pure."""

from __future__ import annotations

from dlverify import clocks
from dlverify.checks.common import Json, missing
from dlverify.hwspec.model import ChecksSpec
from dlverify.results import Recorder, Status


def check_temperature(c: ChecksSpec, g: Json, j: Recorder) -> None:
    t = g.get("temperature_c")
    if missing(t):
        j.check("gpu.temperature", "temperature").skip(missing(t) or "")
    elif t >= c.gpu_temp_max_c:
        j.check("gpu.temperature", "temperature").fail(
            f"{t} C", f"< {c.gpu_temp_max_c} C", "at or above the maximum"
        )
    elif t >= c.gpu_temp_warn_c:
        j.check("gpu.temperature", "temperature").warn(f"{t} C", f"< {c.gpu_temp_warn_c} C", "running hot")
    else:
        j.check("gpu.temperature", "temperature").ok(f"{t} C", f"< {c.gpu_temp_warn_c} C")


def check_clock_events(c: ChecksSpec, g: Json, j: Recorder) -> None:
    reasons = g.get("clocks_event_reasons")
    if missing(reasons):
        j.check("gpu.clocks_event_reasons", "clocks-event reasons").skip(missing(reasons) or "")
    else:
        active = list(reasons)
        allowed_names = c.allowed_clock_event_reasons
        hard = [r for r in active if clocks.severity(r, allowed_names) is Status.FAIL]
        other = [r for r in active if clocks.severity(r, allowed_names) is Status.WARN]
        shown = ", ".join(active) or "none"
        allowed = "only " + ", ".join(c.allowed_clock_event_reasons)
        if hard:
            j.check("gpu.clocks_event_reasons", "clocks-event reasons").fail(
                shown, allowed, f"clocks held down by {', '.join(hard)}: check cooling and power delivery"
            )
        elif other:
            j.check("gpu.clocks_event_reasons", "clocks-event reasons").warn(
                shown, allowed, f"not in the allowed list: {', '.join(other)}"
            )
        else:
            j.check("gpu.clocks_event_reasons", "clocks-event reasons").ok(shown, allowed)


def check_power_limit(c: ChecksSpec, g: Json, j: Recorder) -> None:
    lim, dflt = g.get("power_limit_mw"), g.get("power_default_limit_mw")
    if missing(lim) or missing(dflt) or not dflt:
        j.check("gpu.power_limit", "power limit").skip(missing(lim) or missing(dflt) or "no default limit")
    else:
        ratio = lim / dflt
        obs, exp = f"{lim / 1000:.0f} W", f">= {c.power_limit_min_ratio:.0%} of {dflt / 1000:.0f} W"
        if ratio < c.power_limit_min_ratio:
            j.check("gpu.power_limit", "power limit").warn(
                obs, exp, f"capped at {ratio:.0%} of the default limit (nvidia-smi -pl)"
            )
        else:
            j.check("gpu.power_limit", "power limit").ok(obs, exp)
