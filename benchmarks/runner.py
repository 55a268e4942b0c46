"""Find the GPUs, start one worker process per GPU (spawn), collect their results, enforce timeouts.

A worker that crashes, runs out of memory or hangs is reported as a failed result for its GPU; the others
run on and report. The NVML sampler runs in this (parent) process while the workers run.
"""

from __future__ import annotations

import datetime as _dt
import os
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from dlverify.benchmarks.config import NODE_SUITES, PER_GPU_SUITES, BenchConfig
from dlverify.benchmarks.pool import KILL_GRACE_S, Event, WorkerPool
from dlverify.benchmarks.sampler import Sampler
from dlverify.probes import nvml as nvml_probe

RECORD_SCHEMA = "dlverify.bench.run/1"
__all__ = ["KILL_GRACE_S", "RECORD_SCHEMA", "Slot", "run_bench", "run_workers"]


class NoGpuError(RuntimeError):
    """Nothing to benchmark on: no NVML, no GPUs, or torch without CUDA."""


class GpuSelectionError(ValueError):
    """--gpus names GPUs this host does not have, or is malformed."""


@dataclass(frozen=True)
class Slot:
    slot: int  # position in this run, and the worker's id
    index: int  # NVML index (nvidia-smi order); for CPU runs, just the worker number
    label: str  # report group: gpu0.. / cpu0..
    name: str | None = None
    uuid: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "slot": self.slot,
            "index": self.index,
            "label": self.label,
            "name": self.name,
            "uuid": self.uuid,
        }


def parse_gpus(text: str, available: Sequence[int]) -> list[int]:
    if text.strip().lower() == "all":
        return list(available)
    out: list[int] = []
    for part in text.split(","):
        part = part.strip()
        if not part.isdigit():
            raise GpuSelectionError(f"--gpus: {part!r} is not a GPU index (use 'all' or e.g. '0,2')")
        i = int(part)
        if i not in available:
            have = f"{available[0]}-{available[-1]}" if available else "none"
            raise GpuSelectionError(f"--gpus: there is no GPU {i} on this host (indices: {have})")
        if i not in out:
            out.append(i)
    if not out:
        raise GpuSelectionError("--gpus: no GPU selected")
    return out


def discover_gpus(gpus: str, nvml: Any = nvml_probe) -> list[Slot]:
    """GPUs by NVML index, as nvidia-smi numbers them; raises NoGpuError with the reason."""
    try:
        with nvml.session() as nv:
            count = nvml.query(nv.nvmlDeviceGetCount)
            if not isinstance(count, int):
                raise NoGpuError(f"NVML could not count GPUs: {getattr(count, 'reason', count)}")
            infos = []
            for i in range(count):
                h = nvml.query(nv.nvmlDeviceGetHandleByIndex, i)
                name = nvml.query(nv.nvmlDeviceGetName, h)
                uuid = nvml.query(nv.nvmlDeviceGetUUID, h)
                infos.append(
                    (i, name if isinstance(name, str) else None, uuid if isinstance(uuid, str) else None)
                )
    except nvml_probe.NvmlInitError as exc:
        raise NoGpuError(f"no GPU to benchmark: {exc}") from exc
    if not infos:
        raise NoGpuError("no GPU to benchmark: NVML works but reports 0 GPUs")
    chosen = parse_gpus(gpus, visible_indices(infos, os.environ.get("CUDA_VISIBLE_DEVICES")))
    by_index = {i: (n, u) for i, n, u in infos}
    return [Slot(k, i, f"gpu{i}", *by_index[i]) for k, i in enumerate(chosen)]


def visible_indices(infos: Sequence[tuple[int, str | None, str | None]], visible: str | None) -> list[int]:
    """The NVML indices an inherited CUDA_VISIBLE_DEVICES leaves to this run (Slurm, a container, a user).

    Unset: every GPU. Entries are NVML indices (nvidia-smi numbers; Slurm's gres numbering) or GPU UUIDs
    (a prefix is enough, as CUDA accepts). CUDA stops at the first entry it cannot resolve; so does this.
    MIG instances are refused by name: the bench times whole GPUs.
    """
    all_idx = [i for i, _, _ in infos]
    if visible is None:
        return all_idx
    out: list[int] = []
    for raw in visible.split(","):
        entry = raw.strip()
        if entry.startswith("MIG-"):
            raise NoGpuError(
                f"CUDA_VISIBLE_DEVICES names a MIG instance ({entry}): dlverify bench times "
                "whole GPUs; unset it or name the parent GPU by index or UUID"
            )
        if entry.isdigit() and int(entry) in all_idx:
            i = int(entry)
        else:
            hits = [i for i, _, u in infos if entry.startswith("GPU-") and u and u.startswith(entry)]
            if len(hits) != 1:
                break  # as CUDA does: the rest of the list is ignored
            i = hits[0]
        if i not in out:
            out.append(i)
    if not out:
        raise NoGpuError(
            f"no GPU to benchmark: CUDA_VISIBLE_DEVICES={visible!r} leaves no GPU of this "
            f"host visible (NVML indices: {', '.join(map(str, all_idx))})"
        )
    return out


def cpu_slots(gpus: str) -> list[Slot]:
    """--device cpu: one worker, or one per listed number (they share the CPU; for tests and smoke runs)."""
    idx = [0] if gpus.strip().lower() == "all" else parse_gpus(gpus, list(range(64)))
    return [Slot(k, i, f"cpu{i}", "cpu") for k, i in enumerate(idx)]


def torch_problem() -> str | None:
    """Why the workers could not import torch and torchvision here, or None: said before any is started."""
    try:
        import torch  # noqa: F401
        import torchvision  # noqa: F401
    except ImportError as exc:
        return (
            f"torch/torchvision are not importable ({exc}): install the bench extra, "
            f"`pip install 'dlverify[bench]'`, in this environment ({sys.executable})"
        )
    return None


def torch_cuda_problem() -> str | None:
    """Why this process's torch cannot use CUDA, or None. Imports torch (never initialises a GPU)."""
    missing = torch_problem()
    if missing:
        return missing
    import torch

    if not torch.cuda.is_available():
        build = torch.version.cuda or "CPU-only build"
        return f"torch {torch.__version__} ({build}) cannot use CUDA: torch.cuda.is_available() is False"
    return None


def run_workers(
    slots: Sequence[Slot],
    cfg: BenchConfig,
    *,
    sequential: bool = False,
    timeout_s: float = 600.0,
    on_event: Callable[[Event], None] | None = None,
    target: Callable[..., None] | None = None,
) -> list[dict[str, Any]]:
    """Run one worker per slot and return one record per slot, in slot order (see :class:`WorkerPool`)."""
    from dlverify.benchmarks.worker import worker_main

    pool = WorkerPool(
        slots,
        cfg.to_dict(),
        target or worker_main,
        sequential=sequential,
        timeout_s=timeout_s,
        on_event=on_event,
    )
    return pool.run()


def _timed_window(phases: Sequence[Sequence[Any]], mode: str) -> tuple[float | None, float | None]:
    t0 = next((p[2] for p in phases if p[0] == mode and p[1] == "timed"), None)
    t1 = next((p[2] for p in phases if p[0] == mode and p[1] == "done"), None)
    return t0, t1


class BenchRun:
    """One whole run as its named phases, in order: node state before, the per-GPU workers and the
    collectives (under the NVML sampler), node state after, telemetry per timed window, the record.

    Each phase writes only its own part of the record, so what a phase left is visible by name.
    """

    def __init__(
        self,
        slots: Sequence[Slot],
        cfg: BenchConfig,
        *,
        sequential: bool = False,
        timeout_s: float = 600.0,
        on_event: Callable[[Event], None] | None = None,
        nvml: Any = nvml_probe,
        take_state: Callable[[], dict[str, Any]] | None = None,
    ) -> None:
        self.slots = list(slots)
        self.cfg = cfg.resolved()
        self.sequential = sequential
        self.timeout_s = timeout_s
        self.on_event = on_event
        self.started = _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
        self.t0 = time.monotonic()
        # error counters and XIDs before and after: anything that moves under load fails the GPU (judge)
        if take_state is None and self.cfg.device == "cuda":
            from dlverify.benchmarks.node_state import take as take_state
        self.take_state = take_state
        use_nvml = self.cfg.telemetry and self.cfg.device == "cuda"
        self.sampler = Sampler([(s.slot, s.index) for s in slots], nvml=nvml) if use_nvml else None
        self.node_state: dict[str, Any] = {"unavailable": "CPU run: no GPU counters"}
        self.workers: list[dict[str, Any]] = []
        self.collectives: dict[str, Any] | None = None

    def node_state_before(self) -> None:
        if self.take_state is None:
            return
        from dlverify.benchmarks.node_state import busy

        self.node_state = {"before": self.take_state()}
        for s in self.slots:  # named before the run starts, not only in the verdict after it
            others = busy(self.node_state["before"], s.uuid or "")
            if isinstance(others, list) and others:
                print(
                    f"dlverify: {s.label} is busy before the run ({', '.join(others)}): its numbers "
                    "will not be its own",
                    file=sys.stderr,
                )

    def per_gpu(self) -> None:
        self.workers = run_workers(
            self.slots, self.cfg, sequential=self.sequential, timeout_s=self.timeout_s, on_event=self.on_event
        )

    def node_suites(self) -> None:
        if not any(s in self.cfg.suites for s in NODE_SUITES):
            return
        from dlverify.benchmarks.collective import run_collectives

        # a GPU whose worker failed would stall NCCL's set-up until the timeout: leave it out, say so
        ok = {w["slot"] for w in self.workers if w.get("status") == "ok"}
        self.collectives = run_collectives(
            [s for s in self.slots if s.slot in ok], self.cfg, timeout_s=self.timeout_s
        )
        left_out = [s.label for s in self.slots if s.slot not in ok]
        if left_out:
            self.collectives["left_out"] = left_out

    def node_state_after(self) -> None:
        if self.take_state is not None:
            self.node_state["after"] = self.take_state()

    def telemetry(self) -> None:
        for w in self.workers:
            if self.sampler is None:
                why = (
                    "telemetry off (--no-telemetry)"
                    if self.cfg.device == "cuda"
                    else "CPU run: no GPU telemetry"
                )
                w["telemetry"] = {"unavailable": why}
                continue
            tele: dict[str, Any] = {"run": self.sampler.summary(w["slot"])}
            # the ResNet18 modes and the per-GPU suites each have a timed window of their own
            for mode in (*self.cfg.timed_modes, *(x for x in PER_GPU_SUITES if x in self.cfg.suites)):
                a, b = _timed_window(w.get("phases", []), mode)
                if a is not None:
                    tele[mode] = self.sampler.summary(w["slot"], a, b)
            w["telemetry"] = tele

    def record(self) -> dict[str, Any]:
        sampler = self.sampler
        return {
            "schema": RECORD_SCHEMA,
            "started_at": self.started,
            "wall_s": time.monotonic() - self.t0,
            "config": self.cfg.to_dict(),
            "sequential": self.sequential,
            "timeout_s": self.timeout_s,
            "sampler": None
            if sampler is None
            else {
                "interval_s": sampler.interval_s,
                "sweeps": sampler.n_sweeps,
                "cpu_ms_per_sweep": sampler.cpu_ms_per_sweep,
                "error": sampler.error,
            },
            "workers": self.workers,
            "node_state": self.node_state,
            **({"collectives": self.collectives} if self.collectives is not None else {}),
        }

    def run(self) -> dict[str, Any]:
        self.node_state_before()
        if self.sampler is not None:
            self.sampler.start()
        try:
            self.per_gpu()
            self.node_suites()
        finally:
            if self.sampler is not None:
                self.sampler.stop()
        self.node_state_after()
        self.telemetry()
        return self.record()


def run_bench(
    slots: Sequence[Slot],
    cfg: BenchConfig,
    *,
    sequential: bool = False,
    timeout_s: float = 600.0,
    on_event: Callable[[Event], None] | None = None,
    nvml: Any = nvml_probe,
    take_state: Callable[[], dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """The whole run (:class:`BenchRun`); one JSON-ready record (judged by judge.judge).

    ``take_state`` reads the node's error counters (default on CUDA: :func:`node_state.take`).
    """
    return BenchRun(
        slots,
        cfg,
        sequential=sequential,
        timeout_s=timeout_s,
        on_event=on_event,
        nvml=nvml,
        take_state=take_state,
    ).run()
