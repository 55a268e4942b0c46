"""GPU telemetry during the benchmark: a thread that reads every benchmarked GPU through NVML (~10 Hz).

All NVML access goes through :mod:`dlverify.probes.nvml` (``session()`` and ``query()``), so a missing
value becomes an ``Unavailable`` reason, never a crash. The sampler times its own CPU cost (thread CPU time
per sample) so its overhead on the benchmark can be stated, and it can be switched off (``--no-telemetry``)
to measure the effect on throughput directly.
"""

from __future__ import annotations

import statistics
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from dlverify import clocks
from dlverify.probes import nvml as nvml_probe

# clocks-event reason bits (nvml.h nvmlClocksEventReason*), named as ChecksSpec.allowed_clock_event_reasons;
# the table is dlverify.clocks
REASON_BITS: dict[str, int] = {r.name: r.bit for r in clocks.REASONS}

METRICS = ("sm_clock_mhz", "mem_clock_mhz", "power_w", "temperature_c", "util_gpu_pct", "util_mem_pct")


def decode_reasons(mask: int) -> list[str]:
    return [name for name, bit in REASON_BITS.items() if mask & bit]


@dataclass
class Sample:
    t: float  # time.monotonic(), comparable with the workers' phase events
    values: dict[str, float | None]
    reasons: int | None


@dataclass
class _Gpu:
    slot: int
    index: int
    handle: Any = None
    samples: list[Sample] = field(default_factory=list)
    static: dict[str, Any] = field(default_factory=dict)
    unavailable: dict[str, str] = field(default_factory=dict)


class Sampler:
    """``with Sampler(slots) as s: ...`` then ``s.summary(slot, t0, t1)``.

    slots: ``(slot, nvml_index)`` pairs. nvml: a module with ``session()`` and ``query()`` (the real
    probe layer by default; tests pass a labelled fake).
    """

    def __init__(
        self, slots: Sequence[tuple[int, int]], interval_s: float = 0.1, nvml: Any = nvml_probe
    ) -> None:
        self.interval_s = interval_s
        self._nvml = nvml
        self._gpus = [_Gpu(slot, index) for slot, index in slots]
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._session: Any = None
        self.error: str | None = None  # why there is no telemetry at all
        self.cpu_s = 0.0  # the sampler thread's own CPU time while sampling
        self.n_sweeps = 0

    # -- lifecycle ------------------------------------------------------------------------------------
    def start(self) -> Sampler:
        try:
            self._session = self._nvml.session()
            nv = self._session.__enter__()
        except Exception as exc:  # NvmlInitError or a broken binding: bench runs on, without telemetry
            self.error = str(exc) or type(exc).__name__
            self._session = None
            return self
        self._nv = nv
        q = self._nvml.query
        for g in self._gpus:
            g.handle = q(nv.nvmlDeviceGetHandleByIndex, g.index)
            if isinstance(g.handle, nvml_probe.Unavailable):
                g.unavailable["handle"] = g.handle.reason
                g.handle = None
                continue
            limit = q(nv.nvmlDeviceGetEnforcedPowerLimit, g.handle)
            sm_max = q(nv.nvmlDeviceGetMaxClockInfo, g.handle, nv.NVML_CLOCK_SM)
            g.static = {
                "power_limit_w": limit / 1000.0 if isinstance(limit, (int, float)) else None,
                "sm_clock_max_mhz": sm_max if isinstance(sm_max, (int, float)) else None,
            }
        self._thread = threading.Thread(target=self._loop, name="dlverify-nvml-sampler", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        if self._session is not None:
            self._session.__exit__(None, None, None)
            self._session = None

    def __enter__(self) -> Sampler:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- sampling -------------------------------------------------------------------------------------
    def _loop(self) -> None:
        cpu0 = time.thread_time()
        next_t = time.monotonic()
        while not self._stop.is_set():
            self.sample_once()
            self.cpu_s = time.thread_time() - cpu0
            next_t += self.interval_s
            delay = next_t - time.monotonic()
            if delay < 0:  # fell behind (slow NVML): do not try to catch up in a burst
                next_t = time.monotonic()
                delay = 0
            self._stop.wait(delay)

    def sample_once(self) -> None:
        nv, q = self._nv, self._nvml.query
        for g in self._gpus:
            if g.handle is None:
                continue
            h = g.handle
            vals: dict[str, Any] = {
                "sm_clock_mhz": q(nv.nvmlDeviceGetClockInfo, h, nv.NVML_CLOCK_SM),
                "mem_clock_mhz": q(nv.nvmlDeviceGetClockInfo, h, nv.NVML_CLOCK_MEM),
                "power_w": q(nv.nvmlDeviceGetPowerUsage, h),
                "temperature_c": q(nv.nvmlDeviceGetTemperature, h, nv.NVML_TEMPERATURE_GPU),
            }
            util = q(nv.nvmlDeviceGetUtilizationRates, h)
            vals["util_gpu_pct"] = getattr(util, "gpu", util)
            vals["util_mem_pct"] = getattr(util, "memory", util)
            reasons = q(nv.nvmlDeviceGetCurrentClocksEventReasons, h)
            if isinstance(reasons, nvml_probe.Unavailable):  # older drivers: the pre-12.2 name
                reasons = q(nv.nvmlDeviceGetCurrentClocksThrottleReasons, h)
            clean: dict[str, float | None] = {}
            for k, v in vals.items():
                if isinstance(v, (int, float)) and not isinstance(v, bool):
                    clean[k] = v / 1000.0 if k == "power_w" else float(v)
                else:
                    clean[k] = None
                    g.unavailable.setdefault(k, getattr(v, "reason", "no value"))
            if not isinstance(reasons, int):
                g.unavailable.setdefault("clocks_event_reasons", getattr(reasons, "reason", "no value"))
                reasons = None
            g.samples.append(Sample(time.monotonic(), clean, reasons))
        self.n_sweeps += 1

    # -- summaries ------------------------------------------------------------------------------------
    @property
    def cpu_ms_per_sweep(self) -> float | None:
        return 1e3 * self.cpu_s / self.n_sweeps if self.n_sweeps else None

    def summary(self, slot: int, t0: float | None = None, t1: float | None = None) -> dict[str, Any]:
        """min/median/max of each metric and the share of samples under each clocks-event reason,
        over the samples in [t0, t1] (the timed phase of a mode), or all of them."""
        if self.error:
            return {"unavailable": f"no telemetry: {self.error}"}
        g = next((g for g in self._gpus if g.slot == slot), None)
        if g is None:
            return {"unavailable": "GPU not sampled"}
        return summarize(g.samples, g.static, g.unavailable, t0, t1, self.cpu_ms_per_sweep, self.interval_s)


def summarize(
    samples: Sequence[Sample],
    static: dict[str, Any],
    unavailable: dict[str, str],
    t0: float | None = None,
    t1: float | None = None,
    cpu_ms_per_sweep: float | None = None,
    interval_s: float = 0.1,
) -> dict[str, Any]:
    sel = [s for s in samples if (t0 is None or s.t >= t0) and (t1 is None or s.t <= t1)]
    out: dict[str, Any] = {"samples": len(sel), "interval_s": interval_s, **static}
    if cpu_ms_per_sweep is not None:
        out["sampler_cpu_ms_per_sweep"] = round(cpu_ms_per_sweep, 4)
    if not sel:
        out["unavailable"] = "no samples in this interval"
        return out
    for m in METRICS:
        vals: list[float] = [v for s in sel if (v := s.values.get(m)) is not None]
        if vals:
            out[m] = {"min": min(vals), "median": statistics.median(vals), "max": max(vals)}
    with_reasons = [s.reasons for s in sel if s.reasons is not None]
    if with_reasons:
        out["reasons"] = {
            name: round(sum(1 for r in with_reasons if r & bit) / len(with_reasons), 4)
            for name, bit in REASON_BITS.items()
            if any(r & bit for r in with_reasons)
        }
    if unavailable:
        out["unavailable_metrics"] = dict(unavailable)
    return out
