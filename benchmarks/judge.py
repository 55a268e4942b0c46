"""Judge a recorded bench run: references, stragglers, floors, guards, telemetry -> CheckResults.

Pure functions over the JSON record that :func:`dlverify.bench.runner.run_bench` writes: no torch, no NVML,
so a run recorded on one machine can be judged (and re-judged with new references) anywhere.
"""

from __future__ import annotations

import json
import statistics
from collections.abc import Iterable, Sequence
from importlib import resources
from pathlib import Path
from typing import Any

from dlverify.bench.config import MODES
from dlverify.hwspec.model import BenchSpec, ChecksSpec
from dlverify.results import CheckResult, Status

REFERENCE_SCHEMA = "dlverify.bench.reference/1"
REASON_MIN_SHARE = 0.05  # a clocks-event reason seen in fewer samples than this is noise
HW_REASONS = ("hw_slowdown", "hw_thermal_slowdown", "hw_power_brake_slowdown")
LOW_UTIL_PCT = 90.0
CLOCK_GAP = 0.05  # SM clock this much below the node's median is worth naming

_MODE_NAME = {"train": "training", "infer": "inference"}


def _fmt(x: float) -> str:
    return f"{x:,.0f} img/s"


# -- references -------------------------------------------------------------------------------------------
def load_references(paths: Iterable[str | Path] | None = None) -> list[dict[str, Any]]:
    """The per-card reference files: the packaged ones, or the given paths."""
    docs: list[dict[str, Any]] = []
    if paths is None:
        folder = resources.files("dlverify.bench") / "references"
        items = sorted((p for p in folder.iterdir() if p.name.endswith(".json")), key=lambda p: p.name)
        texts = [(p.name, p.read_text(encoding="utf-8")) for p in items]
    else:
        texts = [(str(p), Path(p).read_text(encoding="utf-8")) for p in paths]
    for name, text in texts:
        doc = json.loads(text)
        if doc.get("schema") != REFERENCE_SCHEMA:
            raise ValueError(f"{name}: not a {REFERENCE_SCHEMA} document")
        doc["_file"] = name
        docs.append(doc)
    return docs


def _norm(name: str) -> str:
    return " ".join(name.lower().split())


def precision_class(precision: str) -> str:
    return "fp32" if precision == "fp32" else "mixed"


def find_reference(refs: Sequence[dict[str, Any]], card: str | None, mode: str, precision: str,
                   image_size: int | None) -> tuple[dict[str, Any], dict[str, Any]] | None:
    if not card:
        return None
    for doc in refs:
        if _norm(card) not in {_norm(m) for m in doc.get("match", [])}:
            continue
        if image_size is not None and doc.get("image_size") not in (None, image_size):
            continue
        for e in doc.get("entries", []):
            if e.get("mode") == mode and e.get("precision") == precision_class(precision):
                return doc, e
    return None


# -- telemetry --------------------------------------------------------------------------------------------
def _tele(worker: dict[str, Any], mode: str | None) -> dict[str, Any]:
    t = worker.get("telemetry") or {}
    if "unavailable" in t and len(t) == 1:
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
    return sorted(((n, s) for n, s in reasons.items()
                   if s >= REASON_MIN_SHARE and n not in allowed and n != "gpu_idle"),
                  key=lambda x: -x[1])


def likely_cause(worker: dict[str, Any], mode: str, peers: Sequence[dict[str, Any]],
                 allowed: Sequence[str]) -> str:
    """The most probable reason a GPU is slow, read from its telemetry against its peers'."""
    tele = _tele(worker, mode)
    if not tele:
        return "no telemetry to tell why"
    causes: list[str] = []
    temp = _max(tele, "temperature_c")
    for name, share in _bad_reasons(tele, allowed):
        what = {"hw_thermal_slowdown": "thermal throttling (hardware)",
                "sw_thermal_slowdown": "thermal throttling (driver)",
                "hw_power_brake_slowdown": "power brake (external power/PSU signal)",
                "hw_slowdown": "hardware slowdown (thermal or power-supply signal)"}.get(name, name)
        extra = f", max {temp:.0f} C" if temp is not None and "thermal" in name else ""
        causes.append(f"{what}: {name} in {share:.0%} of samples{extra}")
    peer_tele = [_tele(p, mode) for p in peers]
    limit = tele.get("power_limit_w")
    peer_limits = [t.get("power_limit_w") for t in peer_tele if t.get("power_limit_w")]
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
        causes.append(f"GPU busy only {util:.0f}% of the time: the worker was starved "
                      "(host CPU contention, PCIe, launch overhead)")
    if not causes:
        return ("nothing visible in telemetry (clocks, power, temperature normal): "
                "check the PCIe link and host load")
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


# -- judgement --------------------------------------------------------------------------------------------
def _ok_mode(worker: dict[str, Any], mode: str) -> dict[str, Any] | None:
    if worker.get("status") != "ok":
        return None
    m = (worker.get("result") or {}).get("modes", {}).get(mode)
    if not m or not (m.get("guard") or {}).get("ok"):
        return None
    return m


def judge(record: dict[str, Any], *, references: Sequence[dict[str, Any]],
          bench_spec: BenchSpec | None = None,
          allowed_reasons: Sequence[str] = ChecksSpec().allowed_clock_event_reasons) -> list[CheckResult]:
    spec = bench_spec or BenchSpec()
    cfg = record.get("config") or {}
    modes = [m for m in MODES if m in cfg.get("modes", MODES)]
    workers = record.get("workers") or []
    standard = (cfg.get("device") == "cuda" and cfg.get("image_size") == 224 and bool(cfg.get("compile")))
    out: list[CheckResult] = []

    medians: dict[str, float] = {}
    for mode in modes:
        rates = [m["img_s"] for w in workers if (m := _ok_mode(w, mode))]
        if rates:
            medians[mode] = statistics.median(rates)

    for w in workers:
        g = w.get("label") or f"gpu{w.get('index')}"
        res = w.get("result") or {}
        card = res.get("name") or w.get("name")
        if w.get("status") != "ok":
            f = w.get("failure") or {}
            kind = f.get("kind", "crash")
            what = {"oom": "ran out of memory", "timeout": "hung (timeout)",
                    "crash": "crashed", "exception": "failed"}.get(kind, "failed")
            out.append(CheckResult("bench.worker", g, "benchmark worker", Status.FAIL, kind, "completed",
                                   f"{g} {what}: {f.get('error', 'no result')}"))
            continue
        out.append(CheckResult("bench.worker", g, "benchmark worker", Status.PASS, "completed", "completed",
                               f"{card}; wall {res.get('wall_s', 0):.1f} s"))
        peers = [p for p in workers if p is not w]
        for mode in modes:
            m = (res.get("modes") or {}).get(mode)
            name = _MODE_NAME[mode]
            if m is None:
                out.append(CheckResult(f"bench.{mode}.correctness", g, f"{name} correctness", Status.FAIL,
                                       None, None, f"the worker returned no {name} result"))
                continue
            guard = m.get("guard") or {}
            gstat = Status.PASS if guard.get("ok") else Status.FAIL
            out.append(CheckResult(f"bench.{mode}.correctness", g, f"{name} correctness", gstat,
                                   "ok" if guard.get("ok") else "broken", "ok",
                                   guard.get("detail", "no guard record")))
            if not guard.get("ok"):
                out.append(CheckResult(f"bench.{mode}.throughput", g, f"{name} throughput", Status.SKIP,
                                       _fmt(m.get("img_s", 0.0)), None,
                                       "not a result: the step failed its correctness guard"))
                continue
            rate = float(m["img_s"])
            observed = f"{_fmt(rate)} ±{m.get('spread_pct', 0):.1f}%"
            how = (f"median of {m.get('windows')} windows, batch {m.get('batch_size')}, "
                   f"{m.get('precision')}; compile {m.get('compile_s', 0):.1f} s")
            if m.get("batch_reduced_from"):
                how += f"; batch halved from {m['batch_reduced_from']} after out-of-memory"
            # reference
            ref = find_reference(references, card, mode, m.get("precision", "fp32"), m.get("image_size"))
            if not standard:
                out.append(CheckResult(f"bench.{mode}.throughput", g, f"{name} throughput", Status.SKIP,
                                       observed, None,
                                       "no reference for this configuration (references are for CUDA, "
                                       f"224 px, torch.compile); {how}"))
            elif ref is None:
                out.append(CheckResult(f"bench.{mode}.throughput", g, f"{name} throughput", Status.SKIP,
                                       observed, None,
                                       f"no reference throughput for {card!r} ({mode}, "
                                       f"{precision_class(m.get('precision', 'fp32'))} precision): add one "
                                       f"under benchmarks/references/; {how}"))
            else:
                doc, e = ref
                need = e["img_s"] * (1 - spec.reference_tolerance)
                expected = f">= {_fmt(need)}"
                src = (f"reference {_fmt(e['img_s'])} ({doc.get('_file', 'references')}, {e.get('date')}, "
                       f"batch {e.get('batch_size')}) -{spec.reference_tolerance:.0%}")
                if rate >= need:
                    out.append(CheckResult(f"bench.{mode}.throughput", g, f"{name} throughput", Status.PASS,
                                           observed, expected,
                                           f"{rate / e['img_s']:.2f}x the {src}; {how}"))
                else:
                    cause = likely_cause(w, mode, peers, allowed_reasons)
                    out.append(CheckResult(f"bench.{mode}.throughput", g, f"{name} throughput", Status.FAIL,
                                           observed, expected,
                                           f"{1 - rate / e['img_s']:.1%} below the {src}; likely cause: "
                                           f"{cause}; {how}"))
            # straggler
            ok_peers = [p for p in workers if _ok_mode(p, mode)]
            if len(ok_peers) < 2:
                out.append(CheckResult(f"bench.{mode}.straggler", g, f"{name} vs node", Status.SKIP,
                                       observed, None,
                                       "only one GPU completed this mode: no node median to compare with"))
            else:
                # the median of the *other* GPUs: with two GPUs, the slow one is compared with the fast
                # one, not with their mean (which would halve the gap)
                med = statistics.median(pm["img_s"] for p in ok_peers if p is not w
                                        and (pm := _ok_mode(p, mode)))
                gap = 1 - rate / med
                expected = f">= {_fmt(med * (1 - spec.straggler_tolerance))}"
                if gap > spec.straggler_tolerance:
                    cause = likely_cause(w, mode, [p for p in ok_peers if p is not w], allowed_reasons)
                    out.append(CheckResult(f"bench.{mode}.straggler", g, f"{name} vs node", Status.FAIL,
                                           observed, expected,
                                           f"{g} is a straggler: {gap:.1%} below the median of the "
                                           f"other GPUs, {_fmt(med)} (tolerance "
                                           f"{spec.straggler_tolerance:.0%}); "
                                           f"likely cause: {cause}"))
                else:
                    out.append(CheckResult(f"bench.{mode}.straggler", g, f"{name} vs node", Status.PASS,
                                           observed, expected,
                                           f"{-gap:+.1%} vs the median of the other GPUs, {_fmt(med)}"))
            # floor
            floor = spec.min_train_img_s if mode == "train" else spec.min_infer_img_s
            key = f"bench.min_{mode}_img_s"
            if floor is None:
                why = "no spec given (--spec)" if bench_spec is None else f"the spec sets no {key}"
                out.append(CheckResult(f"bench.{mode}.floor", g, f"{name} floor", Status.SKIP, observed,
                                       None, why))
            else:
                st = Status.PASS if rate >= floor else Status.FAIL
                out.append(CheckResult(f"bench.{mode}.floor", g, f"{name} floor", st, observed,
                                       f">= {_fmt(floor)}",
                                       f"spec {key} = {floor:,.0f}" + ("" if st is Status.PASS else
                                       f": {1 - rate / floor:.1%} short; likely cause: "
                                       f"{likely_cause(w, mode, peers, allowed_reasons)}")))
        out.append(_telemetry_result(g, w, modes, allowed_reasons))

    out.extend(_node_results(record, modes, medians))
    return out


def _telemetry_result(g: str, w: dict[str, Any], modes: Sequence[str],
                      allowed: Sequence[str]) -> CheckResult:
    t = w.get("telemetry") or {}
    if not t or ("unavailable" in t and len(t) == 1):
        return CheckResult("bench.telemetry", g, "clocks, power, heat under load", Status.SKIP,
                           detail=str(t.get("unavailable", "no telemetry recorded")))
    worst: dict[str, float] = {}
    for mode in modes:
        for n, s in _bad_reasons(_tele(w, mode), allowed):
            worst[n] = max(worst.get(n, 0.0), s)
    timed = [x for x in (_tele(w, m) for m in modes) if x]
    run = _merge(timed) if timed else _tele(w, None)
    text = _telemetry_text(run)
    if not worst:
        return CheckResult("bench.telemetry", g, "clocks, power, heat under load", Status.PASS, text,
                           "no throttling", f"{run.get('samples', 0)} samples at "
                           f"{1 / run.get('interval_s', 0.1):.0f} Hz; no clocks-event reason outside "
                           f"the allowed ({', '.join(allowed)})")
    hw = [n for n in worst if n in HW_REASONS]
    reasons = ", ".join(f"{n} {s:.0%}" for n, s in sorted(worst.items(), key=lambda x: -x[1]))
    temp = _max(run, "temperature_c")
    detail = (f"clocks held down under load: {reasons} of samples"
              + (f"; max {temp:.0f} C" if temp is not None else ""))
    return CheckResult("bench.telemetry", g, "clocks, power, heat under load",
                       Status.FAIL if hw else Status.WARN, text, "no throttling", detail)


def _merge(summaries: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """The timed phases of all modes as one: lowest medians and minima, highest maxima."""
    out: dict[str, Any] = dict(summaries[0])
    out["samples"] = sum(x.get("samples", 0) for x in summaries)
    for metric in ("sm_clock_mhz", "mem_clock_mhz", "power_w", "temperature_c", "util_gpu_pct"):
        vals = [x[metric] for x in summaries if isinstance(x.get(metric), dict)]
        if vals:
            out[metric] = {"min": min(v["min"] for v in vals), "median": min(v["median"] for v in vals),
                           "max": max(v["max"] for v in vals)}
    return out


def _node_results(record: dict[str, Any], modes: Sequence[str],
                  medians: dict[str, float]) -> list[CheckResult]:
    workers = record.get("workers") or []
    out: list[CheckResult] = []
    how = "one after another" if record.get("sequential") else "at once"
    for mode in modes:
        name = _MODE_NAME[mode]
        ok = [(w.get("label"), m["img_s"]) for w in workers if (m := _ok_mode(w, mode))]
        if not ok:
            out.append(CheckResult(f"bench.{mode}.node", "bench", f"node {name}", Status.SKIP, None, None,
                                   f"no GPU completed {name} with a correct step"))
            continue
        total = sum(r for _, r in ok)
        slowest = min(ok, key=lambda x: x[1])
        out.append(CheckResult(
            f"bench.{mode}.node", "bench", f"node {name}", Status.PASS,
            f"{_fmt(total)} total", None,
            f"{len(ok)}/{len(workers)} GPU(s) {how}; "
            f"median {_fmt(medians[mode])}; slowest {slowest[0]} {_fmt(slowest[1])}"))
    s = record.get("sampler")
    if s is None:
        out.append(CheckResult("bench.sampler", "bench", "telemetry sampler", Status.SKIP,
                               detail="telemetry off or not available for this device"))
    elif s.get("error"):
        out.append(CheckResult("bench.sampler", "bench", "telemetry sampler", Status.WARN,
                               detail=f"no telemetry: {s['error']}"))
    else:
        cpu = s.get("cpu_ms_per_sweep")
        out.append(CheckResult("bench.sampler", "bench", "telemetry sampler", Status.PASS,
                               f"{s.get('sweeps', 0)} sweeps", None,
                               f"every {s.get('interval_s', 0.1):.2f} s; "
                               + (f"{cpu:.3f} ms of CPU per sweep" if cpu is not None else "")))
    return out
