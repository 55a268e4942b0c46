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

from dlverify import clocks
from dlverify.bench.config import MODES
from dlverify.hwspec.model import BenchSpec, ChecksSpec
from dlverify.results import CheckResult, Recorder, Status
from dlverify.unavailable import is_unavailable

REFERENCE_SCHEMA = "dlverify.bench.reference/1"
REASON_MIN_SHARE = 0.05  # a clocks-event reason seen in fewer samples than this is noise
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


def find_reference(
    refs: Sequence[dict[str, Any]], card: str | None, mode: str, precision: str, image_size: int | None
) -> tuple[dict[str, Any], dict[str, Any]] | None:
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


# -- judgement --------------------------------------------------------------------------------------------
def _ok_mode(worker: dict[str, Any], mode: str) -> dict[str, Any] | None:
    if worker.get("status") != "ok":
        return None
    m = (worker.get("result") or {}).get("modes", {}).get(mode)
    if not m or not (m.get("guard") or {}).get("ok"):
        return None
    return m


def judge(
    record: dict[str, Any],
    *,
    references: Sequence[dict[str, Any]],
    bench_spec: BenchSpec | None = None,
    allowed_reasons: Sequence[str] = ChecksSpec().allowed_clock_event_reasons,
) -> list[CheckResult]:
    spec = bench_spec or BenchSpec()
    cfg = record.get("config") or {}
    modes = [m for m in MODES if m in cfg.get("modes", MODES)]
    workers = record.get("workers") or []
    standard = cfg.get("device") == "cuda" and cfg.get("image_size") == 224 and bool(cfg.get("compile"))
    rec = Recorder("bench")

    medians: dict[str, float] = {}
    for mode in modes:
        rates = [m["img_s"] for w in workers if (m := _ok_mode(w, mode))]
        if rates:
            medians[mode] = statistics.median(rates)

    for w in workers:
        g = w.get("label") or f"gpu{w.get('index')}"
        r = rec.for_group(g)
        res = w.get("result") or {}
        card = res.get("name") or w.get("name")
        if w.get("status") != "ok":
            f = w.get("failure") or {}
            kind = f.get("kind", "crash")
            what = {
                "oom": "ran out of memory",
                "timeout": "hung (timeout)",
                "crash": "crashed",
                "exception": "failed",
            }.get(kind, "failed")
            r.check("bench.worker", "benchmark worker").fail(
                kind, "completed", f"{g} {what}: {f.get('error', 'no result')}"
            )
            continue
        r.check("bench.worker", "benchmark worker").ok(
            "completed", "completed", f"{card}; wall {res.get('wall_s', 0):.1f} s"
        )
        peers = [p for p in workers if p is not w]
        for mode in modes:
            m = (res.get("modes") or {}).get(mode)
            name = _MODE_NAME[mode]
            if m is None:
                r.check(f"bench.{mode}.correctness", f"{name} correctness").fail(
                    None, None, f"the worker returned no {name} result"
                )
                continue
            guard = m.get("guard") or {}
            gstat = Status.PASS if guard.get("ok") else Status.FAIL
            r.check(f"bench.{mode}.correctness", f"{name} correctness").status(
                gstat, "ok" if guard.get("ok") else "broken", "ok", guard.get("detail", "no guard record")
            )
            if not guard.get("ok"):
                r.check(f"bench.{mode}.throughput", f"{name} throughput").skip(
                    "not a result: the step failed its correctness guard", _fmt(m.get("img_s", 0.0))
                )
                continue
            rate = float(m["img_s"])
            observed = f"{_fmt(rate)} ±{m.get('spread_pct', 0):.1f}%"
            how = (
                f"median of {m.get('windows')} windows, batch {m.get('batch_size')}, "
                f"{m.get('precision')}; compile {m.get('compile_s', 0):.1f} s"
            )
            if m.get("batch_reduced_from"):
                how += f"; batch halved from {m['batch_reduced_from']} after out-of-memory"
            # reference
            ref = find_reference(references, card, mode, m.get("precision", "fp32"), m.get("image_size"))
            if not standard:
                r.check(f"bench.{mode}.throughput", f"{name} throughput").skip(
                    "no reference for this configuration (references are for CUDA, "
                    f"224 px, torch.compile); {how}",
                    observed,
                )
            elif ref is None:
                r.check(f"bench.{mode}.throughput", f"{name} throughput").skip(
                    f"no reference throughput for {card!r} ({mode}, "
                    f"{precision_class(m.get('precision', 'fp32'))} precision): add one "
                    f"under benchmarks/references/; {how}",
                    observed,
                )
            else:
                doc, e = ref
                need = e["img_s"] * (1 - spec.reference_tolerance)
                expected = f">= {_fmt(need)}"
                src = (
                    f"reference {_fmt(e['img_s'])} ({doc.get('_file', 'references')}, {e.get('date')}, "
                    f"batch {e.get('batch_size')}) -{spec.reference_tolerance:.0%}"
                )
                if rate >= need:
                    r.check(f"bench.{mode}.throughput", f"{name} throughput").ok(
                        observed, expected, f"{rate / e['img_s']:.2f}x the {src}; {how}"
                    )
                else:
                    cause = likely_cause(w, mode, peers, allowed_reasons)
                    r.check(f"bench.{mode}.throughput", f"{name} throughput").fail(
                        observed,
                        expected,
                        f"{1 - rate / e['img_s']:.1%} below the {src}; likely cause: {cause}; {how}",
                    )
            # straggler
            ok_peers = [p for p in workers if _ok_mode(p, mode)]
            if len(ok_peers) < 2:
                r.check(f"bench.{mode}.straggler", f"{name} vs node").skip(
                    "only one GPU completed this mode: no node median to compare with", observed
                )
            else:
                # the median of the *other* GPUs: with two GPUs, the slow one is compared with the fast
                # one, not with their mean (which would halve the gap)
                med = statistics.median(
                    pm["img_s"] for p in ok_peers if p is not w and (pm := _ok_mode(p, mode))
                )
                gap = 1 - rate / med
                expected = f">= {_fmt(med * (1 - spec.straggler_tolerance))}"
                if gap > spec.straggler_tolerance:
                    cause = likely_cause(w, mode, [p for p in ok_peers if p is not w], allowed_reasons)
                    r.check(f"bench.{mode}.straggler", f"{name} vs node").fail(
                        observed,
                        expected,
                        f"{g} is a straggler: {gap:.1%} below the median of the "
                        f"other GPUs, {_fmt(med)} (tolerance "
                        f"{spec.straggler_tolerance:.0%}); "
                        f"likely cause: {cause}",
                    )
                else:
                    r.check(f"bench.{mode}.straggler", f"{name} vs node").ok(
                        observed, expected, f"{-gap:+.1%} vs the median of the other GPUs, {_fmt(med)}"
                    )
            # floor
            floor = spec.min_train_img_s if mode == "train" else spec.min_infer_img_s
            key = f"bench.min_{mode}_img_s"
            if floor is None:
                why = "no spec given (--spec)" if bench_spec is None else f"the spec sets no {key}"
                r.check(f"bench.{mode}.floor", f"{name} floor").skip(why, observed)
            else:
                st = Status.PASS if rate >= floor else Status.FAIL
                r.check(f"bench.{mode}.floor", f"{name} floor").status(
                    st,
                    observed,
                    f">= {_fmt(floor)}",
                    f"spec {key} = {floor:,.0f}"
                    + (
                        ""
                        if st is Status.PASS
                        else f": {1 - rate / floor:.1%} short; likely cause: "
                        f"{likely_cause(w, mode, peers, allowed_reasons)}"
                    ),
                )
        _telemetry_result(r, w, modes, allowed_reasons)

    _node_results(rec, record, modes, medians)
    return rec.results


def _telemetry_result(
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


def _node_results(
    rec: Recorder, record: dict[str, Any], modes: Sequence[str], medians: dict[str, float]
) -> None:
    workers = record.get("workers") or []
    how = "one after another" if record.get("sequential") else "at once"
    for mode in modes:
        name = _MODE_NAME[mode]
        ok = [(w.get("label"), m["img_s"]) for w in workers if (m := _ok_mode(w, mode))]
        if not ok:
            rec.check(f"bench.{mode}.node", f"node {name}").skip(
                f"no GPU completed {name} with a correct step"
            )
            continue
        total = sum(r for _, r in ok)
        slowest = min(ok, key=lambda x: x[1])
        rec.check(f"bench.{mode}.node", f"node {name}").ok(
            f"{_fmt(total)} total",
            None,
            f"{len(ok)}/{len(workers)} GPU(s) {how}; "
            f"median {_fmt(medians[mode])}; slowest {slowest[0]} {_fmt(slowest[1])}",
        )
    s = record.get("sampler")
    if s is None:
        rec.check("bench.sampler", "telemetry sampler").skip("telemetry off or not available for this device")
    elif s.get("error"):
        rec.check("bench.sampler", "telemetry sampler").warn(None, None, f"no telemetry: {s['error']}")
    else:
        cpu = s.get("cpu_ms_per_sweep")
        rec.check("bench.sampler", "telemetry sampler").ok(
            f"{s.get('sweeps', 0)} sweeps",
            None,
            f"every {s.get('interval_s', 0.1):.2f} s; "
            + (f"{cpu:.3f} ms of CPU per sweep" if cpu is not None else ""),
        )
