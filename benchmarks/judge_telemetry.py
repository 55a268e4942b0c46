"""Telemetry judgement for a bench run: the clocks-event reasons under load (severity from
``dlverify.clocks``, as in ``dlverify check``), the likely cause of a slow GPU, and the
``bench.telemetry`` result."""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from typing import Any

from dlverify import clocks
from dlverify.results import CheckResult, Recorder, Status
from dlverify.unavailable import is_unavailable

REASON_MIN_SHARE = 0.05  # a clocks-event reason seen in fewer samples than this is noise
LOW_UTIL_PCT = 90.0
CLOCK_GAP = 0.05  # SM clock this much below the node's median is worth naming


def _tele(worker: dict[str, Any], mode: str | None) -> dict[str, Any]:
    t = worker.get("telemetry") or {}
    if is_unavailable(t):
        return {}
    if mode and isinstance(t.get(mode), dict) and t[mode].get("samples"):
        return t[mode]
    return t.get("run") or {}


def _med(tele: dict[str, Any], metric: str) -> float | None:
    v = tele.get(metric)
    return v.get("median") if isinstance(v, dict) else None


def _max(tele: dict[str, Any], metric: str) -> float | None:
    v = tele.get(metric)
    return v.get("max") if isinstance(v, dict) else None


def _bad_reasons(tele: dict[str, Any], allowed: Sequence[str]) -> list[tuple[str, float]]:
    reasons = tele.get("reasons") or {}
    return sorted(
        (
            (n, s)
            for n, s in reasons.items()
            # a fault reason cannot be allowed (dlverify.clocks); gpu_idle under load is starvation,
            # which likely_cause names from the utilisation
            if s >= REASON_MIN_SHARE and clocks.severity(n, allowed) is not Status.PASS and n != "gpu_idle"
        ),
        key=lambda x: -x[1],
    )


def likely_cause(
    worker: dict[str, Any], mode: str, peers: Sequence[dict[str, Any]], allowed: Sequence[str]
) -> str:
    """The most probable reason a GPU is slow, read from its telemetry against its peers'."""
    tele = _tele(worker, mode)
    if not tele:
        return "no telemetry to tell why"
    causes: list[str] = []
    temp = _max(tele, "temperature_c")
    for name, share in _bad_reasons(tele, allowed):
        what = clocks.meaning(name)
        extra = f", max {temp:.0f} C" if temp is not None and "thermal" in name else ""
        causes.append(f"{what}: {name} in {share:.0%} of samples{extra}")
    peer_tele = [_tele(p, mode) for p in peers]
    limit = tele.get("power_limit_w")
    peer_limits: list[float] = [w for t in peer_tele if (w := t.get("power_limit_w"))]
    if limit and peer_limits and limit < 0.97 * statistics.median(peer_limits):
        causes.append(f"power limit {limit:.0f} W vs {statistics.median(peer_limits):.0f} W on the others")
    share_cap = (tele.get("reasons") or {}).get("sw_power_cap", 0.0)
    if share_cap >= 0.5 and not causes and limit:
        causes.append(f"at its power cap ({limit:.0f} W) in {share_cap:.0%} of samples")
    clk = _med(tele, "sm_clock_mhz")
    peer_clk = [c for c in (_med(t, "sm_clock_mhz") for t in peer_tele) if c]
    if clk and peer_clk and clk < (1 - CLOCK_GAP) * statistics.median(peer_clk):
        causes.append(f"SM clock median {clk:.0f} MHz vs {statistics.median(peer_clk):.0f} MHz node median")
    mclk = _med(tele, "mem_clock_mhz")
    peer_m = [c for c in (_med(t, "mem_clock_mhz") for t in peer_tele) if c]
    if mclk and peer_m and mclk < (1 - CLOCK_GAP) * statistics.median(peer_m):
        causes.append(f"memory clock median {mclk:.0f} MHz vs {statistics.median(peer_m):.0f} MHz")
    util = _med(tele, "util_gpu_pct")
    if util is not None and util < LOW_UTIL_PCT:
        causes.append(
            f"GPU busy only {util:.0f}% of the time: the worker was starved "
            "(host CPU contention, PCIe, launch overhead)"
        )
    if not causes:
        return (
            "nothing visible in telemetry (clocks, power, temperature normal): "
            "check the PCIe link and host load"
        )
    return "; ".join(causes)


def _telemetry_text(tele: dict[str, Any]) -> str:
    parts = []
    clk = _med(tele, "sm_clock_mhz")
    if clk is not None:
        parts.append(f"SM {clk:.0f} MHz")
    pw = _max(tele, "power_w")
    if pw is not None:
        lim = tele.get("power_limit_w")
        parts.append(f"{pw:.0f}" + (f"/{lim:.0f}" if lim else "") + " W")
    t = _max(tele, "temperature_c")
    if t is not None:
        parts.append(f"{t:.0f} C")
    u = _med(tele, "util_gpu_pct")
    if u is not None:
        parts.append(f"{u:.0f}% busy")
    return ", ".join(parts)


def telemetry_result(
    r: Recorder, w: dict[str, Any], modes: Sequence[str], allowed: Sequence[str]
) -> CheckResult:
    t = w.get("telemetry") or {}
    if not t or is_unavailable(t):
        return r.check("bench.telemetry", "clocks, power, heat under load").skip(
            str(t.get("unavailable", "no telemetry recorded"))
        )
    worst: dict[str, float] = {}
    for mode in modes:
        for n, s in _bad_reasons(_tele(w, mode), allowed):
            worst[n] = max(worst.get(n, 0.0), s)
    timed = [x for x in (_tele(w, m) for m in modes) if x]
    run = _merge(timed) if timed else _tele(w, None)
    text = _telemetry_text(run)
    if not worst:
        return r.check("bench.telemetry", "clocks, power, heat under load").ok(
            text,
            "no throttling",
            f"{run.get('samples', 0)} samples at "
            f"{1 / run.get('interval_s', 0.1):.0f} Hz; no clocks-event reason outside "
            f"the allowed ({', '.join(allowed)})",
        )
    reasons = ", ".join(f"{n} {s:.0%}" for n, s in sorted(worst.items(), key=lambda x: -x[1]))
    temp = _max(run, "temperature_c")
    detail = f"clocks held down under load: {reasons} of samples" + (
        f"; max {temp:.0f} C" if temp is not None else ""
    )
    return r.check("bench.telemetry", "clocks, power, heat under load").status(
        clocks.worst(worst, allowed), text, "no throttling", detail
    )


def _merge(summaries: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """The timed phases of all modes as one: lowest medians and minima, highest maxima."""
    out: dict[str, Any] = dict(summaries[0])
    out["samples"] = sum(x.get("samples", 0) for x in summaries)
    for metric in ("sm_clock_mhz", "mem_clock_mhz", "power_w", "temperature_c", "util_gpu_pct"):
        vals = [x[metric] for x in summaries if isinstance(x.get(metric), dict)]
        if vals:
            out[metric] = {
                "min": min(v["min"] for v in vals),
                "median": min(v["median"] for v in vals),
                "max": max(v["max"] for v in vals),
            }
    return out
