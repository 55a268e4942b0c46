"""Judge a recorded bench run: correctness guards, references, stragglers, floors -> CheckResults.

Pure functions over the JSON record that :func:`dlverify.benchmarks.runner.run_bench` writes: no torch, no
NVML, so a run recorded on one machine can be judged (and re-judged with new references) anywhere. The
per-card references are ``judge_reference``; telemetry (throttling, likely causes) is ``judge_telemetry``.
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from typing import Any

from dlverify.benchmarks import node_state
from dlverify.benchmarks.config import DEFAULT_SUITES, MODES
from dlverify.benchmarks.judge_reference import (
    REFERENCE_SCHEMA,
    find_reference,
    load_references,
    precision_class,
)
from dlverify.benchmarks.judge_soak import judge_soak
from dlverify.benchmarks.judge_suites import judge_node, judge_per_gpu
from dlverify.benchmarks.judge_telemetry import likely_cause, telemetry_result
from dlverify.hwspec.model import BenchSpec, ChecksSpec
from dlverify.results import CheckResult, Recorder, Status
from dlverify.unavailable import why_missing

__all__ = ["REFERENCE_SCHEMA", "find_reference", "judge", "likely_cause", "load_references"]

_MODE_NAME = {"train": "training", "infer": "inference"}


def _fmt(x: float) -> str:
    return f"{x:,.0f} img/s"


def _ok_mode(worker: dict[str, Any], mode: str) -> dict[str, Any] | None:
    if worker.get("status") != "ok":
        return None
    m = (worker.get("result") or {}).get("modes", {}).get(mode)
    if not m or not (m.get("guard") or {}).get("ok"):
        return None
    return m


def _judge_node_state(r: Recorder, state: Any, worker: dict[str, Any]) -> None:
    """bench.node_state: no error counter of this GPU may move, and no XID may appear, during the run."""
    c = r.check("bench.node_state", "error counters and XIDs during the run")
    if isinstance(state, dict) and set(state) == {"unavailable"}:
        c.skip(str(why_missing(state)))
        return
    if not isinstance(state, dict) or "after" not in state:
        c.skip("not recorded (a run from before node-state readings, or interrupted)")
        return
    if not worker.get("uuid"):
        c.skip("the worker's GPU has no UUID to find its counters by")
        return
    others = node_state.busy(state["before"], worker["uuid"])
    free = r.check("bench.gpu_free", "no other process on the GPU")
    if isinstance(others, str):
        free.skip(others)
    elif others:
        free.warn(
            ", ".join(others),
            "none",
            "busy before the run, so its numbers are not its own: " + ", ".join(others),
        )
    else:
        free.ok("none", "none", "no other compute process on the GPU before the run")
    got = node_state.moved(state["before"], state["after"], worker["uuid"])
    if isinstance(got, str):
        c.skip(got)
        return
    worst, findings = got
    n = len(node_state.COUNTERS) + len(node_state.FLAGS)
    if worst == "pass":
        c.ok("none moved", "none moved", f"{n} NVML counters and flags, and the kernel log's XIDs")
    else:
        severity = Status.FAIL if worst == "fail" else Status.WARN
        c.status(severity, "; ".join(findings), "none moved", "moved during the run: " + "; ".join(findings))


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
    if "resnet18" not in cfg.get("suites", DEFAULT_SUITES):
        modes = []
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
        if w.get("status") == "interrupted":  # Ctrl-C/SIGTERM: not a verdict on the GPU
            done = ", ".join([*(res.get("modes") or {}), *(res.get("suites") or {})])
            why = (w.get("failure") or {}).get("error", "interrupted")
            r.check("bench.worker", "benchmark worker").skip(
                f"{g} {why}" + (f"; completed before it: {done}" if done else "")
            )
            continue
        if w.get("status") != "ok":
            f = w.get("failure") or {}
            kind = f.get("kind", "crash")
            what = {
                "oom": "ran out of memory",
                "timeout": "hung (timeout)",
                "hung": "hung (watchdog)",
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
        _judge_node_state(r, record.get("node_state"), w)
        judge_soak(r, w, spec)
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
        judge_per_gpu(r, w, workers, references, spec, cfg.get("device") == "cuda", allowed_reasons)
        telemetry_result(r, w, modes, allowed_reasons)

    _node_results(rec, record, modes, medians)
    judge_node(rec, record, references, spec)
    return rec.results


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
