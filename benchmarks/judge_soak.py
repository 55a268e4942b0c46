"""Judge a `--soak` series (:mod:`soak`): is the GPU as fast, and as clean, at the end of the load as at its
start? Thresholds from the spec's bench section (``soak_max_drift``, ``soak_max_cv``,
``soak_max_event_share``); the node's XID/ECC counters over the whole run are ``bench.node_state``'s.
"""

from __future__ import annotations

from typing import Any

from dlverify.clocks import FAULTS
from dlverify.hwspec.model import BenchSpec
from dlverify.results import Recorder


def _pct(x: float) -> str:
    return f"{100 * x:.1f}%"


def judge_soak(r: Recorder, worker: dict[str, Any], spec: BenchSpec) -> None:
    """``bench.soak.stability`` for each mode of the worker's result that carries a soak series."""
    for mode, m in ((worker.get("result") or {}).get("modes") or {}).items():
        s = m.get("soak") if isinstance(m, dict) else None
        if not isinstance(s, dict):
            continue
        c = r.check("bench.soak.stability", f"{mode} soak stability")
        windows = s.get("windows") or []
        if len(windows) < 2 or s.get("drift") is None:
            c.warn(f"{len(windows)} window(s)", ">= 2", "soak shorter than two windows: nothing to compare")
            continue
        drift, cv = float(s["drift"]), float(s.get("cv") or 0.0)
        problems = []
        if -drift > spec.soak_max_drift:
            problems.append(
                f"throughput fell {_pct(-drift)} from the first window to the last "
                f"(limit {_pct(spec.soak_max_drift)})"
            )
        if cv > spec.soak_max_cv:
            problems.append(
                f"windows spread {_pct(cv)} (coefficient of variation, limit {_pct(spec.soak_max_cv)})"
            )
        seen_tele = False
        for i, w in enumerate(windows):
            reasons = (w.get("telemetry") or {}).get("reasons") or {}
            seen_tele = seen_tele or bool(reasons)
            bad = [
                f"{k} {_pct(v)}" for k, v in reasons.items() if k in FAULTS and v >= spec.soak_max_event_share
            ]
            if bad:
                problems.append(f"window {i + 1}/{len(windows)}: {', '.join(bad)} of samples")
        observed = f"drift {_pct(drift)}, spread {_pct(cv)} over {len(windows)} windows"
        expected = f"drift >= -{_pct(spec.soak_max_drift)}, spread <= {_pct(spec.soak_max_cv)}"
        tele = "" if seen_tele else "; no clocks-event telemetry (CPU run or telemetry off)"
        if problems:
            c.fail(observed, expected, "; ".join(problems) + tele)
        else:
            c.ok(
                observed,
                expected,
                f"{s.get('duration_s', 0):.0f} s in {s.get('window_s', 0):g} s windows" + tele,
            )
