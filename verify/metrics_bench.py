"""Render a bench run record (``dlverify.bench.run/1``) and its judgement as Prometheus metrics, for
node_exporter's textfile collector: `dlverify bench --format prometheus -o DIR/dlverify-bench.prom`.

Per GPU, labelled ``gpu`` (the NVML index) and ``UUID`` exactly as dcgm-exporter labels its series, so a
throughput joins its GPU's telemetry with ``on(UUID)`` (the two exporters' ``instance`` labels differ)::

    dlverify_bench_images_per_second{gpu="0",UUID="GPU-...",mode="train",precision="bf16",batch_size="512"}

The families are named ``dlverify_bench_*`` so that this file and `dlverify check`'s ``dlverify.prom`` sit in
one textfile directory without defining a family twice. Only numbers the bench stands behind are exported:
a mode whose correctness guard failed, or a crashed worker, has no throughput series (its status says why).
The grammar is :mod:`dlverify.metrics`'s, shared.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Mapping, Sequence
from typing import Any

from dlverify import __version__
from dlverify.metrics import Sample, family, status_samples
from dlverify.results import CheckResult, exit_code

# record key of a per-GPU suite -> (family, extra labels)
PER_GPU_SUITES: dict[str, tuple[str, dict[str, str]]] = {
    "h2d": ("dlverify_bench_bandwidth_gigabytes_per_second", {"suite": "h2d"}),
    "d2h": ("dlverify_bench_bandwidth_gigabytes_per_second", {"suite": "d2h"}),
    "hbm": ("dlverify_bench_bandwidth_gigabytes_per_second", {"suite": "hbm"}),
    "matmul": ("dlverify_bench_matmul_teraflops", {}),
}
HELP = {
    "dlverify_bench_images_per_second": "ResNet18 images/s per GPU (median over the timed windows) in the "
    "last dlverify bench.",
    "dlverify_bench_bandwidth_gigabytes_per_second": "Copy bandwidth per GPU in the last dlverify bench, "
    "GB/s (suite h2d: pinned host to device, d2h: device to host, hbm: device memory copy, read + write).",
    "dlverify_bench_matmul_teraflops": "Dense bf16 matmul TFLOP/s per GPU in the last dlverify bench.",
    "dlverify_bench_bus_bandwidth_gigabytes_per_second": "Collective bus bandwidth over the node's GPUs "
    "(nccl-tests' busbw) in the last dlverify bench, GB/s.",
}


def _num(v: Any) -> float | None:
    if isinstance(v, bool) or not isinstance(v, int | float):
        return None
    return float(v) if v == v and abs(v) != float("inf") else None


def _dict(v: Any) -> dict[str, Any]:
    return v if isinstance(v, dict) else {}


def _gpu_labels(worker: Mapping[str, Any]) -> dict[str, Any]:
    index = worker.get("index")
    return {
        "gpu": str(index) if isinstance(index, int) and not isinstance(index, bool) else None,
        "UUID": worker.get("uuid") if isinstance(worker.get("uuid"), str) else None,
    }


def _finished_at(record: Mapping[str, Any]) -> float | None:
    """Unix time the run ended: ``started_at`` (ISO 8601) + ``wall_s``."""
    try:
        start = dt.datetime.fromisoformat(str(record.get("started_at"))).timestamp()
    except ValueError:
        return None
    return start + (_num(record.get("wall_s")) or 0.0)


def bench_samples(record: Mapping[str, Any]) -> dict[str, list[Sample]]:
    """family name -> samples of every measured value in the record."""
    out: dict[str, list[Sample]] = {name: [] for name in HELP}
    for worker in record.get("workers") or []:
        if not isinstance(worker, dict) or worker.get("status") != "ok":
            continue
        res = _dict(worker.get("result"))
        gpu = _gpu_labels(worker)
        for mode, m in _dict(res.get("modes")).items():
            m = _dict(m)
            img_s = _num(m.get("img_s"))
            if img_s is None or not _dict(m.get("guard")).get("ok", True):
                continue
            labels = {**gpu, "mode": mode, "precision": m.get("precision"), "batch_size": m.get("batch_size")}
            out["dlverify_bench_images_per_second"].append((labels, img_s))
        for key, v in _dict(res.get("suites")).items():
            value = _num(_dict(v).get("value"))
            if key in PER_GPU_SUITES and value is not None:
                name, extra = PER_GPU_SUITES[key]
                out[name].append(({**gpu, **extra}, value))
    coll = _dict(record.get("collectives"))
    for key in ("allreduce", "allgather"):
        bus = _num(_dict(coll.get(key)).get("busbw_gb_s"))
        if bus is not None:
            labels = {"collective": key, "backend": coll.get("backend"), "gpus": coll.get("world_size")}
            out["dlverify_bench_bus_bandwidth_gigabytes_per_second"].append((labels, bus))
    return out


def render_bench_prometheus(
    results: Sequence[CheckResult], record: Mapping[str, Any], *, now: float | None = None
) -> str:
    """The metrics of one bench run: measured values, each check's status, when it ran."""
    uuids = {
        g: w["uuid"]
        for w in record.get("workers") or []
        if isinstance(w, dict) and isinstance(w.get("uuid"), str) and (g := _gpu_labels(w)["gpu"]) is not None
    }
    lines: list[str] = []
    for name, samples in bench_samples(record).items():
        if samples:
            family(lines, name, HELP[name], samples)
    family(
        lines,
        "dlverify_bench_check_status",
        "dlverify bench result per check and GPU: 0 pass, 1 warn, 2 fail, 3 skip.",
        status_samples(results, uuids, uuid_label="UUID"),
    )
    family(
        lines,
        "dlverify_bench_exit_code",
        "Exit code of the last dlverify bench: 0 no check failed, 1 a check failed.",
        [({}, exit_code(results))],
    )
    finished = _finished_at(record)
    family(
        lines,
        "dlverify_bench_last_run_timestamp_seconds",
        "Unix time the last dlverify bench run finished (a replayed record: when it was recorded).",
        [({}, round(finished if finished is not None else (time.time() if now is None else now), 3))],
    )
    if _num(record.get("wall_s")) is not None:
        family(
            lines,
            "dlverify_bench_duration_seconds",
            "Seconds the last dlverify bench run took.",
            [({}, float(record["wall_s"]))],
        )
    family(
        lines,
        "dlverify_bench_info",
        "The last dlverify bench's dlverify version, torch and device; always 1.",
        [
            (
                {
                    "version": __version__,
                    "torch": _torch(record),
                    "device": _dict(record.get("config")).get("device"),
                },
                1,
            )
        ],
    )
    return "\n".join(lines) + "\n"


def _torch(record: Mapping[str, Any]) -> str | None:
    for w in record.get("workers") or []:
        torch = _dict(_dict(_dict(w).get("result")).get("software")).get("torch")
        if isinstance(torch, str):
            return torch
    return None
