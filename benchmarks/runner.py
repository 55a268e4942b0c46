"""Find the GPUs, start one worker process per GPU (spawn), collect their results, enforce timeouts.

A worker that crashes, runs out of memory or hangs is reported as a failed result for its GPU; the others
run on and report. The NVML sampler runs in this (parent) process while the workers run.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import multiprocessing as mp
import os
import queue as _queue
import signal
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from dlverify.benchmarks.config import NODE_SUITES, PER_GPU_SUITES, BenchConfig
from dlverify.benchmarks.sampler import Sampler
from dlverify.probes import nvml as nvml_probe

RECORD_SCHEMA = "dlverify.bench.run/1"
KILL_GRACE_S = 3.0

Event = dict[str, Any]


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
        return {"slot": self.slot, "index": self.index, "label": self.label, "name": self.name,
                "uuid": self.uuid}


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
                infos.append((i, name if isinstance(name, str) else None,
                              uuid if isinstance(uuid, str) else None))
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
            raise NoGpuError(f"CUDA_VISIBLE_DEVICES names a MIG instance ({entry}): dlverify bench times "
                             "whole GPUs; unset it or name the parent GPU by index or UUID")
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
        raise NoGpuError(f"no GPU to benchmark: CUDA_VISIBLE_DEVICES={visible!r} leaves no GPU of this "
                         f"host visible (NVML indices: {', '.join(map(str, all_idx))})")
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
        return (f"torch/torchvision are not importable ({exc}): install the bench extra, "
                f"`pip install 'dlverify[bench]'`, in this environment ({sys.executable})")
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


@dataclass
class _Run:
    slot: Slot
    proc: Any
    started: float
    phase: str = "start"
    mode: str | None = None
    result: dict[str, Any] | None = None
    error: dict[str, Any] | None = None
    phases: list[tuple[str, str, float]] = field(default_factory=list)


def _kill(proc: Any) -> None:
    """Stop a worker and its process group (inductor's compile workers), TERM then KILL."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        if not proc.is_alive():
            break
        try:
            if os.getpgid(proc.pid) == proc.pid:
                os.killpg(proc.pid, sig)
            else:
                os.kill(proc.pid, sig)
        except (ProcessLookupError, PermissionError):
            pass
        proc.join(KILL_GRACE_S)
    with contextlib.suppress(Exception):
        proc.join(0.1)


def _failure(run: _Run, kind: str, error: str) -> dict[str, Any]:
    return {"kind": kind, "error": error, "phase": run.phase, "mode": run.mode}


def run_workers(slots: Sequence[Slot], cfg: BenchConfig, *, sequential: bool = False,
                timeout_s: float = 600.0, on_event: Callable[[Event], None] | None = None,
                target: Callable[..., None] | None = None) -> list[dict[str, Any]]:
    """Run one worker per slot and return one record per slot, in slot order."""
    from dlverify.benchmarks.worker import worker_main

    ctx = mp.get_context("spawn")
    q = ctx.Queue()
    # all GPUs start each timed phase together, after their own compile and warm-up, so power, heat and the
    # straggler judgement compare like with like; a worker that fails breaks it and the others go on
    barrier = ctx.Barrier(len(slots)) if len(slots) > 1 and not sequential else None
    pending = list(slots)
    running: dict[int, _Run] = {}
    finished: dict[int, dict[str, Any]] = {}
    cfg_dict = cfg.to_dict()
    notify = on_event or (lambda _e: None)

    def handle(msg: Event) -> None:
        run = running.get(msg.get("slot", -1))
        if run is None:
            return
        ev = msg.get("event")
        if ev == "phase":
            run.phase, run.mode = msg.get("phase", run.phase), msg.get("mode", run.mode)
            run.phases.append((str(run.mode), str(run.phase), float(msg["t"])))
        elif ev == "progress":
            run.phase, run.mode = "timed", msg.get("mode", run.mode)
        elif ev == "result":
            run.result = msg["result"]
        elif ev == "error":
            run.error = msg
        notify(msg)

    def drain(block_s: float) -> None:
        deadline = time.monotonic() + block_s
        while True:
            try:
                handle(q.get(timeout=max(0.0, deadline - time.monotonic())))
            except _queue.Empty:
                return

    def finish(run: _Run, failure: dict[str, Any] | None) -> None:
        rec: dict[str, Any] = {**run.slot.to_dict(), "status": "ok" if failure is None else "failed",
                               "elapsed_s": time.monotonic() - run.started,
                               "phases": [list(p) for p in run.phases]}
        if failure is not None:
            rec["failure"] = failure
        if run.result is not None:
            rec["result"] = run.result
        finished[run.slot.slot] = rec
        running.pop(run.slot.slot, None)
        if failure is not None and barrier is not None:
            barrier.abort()
        notify({"slot": run.slot.slot, "event": "finished", "status": rec["status"],
                "failure": failure, "t": time.monotonic()})

    try:
        while pending or running:
            while pending and (not sequential or not running):
                s = pending.pop(0)
                p = ctx.Process(target=target or worker_main, args=(s.to_dict(), cfg_dict, q, barrier),
                                name=f"dlverify-bench-{s.label}", daemon=False)
                p.start()
                running[s.slot] = _Run(s, p, time.monotonic())
                notify({"slot": s.slot, "event": "started", "t": time.monotonic()})
            drain(0.1)
            now = time.monotonic()
            for run in list(running.values()):
                if run.result is not None or run.error is not None:
                    run.proc.join(10)
                    if run.proc.is_alive():
                        _kill(run.proc)
                    if run.error is not None:
                        finish(run, _failure(run, run.error.get("kind", "exception"), run.error["error"])
                               | {"traceback": run.error.get("traceback", "")})
                    else:
                        finish(run, None)
                elif not run.proc.is_alive():
                    drain(0.5)  # its last messages may still be in the pipe
                    if run.result is not None or run.error is not None:
                        continue
                    code = run.proc.exitcode
                    how = (f"killed by signal {signal.Signals(-code).name}" if code is not None and code < 0
                           else f"exited with code {code}")
                    finish(run, _failure(run, "crash", f"worker {how} without reporting a result"))
                elif now - run.started > timeout_s:
                    _kill(run.proc)
                    finish(run, _failure(run, "timeout",
                                         f"no result after {timeout_s:.0f} s (stuck in {run.phase}"
                                         + (f" of {run.mode})" if run.mode else ")")
                                         + "; worker killed"))
    finally:
        for run in list(running.values()):
            _kill(run.proc)
        with contextlib.suppress(Exception):
            q.close()
    return [finished[s.slot] for s in slots if s.slot in finished]


def _timed_window(phases: Sequence[Sequence[Any]], mode: str) -> tuple[float | None, float | None]:
    t0 = next((p[2] for p in phases if p[0] == mode and p[1] == "timed"), None)
    t1 = next((p[2] for p in phases if p[0] == mode and p[1] == "done"), None)
    return t0, t1


def run_bench(slots: Sequence[Slot], cfg: BenchConfig, *, sequential: bool = False,
              timeout_s: float = 600.0, on_event: Callable[[Event], None] | None = None,
              nvml: Any = nvml_probe,
              take_state: Callable[[], dict[str, Any]] | None = None) -> dict[str, Any]:
    """The whole run: sampler around the workers; one JSON-ready record (judged by judge.judge).

    ``take_state`` reads the node's error counters (default on CUDA: :func:`node_state.take`).
    """
    cfg = cfg.resolved()
    started = _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
    t0 = time.monotonic()
    use_nvml = cfg.telemetry and cfg.device == "cuda"
    # error counters and XIDs before and after: anything that moves under load fails the GPU (judge)
    if take_state is None and cfg.device == "cuda":
        from dlverify.benchmarks.node_state import take as take_state
    node_state: dict[str, Any] = (
        {"unavailable": "CPU run: no GPU counters"} if take_state is None else {"before": take_state()}
    )
    if take_state is not None:
        from dlverify.benchmarks.node_state import busy

        for s in slots:  # named before the run starts, not only in the verdict after it
            others = busy(node_state["before"], s.uuid or "")
            if isinstance(others, list) and others:
                print(f"dlverify: {s.label} is busy before the run ({', '.join(others)}): its numbers "
                      "will not be its own", file=sys.stderr)
    sampler = Sampler([(s.slot, s.index) for s in slots], nvml=nvml) if use_nvml else None
    if sampler is not None:
        sampler.start()
    try:
        workers = run_workers(slots, cfg, sequential=sequential, timeout_s=timeout_s, on_event=on_event)
        collectives = None
        if any(s in cfg.suites for s in NODE_SUITES):
            from dlverify.benchmarks.collective import run_collectives

            # a GPU whose worker failed would stall NCCL's set-up until the timeout: leave it out, say so
            ok = {w["slot"] for w in workers if w.get("status") == "ok"}
            collectives = run_collectives([s for s in slots if s.slot in ok], cfg, timeout_s=timeout_s)
            left_out = [s.label for s in slots if s.slot not in ok]
            if left_out:
                collectives["left_out"] = left_out
    finally:
        if sampler is not None:
            sampler.stop()
    if take_state is not None:
        node_state["after"] = take_state()
    for w in workers:
        if sampler is None:
            why = "telemetry off (--no-telemetry)" if cfg.device == "cuda" else "CPU run: no GPU telemetry"
            w["telemetry"] = {"unavailable": why}
            continue
        tele: dict[str, Any] = {"run": sampler.summary(w["slot"])}
        # the ResNet18 modes and the per-GPU suites each have a timed window of their own
        for mode in (*cfg.timed_modes, *(x for x in PER_GPU_SUITES if x in cfg.suites)):
            a, b = _timed_window(w.get("phases", []), mode)
            if a is not None:
                tele[mode] = sampler.summary(w["slot"], a, b)
        w["telemetry"] = tele
    return {
        "schema": RECORD_SCHEMA,
        "started_at": started,
        "wall_s": time.monotonic() - t0,
        "config": cfg.to_dict(),
        "sequential": sequential,
        "timeout_s": timeout_s,
        "sampler": None if sampler is None else {
            "interval_s": sampler.interval_s, "sweeps": sampler.n_sweeps,
            "cpu_ms_per_sweep": sampler.cpu_ms_per_sweep, "error": sampler.error,
        },
        "workers": workers,
        "node_state": node_state,
        **({"collectives": collectives} if collectives is not None else {}),
    }
