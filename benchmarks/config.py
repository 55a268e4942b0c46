"""What one benchmark run does: a plain, picklable settings record shared by the CLI, runner and workers.

Kept free of torch so the parent process (and the tests of judgement) never import it.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, replace
from typing import Any

MODES = ("train", "infer")
# `--suite`: resnet18 (training/inference, the modes above); per GPU: pinned host<->device copies (h2d, which
# also times d2h), HBM device-to-device copy (hbm), bf16 dense matmul (matmul); across GPUs: all-reduce and
# all-gather bus bandwidth (allreduce) and the pairwise peer-to-peer matrix (p2p).
SUITES = ("resnet18", "h2d", "hbm", "matmul", "allreduce", "p2p")
PER_GPU_SUITES = ("h2d", "hbm", "matmul")
NODE_SUITES = ("allreduce", "p2p")
DEFAULT_SUITES = ("resnet18",)
PRECISIONS = ("auto", "bf16", "fp16", "fp32")
COMPILE_MODES = ("default", "reduce-overhead", "max-autotune-no-cudagraphs", "max-autotune")

# Defaults per device. CUDA: the sizes the recipe was tuned for on an H200 (benchmarks/results/): ResNet18
# at 224 px; training batch 1024 (+1.7% over 512, +8% over 256; 11 GiB), inference batch 1024 (2048 adds
# 1.7% for twice the memory). Both are halved automatically on out-of-memory.
# CPU: tiny, so the real code path runs in seconds for tests and for a smoke run without a GPU.
_DEFAULTS: dict[str, dict[str, Any]] = {
    "cuda": {
        "image_size": 224,
        "train_batch": 1024,
        "infer_batch": 1024,
        "duration_s": 10.0,
        "window_s": 0.5,
        "compile": True,
        # bandwidth suites: bytes per copy, matmul side; collectives: message sizes up to the plateau
        "copy_bytes": 1 << 30,
        "matmul_n": 8192,
        "coll_max_bytes": 4 << 30,
        "p2p_bytes": 256 << 20,
        # watchdog: seconds each phase gets beyond its estimate (watchdog.py); --soak: one window
        "watchdog_slack_s": 60.0,
        "soak_window_s": 60.0,
    },
    "cpu": {
        "image_size": 64,
        "train_batch": 4,
        "infer_batch": 8,
        "duration_s": 1.0,
        "window_s": 0.1,
        "compile": False,
        "copy_bytes": 1 << 20,
        "matmul_n": 128,
        "coll_max_bytes": 1 << 18,
        "p2p_bytes": 1 << 18,
        "watchdog_slack_s": 10.0,
        "soak_window_s": 0.5,
    },
}

# Test hooks, honoured by the worker only when asked for explicitly (config or DLVERIFY_BENCH_FAULT).
# hang_<phase>: the worker stops in that phase, deaf to SIGTERM, as in a CUDA call stuck in the driver
FAULTS = (
    "crash",
    "raise",
    "oom",
    "hang",
    "hang_warmup",
    "hang_timed",
    "hang_suite",
    "nan",
    "lr0",
    "slow",
    "late",
    "skip_blocks",
    "freeze",
    "ignore_input",
    "partial_batch",
    "half_res",
    "zeros",
)  # recipe.BROKEN


def wedge() -> None:
    """Test hook ``hang_<phase>``: never return and ignore SIGTERM, like a CUDA call stuck in the driver.

    Only the watchdog (or ``--timeout``) ends it, with SIGKILL after SIGTERM went unheard.
    """
    import signal
    import time

    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    while True:
        time.sleep(3600)


def default_cache_dir() -> str:
    """Where inductor/triton keep compiled kernels, so a second run skips most compilation."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "dlverify", "inductor")


@dataclass(frozen=True)
class BenchConfig:
    device: str = "cuda"  # "cuda" | "cpu"
    modes: tuple[str, ...] = MODES
    precision: str = "auto"
    train_batch: int | None = None  # None: the device default (and halved on OOM)
    infer_batch: int | None = None
    image_size: int | None = None
    duration_s: float | None = None  # timed seconds per mode (warm-up and compilation excluded)
    window_s: float | None = None  # one timing window; throughput is the median over windows
    min_windows: int = 5
    compile: bool | None = None
    compile_mode_infer: str = "default"
    compile_mode_train: str = "default"
    freezing: bool = True  # inductor freezing for inference: BN folded into the convolutions
    lr: float = 0.05
    cache_dir: str | None = None
    telemetry: bool = True
    fault: str | None = None  # test hook: "kind", "kind@0,2", "crash@1;hang@2" (see FAULTS)
    batch_forced: bool = False  # the user chose the batch: no automatic halving on OOM
    suites: tuple[str, ...] = DEFAULT_SUITES
    copy_bytes: int | None = None  # h2d/d2h/hbm: bytes per copy
    matmul_n: int | None = None  # matmul: n x n x n
    coll_max_bytes: int | None = None  # all-reduce/all-gather: largest message (sizes x4 from 1 MiB / 1 KiB)
    p2p_bytes: int | None = None  # p2p: bytes per send
    suite_iters: int = 20  # timed repetitions per measurement (median reported)
    watchdog_slack_s: float | None = None  # each phase's limit = its estimate + this (watchdog.py)
    soak_s: float | None = None  # --soak: time the first mode this long, in windows of soak_window_s
    soak_window_s: float | None = None
    # cores per worker (runner: host cores / workers): inductor's compile threads; on cpu, torch's threads
    host_threads: int | None = None

    def resolved(self) -> BenchConfig:
        """Fill every None with the device default."""
        d = _DEFAULTS[self.device]
        return replace(
            self,
            train_batch=self.train_batch or d["train_batch"],
            infer_batch=self.infer_batch or d["infer_batch"],
            image_size=self.image_size or d["image_size"],
            duration_s=self.duration_s if self.duration_s is not None else d["duration_s"],
            window_s=self.window_s or d["window_s"],
            compile=d["compile"] if self.compile is None else self.compile,
            cache_dir=self.cache_dir or default_cache_dir(),
            copy_bytes=self.copy_bytes or d["copy_bytes"],
            matmul_n=self.matmul_n or d["matmul_n"],
            coll_max_bytes=self.coll_max_bytes or d["coll_max_bytes"],
            p2p_bytes=self.p2p_bytes or d["p2p_bytes"],
            watchdog_slack_s=d["watchdog_slack_s"]
            if self.watchdog_slack_s is None
            else self.watchdog_slack_s,
            soak_window_s=self.soak_window_s or d["soak_window_s"],
        )

    def fault_for(self, slot: int) -> str | None:
        """The test hook for this worker: ``kind``, ``kind@0,2`` or several joined by ``;``."""
        spec = self.fault or os.environ.get("DLVERIFY_BENCH_FAULT") or ""
        for part in filter(None, (p.strip() for p in spec.split(";"))):
            kind, _, where = part.partition("@")
            if kind not in FAULTS:
                raise ValueError(f"unknown test fault {kind!r} (known: {', '.join(FAULTS)})")
            if not where or str(slot) in where.split(","):
                return kind
        return None

    def to_dict(self) -> dict:
        d = asdict(self)
        d["modes"] = list(self.modes)
        d["suites"] = list(self.suites)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> BenchConfig:
        d = dict(d)
        d["modes"] = tuple(d.get("modes", MODES))
        d["suites"] = tuple(d.get("suites", DEFAULT_SUITES))
        return cls(**d)

    @property
    def timed_modes(self) -> tuple[str, ...]:
        """The ResNet18 modes this run times: none when the resnet18 suite is not asked for."""
        return self.modes if "resnet18" in self.suites else ()

    @property
    def is_standard(self) -> bool:
        """Whether results are comparable with the per-card references (224 px, compiled, CUDA)."""
        r = self.resolved()
        return r.device == "cuda" and r.image_size == 224 and bool(r.compile)


def parse_suites(text: str) -> tuple[str, ...]:
    """``--suite resnet18,h2d`` (or ``all``) in the canonical order; ValueError names an unknown one."""
    if text.strip().lower() == "all":
        return SUITES
    asked = [p.strip().lower() for p in text.split(",") if p.strip()]
    bad = [a for a in asked if a not in SUITES]
    if bad or not asked:
        raise ValueError(
            f"--suite: unknown suite {', '.join(map(repr, bad)) or '(none)'} "
            f"(known: {', '.join(SUITES)}, or all)"
        )
    return tuple(s for s in SUITES if s in asked)
