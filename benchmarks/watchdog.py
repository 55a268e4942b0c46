"""How long each phase of a worker may take before it counts as hung: deadlines from the run's own settings.

One long timeout cannot tell a compile that is slow from a CUDA call that never returns: a 10 s measurement
would be allowed 600 s. So each phase a worker reports (its ``phase`` events) gets a limit derived from what
that phase does with this run's settings (duration, window, copy sizes, matmul side, whether it compiles),
plus ``watchdog_slack_s``; a worker that stays in one phase longer is killed and named, with the phase and
the seconds waited. The timed phases (ResNet18's windows, the soak's) report after every window, so there
the limit is on the time since the last window, not on the phase: a 10-minute soak is not one long phase.
``--timeout`` stays the cap on a worker's whole life.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from dlverify.benchmarks.config import PER_GPU_SUITES, BenchConfig

PHASES = ("init", "compile", "warmup", "sync", "measure", "suites", "collective")
# spawn, import torch and torchvision, create the CUDA context: no setting changes it
INIT_S = {"cuda": 120.0, "cpu": 60.0}
# build the model and (first call) compile it with inductor, plus the fp32 eager guard step
COMPILE_S = {True: 600.0, False: 120.0}
BARRIER_WAIT_S = 120.0  # worker.BARRIER_WAIT_S: a peer this much later is left behind, the barrier breaks
# the slowest rates a healthy node is assumed to reach, to turn sizes into seconds (a degraded PCIe link
# is slower than a healthy one by 2-4x, not by 50x: it is measured and judged, never killed)
MIN_COPY_B_S = 1e9
MIN_MATMUL_FLOP_S = 1e12
MIN_COLLECTIVE_B_S = 1e9
MATMUL_ITERS = 50  # suites.run_per_gpu: max(suite_iters, 50)


def phase_of(mode: str | None, phase: str) -> str:
    """The watchdog phase of a worker's ``(mode, phase)`` event."""
    if phase in ("start", "import"):
        return "init"
    if phase in ("warmup", "sync"):
        return phase
    if phase == "timed":
        return "suites" if mode in PER_GPU_SUITES else "measure"
    return "compile"  # setup, compile, an out-of-memory retry, done (tear-down and the next mode's build)


@dataclass(frozen=True)
class PhaseLimits:
    """Seconds each phase may last (see the module's docstring); ``to_dict`` goes into the run record."""

    init: float
    compile: float
    warmup: float
    sync: float
    measure: float
    suites: float
    collective: float

    @classmethod
    def from_config(cls, cfg: BenchConfig) -> PhaseLimits:
        r = cfg.resolved()
        slack = float(r.watchdog_slack_s if r.watchdog_slack_s is not None else 0.0)
        window = float(r.window_s or 0.1)
        copy_b = float(r.copy_bytes or 0)
        n = float(r.matmul_n or 0)
        iters = r.suite_iters
        # h2d and d2h: two copies per repetition (+2 warm-up); hbm reads and writes; matmul 2n^3 flops
        suites = max(
            2 * (iters + 2) * copy_b / MIN_COPY_B_S, 2 * (MATMUL_ITERS + 2) * n**3 / MIN_MATMUL_FLOP_S
        )
        # all-reduce and all-gather sweep sizes x4 up to the largest (sum < 4/3 of it), then the p2p pairs
        coll_bytes = 2 * (4 / 3) * float(r.coll_max_bytes or 0) * (iters + 2) * 2
        pairs_bytes = float(r.p2p_bytes or 0) * (iters + 2) * 8 * 7  # up to 8 GPUs' ordered pairs
        # at least 3 steps and up to a second (recipe.measure), each step well under 10 windows
        warmup = max(5.0, 10 * window)
        return cls(
            init=INIT_S[r.device] + slack,
            compile=COMPILE_S[bool(r.compile)] + slack,
            warmup=warmup + slack,
            sync=BARRIER_WAIT_S + slack,
            # per window (each reports): one window is ~window_s of steps, or one step when a step is longer,
            # and a step is at most a third of the warm-up
            measure=max(warmup, 2 * window) + slack,
            suites=suites + slack,
            collective=INIT_S[r.device] + (coll_bytes + pairs_bytes) / MIN_COLLECTIVE_B_S + slack,
        )

    def limit(self, phase: str) -> float:
        return float(getattr(self, phase))

    def to_dict(self) -> dict[str, Any]:
        return {k: round(v, 1) for k, v in asdict(self).items()}


def overdue(limits: PhaseLimits, mode: str | None, phase: str, in_phase_s: float) -> tuple[str, float] | None:
    """``(watchdog phase, its limit)`` when a worker has been in ``phase`` too long, else None."""
    name = phase_of(mode, phase)
    lim = limits.limit(name)
    return (name, lim) if in_phase_s > lim else None
