"""Run the benchmark: one worker process per GPU (spawn; :mod:`pool`), then the collectives, as named phases.

The GPUs come from :mod:`discover` (re-exported here, where callers have always found them).

A worker that crashes, runs out of memory or hangs is reported as a failed result for its GPU; the others
run on and report. The NVML sampler runs in this (parent) process while the workers run.
"""

from __future__ import annotations

import datetime as _dt
import os
import signal
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import Any

from dlverify.benchmarks.config import NODE_SUITES, PER_GPU_SUITES, BenchConfig
from dlverify.benchmarks.discover import (
    GpuSelectionError,
    NoGpuError,
    Slot,
    cpu_slots,
    discover_gpus,
    parse_gpus,
    torch_cuda_problem,
    torch_problem,
    visible_indices,
)
from dlverify.benchmarks.pool import KILL_GRACE_S, Event, WorkerPool
from dlverify.benchmarks.sampler import Sampler
from dlverify.benchmarks.watchdog import PhaseLimits
from dlverify.probes import nvml as nvml_probe

RECORD_SCHEMA = "dlverify.bench.run/1"
__all__ = ["KILL_GRACE_S", "RECORD_SCHEMA", "Slot", "run_bench", "run_workers"]


__all__ += [
    "GpuSelectionError",
    "NoGpuError",
    "cpu_slots",
    "discover_gpus",
    "parse_gpus",
    "torch_cuda_problem",
    "torch_problem",
    "visible_indices",
]


class Interrupted(KeyboardInterrupt):
    """Ctrl-C, SIGTERM or SIGHUP during a run, carrying the partial record to report before exiting.

    A KeyboardInterrupt, so a caller that does not look for it still stops as on any Ctrl-C.
    """

    def __init__(self, record: dict[str, Any], signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.record = record
        self.signum = signum


def _pool(
    slots: Sequence[Slot],
    cfg: BenchConfig,
    *,
    sequential: bool,
    timeout_s: float,
    on_event: Callable[[Event], None] | None,
    target: Callable[..., None] | None = None,
) -> WorkerPool:
    from dlverify.benchmarks.worker import worker_main

    cfg = with_host_threads(cfg, 1 if sequential else len(slots))
    return WorkerPool(
        slots,
        cfg.to_dict(),
        target or worker_main,
        sequential=sequential,
        timeout_s=timeout_s,
        on_event=on_event,
        limits=PhaseLimits.from_config(cfg),
    )


def run_workers(
    slots: Sequence[Slot],
    cfg: BenchConfig,
    *,
    sequential: bool = False,
    timeout_s: float = 600.0,
    on_event: Callable[[Event], None] | None = None,
    target: Callable[..., None] | None = None,
    keep: Callable[[WorkerPool], None] | None = None,
) -> list[dict[str, Any]]:
    """Run one worker per slot and return one record per slot, in slot order (see :class:`WorkerPool`)."""
    pool = _pool(slots, cfg, sequential=sequential, timeout_s=timeout_s, on_event=on_event, target=target)
    if keep is not None:  # BenchRun keeps it, to close the books on the workers if a signal ends the run
        keep(pool)
    return pool.run()


def with_host_threads(cfg: BenchConfig, workers: int) -> BenchConfig:
    """Split the host's cores between the workers running at once (unless the config says how many).

    Eight workers each starting inductor's default pool (one compile process per core) or, on the CPU,
    torch's one thread per core, oversubscribe the host: compile walls balloon and, on the CPU, spinning
    OpenMP threads starve each other.
    """
    if cfg.host_threads:
        return cfg
    return replace(cfg, host_threads=max(1, (os.cpu_count() or 1) // max(1, workers)))


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
        self.pool: WorkerPool | None = None
        self.interruption: dict[str, Any] | None = None

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
            self.slots,
            self.cfg,
            sequential=self.sequential,
            timeout_s=self.timeout_s,
            on_event=self.on_event,
            keep=self._keep_pool,
        )

    def _keep_pool(self, pool: WorkerPool) -> None:
        self.pool = pool

    def interrupted(self, signum: int) -> None:
        """A signal stopped the run (every worker is already stopped): what finished stays as it is, the
        rest is recorded as interrupted, with the signal and the seconds since the start."""
        why = f"interrupted by {signal.Signals(signum).name} after {time.monotonic() - self.t0:.0f} s"
        self.interruption = {
            "signal": signal.Signals(signum).name,
            "after_s": round(time.monotonic() - self.t0, 1),
        }
        if self.pool is not None and not self.workers:
            self.pool.interrupt(why)
            self.workers = self.pool.records()
        if any(s in self.cfg.suites for s in NODE_SUITES) and self.collectives is None:
            self.collectives = {
                "ranks": [s.label for s in self.slots],
                "world_size": len(self.slots),
                "skipped": why,
            }

    def node_suites(self) -> None:
        if not any(s in self.cfg.suites for s in NODE_SUITES):
            return
        from dlverify.benchmarks.collective import run_collectives

        # a GPU whose worker failed would stall NCCL's set-up until the timeout: leave it out, say so
        ok = {w["slot"] for w in self.workers if w.get("status") == "ok"}
        self.collectives = run_collectives(
            [s for s in self.slots if s.slot in ok],
            self.cfg,
            timeout_s=min(self.timeout_s, PhaseLimits.from_config(self.cfg).collective),
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
            for m in ((w.get("result") or {}).get("modes") or {}).values():  # --soak: each window's own
                for win in (m.get("soak") or {}).get("windows") or []:
                    win["telemetry"] = self.sampler.summary(w["slot"], win["t_start"], win["t_end"])

    def record(self) -> dict[str, Any]:
        sampler = self.sampler
        return {
            "schema": RECORD_SCHEMA,
            "started_at": self.started,
            "wall_s": time.monotonic() - self.t0,
            "config": self.cfg.to_dict(),
            "sequential": self.sequential,
            "timeout_s": self.timeout_s,
            "watchdog_s": PhaseLimits.from_config(self.cfg).to_dict(),
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
            **({"interrupted": self.interruption} if self.interruption is not None else {}),
        }

    def run(self) -> dict[str, Any]:
        self.node_state_before()
        if self.sampler is not None:
            self.sampler.start()
        signum = 0
        try:
            self.per_gpu()
            self.node_suites()
        except KeyboardInterrupt as exc:  # Ctrl-C; SIGTERM/SIGHUP arrive as cli.Terminated, a subclass
            signum = int(getattr(exc, "signum", signal.SIGINT))
            self.interrupted(signum)
        finally:
            if self.sampler is not None:
                self.sampler.stop()
        self.node_state_after()
        self.telemetry()
        if signum:
            raise Interrupted(self.record(), signum)
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
