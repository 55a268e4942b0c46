"""What one host's documents say, in the few terms a fleet is compared by. Pure and defensive: a value of
an unexpected type is treated as missing (the readers have refused anything that is not the right
document already)."""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dlverify.fleet.reader import HostData, read_host

# the versions that hosts of one group must share, and where the snapshot holds them
VERSION_FIELDS = ("driver", "cuda", "cudnn", "torch", "vbios", "kernel")


def _num(v: Any) -> float | None:
    return float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else None


def _str(v: Any) -> str | None:
    return v if isinstance(v, str) and v else None


def _get(doc: Any, *keys: str) -> Any:
    for k in keys:
        if not isinstance(doc, dict):
            return None
        doc = doc.get(k)
    return doc


@dataclass
class GpuRun:
    """One GPU's throughput in one bench mode."""

    host: str
    gpu: str  # "gpu3"
    model: str
    mode: str  # train | infer
    img_s: float
    config: tuple[str, int, int]  # precision, batch, image size: only equal configs are compared
    worker: dict[str, Any]  # its label and telemetry: what explains a slow GPU


@dataclass
class HostFacts:
    """One host reduced to what the fleet is judged by (small: made in worker processes, sent back)."""

    name: str
    path: Path = Path()
    unreachable: str | None = None
    problems: list[str] = field(default_factory=list)
    has_check: bool = False
    has_snapshot: bool = False
    has_bench: bool = False
    status: dict[str, Any] = field(default_factory=dict)  # the exit codes the playbook recorded
    gpu_model: str | None = None
    gpu_count: int | None = None
    spec: str | None = None
    versions: dict[str, str] = field(default_factory=dict)
    failed: list[dict[str, Any]] = field(default_factory=list)  # failed check and bench results
    xid: list[dict[str, Any]] = field(default_factory=list)
    ecc: dict[str, tuple[int, int]] = field(default_factory=dict)  # gpuN -> (volatile, aggregate) uncorr.
    runs: list[GpuRun] = field(default_factory=list)


def _versions(snap: dict[str, Any]) -> dict[str, str]:
    nvml, sw, host = snap.get("nvml") or {}, snap.get("software") or {}, snap.get("host") or {}
    env = _get(sw, "python_env") or {}
    cudnn = _get(sw, "cudnn", "version") or _get(env, "torch_cudnn")
    gpus = [g for g in nvml.get("gpus") or [] if isinstance(g, dict)]
    vbios = sorted({v for g in gpus if (v := _str(g.get("vbios_version")))})
    found = {
        "driver": _str(nvml.get("driver_version")),
        "cuda": _str(_get(sw, "cuda_toolkit", "nvcc", "version")) or _str(env.get("torch_cuda")),
        "cudnn": str(cudnn) if isinstance(cudnn, (str, int)) and not isinstance(cudnn, bool) else None,
        "torch": _str(env.get("torch")),
        "vbios": ", ".join(vbios) or None,
        "kernel": _str(host.get("kernel")),
    }
    return {k: v for k, v in found.items() if v}


def _gpus(snap: dict[str, Any]) -> tuple[str | None, int | None, dict[str, tuple[int, int]]]:
    gpus = [g for g in _get(snap, "nvml", "gpus") or [] if isinstance(g, dict)]
    names = Counter(n for g in gpus if (n := _str(g.get("name"))))
    ecc = {}
    for i, g in enumerate(gpus):
        vol, agg = _num(g.get("ecc_volatile_uncorrected")), _num(g.get("ecc_aggregate_uncorrected"))
        if vol or agg:
            ecc[f"gpu{g.get('index', i)}"] = (int(vol or 0), int(agg or 0))
    model = names.most_common(1)[0][0] if names else None
    return model, (len(gpus) if isinstance(_get(snap, "nvml", "gpus"), list) else None), ecc


def _mode_telemetry(tele: Any, mode: str) -> Any:
    """Only the part of a worker's telemetry that explains this mode (what ``likely_cause`` reads: the
    mode's window, else the whole run): every run travels back from a worker process, pickled."""
    if not isinstance(tele, dict):
        return tele
    part = tele.get(mode)
    if isinstance(part, dict) and part.get("samples"):
        return {mode: part}
    return {"run": tele["run"]} if "run" in tele else tele


def _runs(host: str, bench: dict[str, Any]) -> list[GpuRun]:
    runs = []
    for w in _get(bench, "meta", "bench", "workers") or []:
        res = w.get("result") if isinstance(w, dict) else None
        model = _str(_get(res, "name")) or _str(_get(w, "name"))
        for mode, r in (_get(res, "modes") or {}).items():
            img_s = _num(_get(r, "img_s"))
            if model is None or img_s is None or not (_get(r, "guard") or {}).get("ok", True):
                continue
            cfg = (
                str(r.get("precision")),
                int(_num(r.get("batch_size")) or 0),
                int(_num(r.get("image_size")) or 0),
            )
            label = str(w.get("label") or f"gpu{w.get('index')}")
            slim = {"label": label, "telemetry": _mode_telemetry(w.get("telemetry"), mode)}
            runs.append(GpuRun(host, label, model, mode, img_s, cfg, slim))
    return runs


def host_facts(h: HostData) -> HostFacts:
    f = HostFacts(
        h.name,
        h.path,
        h.unreachable,
        h.problems,
        h.check is not None,
        h.snapshot is not None,
        h.bench is not None,
        h.status or {},
    )
    if h.unreachable is not None:
        return f
    if h.snapshot is not None:
        f.versions = _versions(h.snapshot)
        f.gpu_model, f.gpu_count, f.ecc = _gpus(h.snapshot)
        f.xid = [e for e in _get(h.snapshot, "host", "xid", "events") or [] if isinstance(e, dict)]
    for doc in (h.check, h.bench):
        if doc is not None:
            f.failed += [r for r in doc["results"] if r["status"] == "fail"]
    if h.check is not None:
        f.spec = _str(_get(h.check, "meta", "spec"))
        if f.gpu_model is None:  # no snapshot: the model the check observed
            model = next((r for r in h.check["results"] if r["id"] == "gpu.model"), None)
            f.gpu_model = _str(_get(model, "observed"))
    if h.bench is not None:
        f.runs = _runs(h.name, h.bench)
        if f.gpu_model is None and f.runs:
            f.gpu_model = f.runs[0].model
    return f


def load_host(path: Path) -> HostFacts:
    return host_facts(read_host(path))


def load_hosts(paths: Sequence[Path], jobs: int | None = None) -> list[HostFacts]:
    """Read and reduce every host folder, in parallel where there are many (parsing JSON is the cost)."""
    jobs = jobs or min(os.cpu_count() or 1, 8)
    if jobs <= 1 or len(paths) < 100:
        return [load_host(p) for p in paths]
    with ProcessPoolExecutor(jobs) as pool:
        return list(pool.map(load_host, paths, chunksize=max(1, len(paths) // (jobs * 4))))
