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


def check_clock_event_counters(c: ChecksSpec, g: Json, j: Recorder) -> None:
    """Cumulative clocks-event time (since the driver loaded): what the current mask cannot show, a card
    that protected itself while nobody looked. A protecting reason (severity fail in dlverify.clocks) with
    time on it warns: it is history; the live mask is gpu.clocks_event_reasons."""
    counters = g.get("clocks_event_counters_ns")
    name = "clocks-event counters"
    why = missing(counters)
    if why is not None:
        j.check("gpu.clocks_event_counters", name).skip(why)
        return
    timed = {k: v for k, v in counters.items() if isinstance(v, (int, float)) and v > 0}
    shown = ", ".join(f"{k} {v / 1e9:.1f} s" for k, v in timed.items()) or "none"
    hard = [k for k in timed if clocks.severity(k, ()) is Status.FAIL]
    if hard:
        j.check("gpu.clocks_event_counters", name).warn(
            shown,
            "no protective slowdown",
            f"clocks were held down by {', '.join(hard)} since the driver loaded",
        )
    else:
        j.check("gpu.clocks_event_counters", name).ok(shown, "no protective slowdown")


def check_application_clocks(g: Json, j: Recorder) -> None:
    """Application clocks set below the default (nvidia-smi -ac): every job runs slower than the card can."""
    low = []
    seen = []
    for kind in ("graphics", "mem"):
        cur, dflt = g.get(f"app_clock_{kind}_mhz"), g.get(f"app_clock_{kind}_default_mhz")
        if missing(cur) or missing(dflt):
            continue
        seen.append(f"{kind} {cur}/{dflt} MHz")
        if cur < dflt:
            low.append(f"{kind} {cur} MHz < default {dflt} MHz")
    name = "application clocks"
    if not seen:
        why = missing(g.get("app_clock_graphics_mhz")) or missing(g.get("app_clock_graphics_default_mhz"))
        j.check("gpu.clocks.applications", name).skip(why or "not recorded")
    elif low:
        j.check("gpu.clocks.applications", name).warn(
            ", ".join(seen), "the defaults", "; ".join(low) + " (reset with nvidia-smi -rac)"
        )
    else:
        j.check("gpu.clocks.applications", name).ok(", ".join(seen), "the defaults")
