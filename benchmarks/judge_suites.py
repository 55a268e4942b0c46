"""Judge the bandwidth suites of a recorded run: per GPU (h2d, d2h, hbm, matmul) and across GPUs
(all-reduce / all-gather bus bandwidth, the peer-to-peer matrix). Pure functions over the record.

References come from the ``suites`` field of ``benchmarks/references/*.json``: ``min`` is a threshold with
a public source (Azure NHC) and fails the check; an ``expected`` value without ``min`` is a datasheet peak
not yet measured by dlverify: falling more than ``reference_tolerance`` short of ``expected`` x
``typical_fraction`` (what a plain copy or cuBLAS matmul usually reaches of the peak) only warns.
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from typing import Any

from dlverify.benchmarks.judge_reference import _norm
from dlverify.benchmarks.judge_telemetry import likely_cause
from dlverify.hwspec.model import BenchSpec
from dlverify.results import Recorder

PER_GPU = {  # record key -> (check id, name, unit)
    "h2d": ("bench.h2d.bandwidth", "host->device bandwidth", "GB/s"),
    "d2h": ("bench.d2h.bandwidth", "device->host bandwidth", "GB/s"),
    "hbm": ("bench.hbm.bandwidth", "HBM copy bandwidth", "GB/s"),
    "matmul": ("bench.matmul.tflops", "dense matmul", "TFLOP/s"),
}
LIKELY = {
    "h2d": "a PCIe link trained down (lower generation or width: `nvidia-smi -q -d PCIE`), a NUMA-remote "
    "CPU, or IOMMU/ACS settings",
    "d2h": "a PCIe link trained down (`nvidia-smi -q -d PCIE`), a NUMA-remote CPU, or IOMMU/ACS settings",
    "hbm": "memory clocks held low, throttling, or a degraded memory subsystem (row remapping, ECC)",
    "matmul": "SM clocks held low: power cap, thermal or power-brake throttling",
}


def _num(x: float) -> str:
    return f"{x:,.1f}" if abs(x) >= 10 else f"{x:.3g}"


def _size(n: float) -> str:
    return f"{n / 2**20:,.0f} MiB" if n >= 2**20 else f"{n / 2**10:,.0f} KiB"


def suite_reference(refs: Sequence[dict[str, Any]], card: str | None, key: str) -> tuple[str, dict] | None:
    """(file, entry) of the card's reference for a suite value, or None."""
    if not card:
        return None
    for doc in refs:
        if _norm(card) in {_norm(m) for m in doc.get("match", [])} and key in (doc.get("suites") or {}):
            return doc.get("_file", "references"), doc["suites"][key]
    return None


def _suite(worker: dict[str, Any], key: str) -> dict[str, Any] | None:
    if worker.get("status") != "ok":
        return None
    v = ((worker.get("result") or {}).get("suites") or {}).get(key)
    return v if v and "value" in v else None


def _against(
    r: Recorder,
    cid: str,
    name: str,
    value: float,
    unit: str,
    ref: tuple[str, dict] | None,
    spec: BenchSpec,
    what: str,
    observed: str,
    likely: str,
) -> None:
    """One value against its reference: fail under a sourced ``min``, warn under an unmeasured peak."""
    if ref is None:
        r.check(cid, name).skip(f"no reference for {what}: add one under benchmarks/references/", observed)
        return
    src, e = ref
    how = f"{e.get('kind', 'reference')}; {e.get('source', src)}"
    if e.get("min") is not None:
        need = float(e["min"])
        if value >= need:
            r.check(cid, name).ok(observed, f">= {need:,.0f} {unit}", f"threshold from {how}")
        else:
            r.check(cid, name).fail(
                observed,
                f">= {need:,.0f} {unit}",
                f"{1 - value / need:.1%} below the threshold ({how}); likely cause: {likely}",
            )
        return
    exp = float(e["expected"])
    typical = float(e.get("typical_fraction", 1.0))  # a datasheet peak is not reached by a plain copy/matmul
    need = exp * typical * (1 - spec.reference_tolerance)
    expected = f">= {need:,.0f} {unit}"
    if typical != 1.0:
        how += f"; typically {typical:.0%} of the peak is reached (an assumption until measured)"
    if value >= need:
        r.check(cid, name).ok(observed, expected, f"{value / exp:.0%} of {exp:,.0f} {unit} ({how})")
    else:
        r.check(cid, name).warn(
            observed,
            expected,
            f"{value / exp:.0%} of {exp:,.0f} {unit}, an unmeasured reference ({how}): "
            f"a warning until a GPU run records this card; likely cause: {likely}",
        )


def judge_per_gpu(
    r: Recorder,
    w: dict[str, Any],
    workers: Sequence[dict[str, Any]],
    references: Sequence[dict[str, Any]],
    spec: BenchSpec,
    cuda: bool,
    allowed: Sequence[str] = (),
) -> None:
    """The per-GPU suites of one worker: reference and peers (median of the other GPUs)."""
    g = w.get("label") or f"gpu{w.get('index')}"
    res = w.get("result") or {}
    card = res.get("name") or w.get("name")
    suites = res.get("suites") or {}
    for key, (cid, name, unit) in PER_GPU.items():
        v = suites.get(key)
        if v is None:
            continue
        if "value" not in v:
            r.check(cid, name).fail(None, None, f"{g}: the {key} suite failed: {v.get('error', 'no value')}")
            continue
        value = float(v["value"])
        observed = f"{_num(value)} {unit} ±{v.get('spread_pct', 0):.1f}%"
        if key == "matmul":
            observed += f" ({v.get('dtype', '?')}, n={v.get('n', '?')})"
        if cuda:
            _against(
                r,
                cid,
                name,
                value,
                unit,
                suite_reference(references, card, key),
                spec,
                f"{card!r} ({key})",
                observed,
                LIKELY[key],
            )
        else:
            r.check(cid, name).skip(f"CPU run: {v.get('method', 'host memory')}; no reference", observed)
        others = [float(p["value"]) for q in workers if q is not w and (p := _suite(q, key))]
        sid = cid.rsplit(".", 1)[0] + ".straggler"
        if not others:
            r.check(sid, f"{name} vs node").skip("no other GPU measured it: no node median", observed)
            continue
        if not cuda:
            r.check(sid, f"{name} vs node").skip(
                "CPU run: the workers share one host, no peers to judge", observed
            )
            continue
        med = statistics.median(others)
        gap = 1 - value / med if med > 0 else 0.0
        expected = f">= {_num(med * (1 - spec.straggler_tolerance))} {unit}"
        if gap > spec.straggler_tolerance:
            cause = LIKELY[key]
            tele_key = "h2d" if key == "d2h" else key  # h2d's window holds both directions
            if key in ("hbm", "matmul") and tele_key in (w.get("telemetry") or {}):
                peers = [q for q in workers if q is not w and _suite(q, key)]
                cause = likely_cause(w, tele_key, peers, allowed)
            r.check(sid, f"{name} vs node").fail(
                observed,
                expected,
                f"{g} is {gap:.1%} below the median of the other GPUs, "
                f"{_num(med)} {unit} (tolerance {spec.straggler_tolerance:.0%}); likely cause: {cause}",
            )
        else:
            r.check(sid, f"{name} vs node").ok(
                observed, expected, f"{-gap:+.1%} vs the median of the other GPUs"
            )


def _card(record: dict[str, Any]) -> str | None:
    for w in record.get("workers") or []:
        name = (w.get("result") or {}).get("name") or w.get("name")
        if name:
            return str(name)
    return None


def judge_node(
    rec: Recorder, record: dict[str, Any], references: Sequence[dict[str, Any]], spec: BenchSpec
) -> None:
    """All-reduce / all-gather bus bandwidth and the peer-to-peer matrix, in the ``bench`` group."""
    coll = record.get("collectives")
    if coll is None:
        return
    asked = (record.get("config") or {}).get("suites") or []
    checks = []
    if "allreduce" in asked:
        checks += [
            ("allreduce", "bench.allreduce.busbw", "all-reduce bus bandwidth"),
            ("allgather", "bench.allgather.busbw", "all-gather bus bandwidth"),
        ]
    p2p = "p2p" in asked
    if coll.get("skipped") or coll.get("error"):
        for _, cid, name in checks + ([("p2p", "bench.p2p.matrix", "peer-to-peer matrix")] if p2p else []):
            if coll.get("skipped"):
                rec.check(cid, name).skip(coll["skipped"])
            else:
                rec.check(cid, name).fail(None, None, f"the collective run failed: {coll['error']}")
        return
    n = int(coll.get("world_size") or 0)
    cuda = coll.get("backend") == "nccl"
    card = _card(record)
    for key, cid, name in checks:
        v = coll.get(key) or {}
        if "busbw_gb_s" not in v:
            rec.check(cid, name).fail(None, None, f"no {key} result in the record")
            continue
        bus = float(v["busbw_gb_s"])
        top = max(v.get("sizes") or [{"bytes": 0}], key=lambda s: s.get("busbw_gb_s", 0))
        observed = f"{_num(bus)} GB/s busbw"
        how = (
            f"{n} ranks over {coll.get('backend')}; peak at {_size(top['bytes'])}; "
            f"{v.get('definition', '')}"
            + ("" if v.get("plateau") else "; the largest message did not reach the plateau")
        )
        ref = suite_reference(references, card, key)
        if not cuda:
            rec.check(cid, name).skip(f"CPU run (gloo): the code path and arithmetic only; {how}", observed)
        elif ref is not None and int(ref[1].get("gpus", n)) != n:
            rec.check(cid, name).skip(
                f"the reference is for {ref[1]['gpus']} GPUs, this run has {n}; {how}", observed
            )
        else:
            _against(
                rec,
                cid,
                name,
                bus,
                "GB/s",
                ref,
                spec,
                f"{card!r} x{n} ({key})",
                observed,
                f"an NVLink/NVSwitch link down or degraded, NCCL falling back to PCIe/SHM; {how}",
            )
    if p2p:
        _judge_p2p(rec, coll, spec, cuda)


def _judge_p2p(rec: Recorder, coll: dict[str, Any], spec: BenchSpec, cuda: bool = True) -> None:
    cid, name = "bench.p2p.matrix", "peer-to-peer matrix"
    m = (coll.get("p2p") or {}).get("gb_s")
    labels = coll.get("ranks") or []
    if not m:
        rec.check(cid, name).fail(None, None, "no p2p result in the record")
        return
    links = [
        (f"{labels[i]}->{labels[j]}", float(m[i][j])) for i in range(len(m)) for j in range(len(m)) if i != j
    ]
    med = statistics.median(v for _, v in links)
    floor = med * (1 - spec.straggler_tolerance)  # one slow link is 2 of n(n-1): the median stays put
    slow = [(k, v) for k, v in links if v < floor]
    low = min(links, key=lambda x: x[1])
    observed = f"{len(links)} links, median {_num(med)} GB/s, slowest {low[0]} {_num(low[1])} GB/s"
    if not cuda:
        rec.check(cid, name).skip(
            "CPU run (gloo): the code path only; links between processes on one host are not judged", observed
        )
    elif slow:
        rec.check(cid, name).fail(
            observed,
            f">= {_num(floor)} GB/s per link",
            "slow link(s): "
            + ", ".join(f"{k} {_num(v)} GB/s" for k, v in slow)
            + f" ({spec.straggler_tolerance:.0%} under the median of all links; likely cause: an NVLink down "
            "or a path through PCIe/the CPU: `nvidia-smi topo -m`, `nvidia-smi nvlink -s`)",
        )
    else:
        rec.check(cid, name).ok(
            observed,
            f">= {_num(floor)} GB/s per link",
            f"every link within {spec.straggler_tolerance:.0%} of the median",
        )
