"""What one benchmark run does: a plain, picklable settings record shared by the CLI, runner and workers.

Kept free of torch so the parent process (and the tests of judgement) never import it.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, replace
from typing import Any

MODES = ("train", "infer")
PRECISIONS = ("auto", "bf16", "fp16", "fp32")
COMPILE_MODES = ("default", "reduce-overhead", "max-autotune-no-cudagraphs", "max-autotune")

# Defaults per device. CUDA: the sizes the recipe was tuned for on an H200 (benchmarks/results/): ResNet18
# at 224 px; training batch 1024 (+1.7% over 512, +8% over 256; 11 GiB), inference batch 1024 (2048 adds
# 1.7% for twice the memory). Both are halved automatically on out-of-memory.
# CPU: tiny, so the real code path runs in seconds for tests and for a smoke run without a GPU.
_DEFAULTS: dict[str, dict[str, Any]] = {
    "cuda": {"image_size": 224, "train_batch": 1024, "infer_batch": 1024, "duration_s": 10.0,
             "window_s": 0.5, "compile": True},
    "cpu": {"image_size": 64, "train_batch": 4, "infer_batch": 8, "duration_s": 1.0,
            "window_s": 0.1, "compile": False},
}

# Test hooks, honoured by the worker only when asked for explicitly (config or DLVERIFY_BENCH_FAULT).
FAULTS = ("crash", "raise", "oom", "hang", "nan", "lr0", "slow", "late",
          "skip_blocks", "freeze", "ignore_input", "partial_batch", "half_res", "zeros")  # recipe.BROKEN


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
        return d

    @classmethod
    def from_dict(cls, d: dict) -> BenchConfig:
        d = dict(d)
        d["modes"] = tuple(d.get("modes", MODES))
        return cls(**d)

    @property
    def is_standard(self) -> bool:
        """Whether results are comparable with the per-card references (224 px, compiled, CUDA)."""
        r = self.resolved()
        return r.device == "cuda" and r.image_size == 224 and bool(r.compile)
