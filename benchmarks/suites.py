"""Per-GPU bandwidth and compute suites, run inside each worker (behind the runner's barrier).

- h2d / d2h: pinned host memory <-> the GPU, one large copy at a time, timed with CUDA events (GB/s).
  On ``--device cpu`` there is no PCIe: the same code copies between two CPU tensors and says so.
- hbm: device-to-device copy; bandwidth counts each byte read and written (2 x size / time), as
  bandwidthTest and STREAM's copy do.
- matmul: dense n x n x n matmul, 2 n^3 flops each, bf16 on a GPU (fp32 on the CPU), TFLOP/s.

Each measurement is the median of ``cfg.suite_iters`` timed repetitions after warm-up.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from typing import Any

GB = 1e9


class Timer:
    """CUDA events on a GPU, perf_counter on the CPU."""

    def __init__(self, torch: Any, device: Any) -> None:
        self.torch, self.cuda = torch, device.type == "cuda"

    def time(self, fn: Callable[[], Any], iters: int, warmup: int = 2) -> list[float]:
        torch = self.torch
        for _ in range(warmup):
            fn()
        if self.cuda:
            torch.cuda.synchronize()
        out: list[float] = []
        for _ in range(iters):
            if self.cuda:
                a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
                a.record()
                fn()
                b.record()
                b.synchronize()
                out.append(a.elapsed_time(b) / 1e3)
            else:
                t = time.perf_counter()
                fn()
                out.append(time.perf_counter() - t)
        return out


def _summary(rates: list[float], unit: str, **extra: Any) -> dict[str, Any]:
    med = statistics.median(rates)
    spread = (max(rates) - min(rates)) / med * 100 if med > 0 else 0.0
    return {
        "value": med,
        "unit": unit,
        "max": max(rates),
        "spread_pct": spread,
        "samples": len(rates),
        **extra,
    }


def copy_bandwidth(torch: Any, device: Any, nbytes: int, iters: int) -> dict[str, Any]:
    """h2d and d2h: pinned host buffer <-> device buffer of ``nbytes`` (host memcpy on the CPU)."""
    n = nbytes // 4
    cuda = device.type == "cuda"
    host = torch.empty(n, dtype=torch.float32, pin_memory=cuda).fill_(1.0)
    dev = torch.empty(n, dtype=torch.float32, device=device)
    timer = Timer(torch, device)
    h2d = timer.time(lambda: dev.copy_(host, non_blocking=True), iters)
    d2h = timer.time(lambda: host.copy_(dev, non_blocking=True), iters)
    if not torch.equal(host[:16], dev[:16].cpu()):  # (compared on the host: torch.equal wants one device)
        raise RuntimeError("h2d/d2h: the copied data differs from the source")
    method = (
        "pinned host memory <-> GPU, cudaMemcpyAsync, CUDA events"
        if cuda
        else "CPU run: memcpy between two host tensors (no PCIe link measured)"
    )
    size = n * 4
    return {
        "h2d": _summary([size / t / GB for t in h2d], "GB/s", bytes=size, method=method),
        "d2h": _summary([size / t / GB for t in d2h], "GB/s", bytes=size, method=method),
    }


def hbm_bandwidth(torch: Any, device: Any, nbytes: int, iters: int) -> dict[str, Any]:
    n = nbytes // 4
    a = torch.ones(n, dtype=torch.float32, device=device)
    b = torch.empty_like(a)
    times = Timer(torch, device).time(lambda: b.copy_(a), iters)
    if not bool((b[:16] == 1).all()):
        raise RuntimeError("hbm: the copied data differs from the source")
    method = (
        "device-to-device copy, read + write bytes counted"
        if device.type == "cuda"
        else "CPU run: host memory copy, read + write bytes counted"
    )
    return _summary([2 * n * 4 / t / GB for t in times], "GB/s", bytes=n * 4, method=method)


def matmul_tflops(torch: Any, device: Any, n: int, iters: int) -> dict[str, Any]:
    dtype = torch.bfloat16 if device.type == "cuda" else torch.float32
    g = torch.Generator(device="cpu").manual_seed(0)
    a = torch.randn(n, n, generator=g).to(device=device, dtype=dtype)
    b = torch.randn(n, n, generator=g).to(device=device, dtype=dtype)
    out = torch.empty(n, n, device=device, dtype=dtype)
    times = Timer(torch, device).time(lambda: torch.matmul(a, b, out=out), iters, warmup=3)
    # a matmul that skipped work fast cannot pass: one row against an fp32 product
    want = a[:1].float() @ b.float()
    err = float((out[:1].float() - want).abs().max() / want.abs().max())
    if not err < 0.05:
        raise RuntimeError(f"matmul: result off by {err:.3f} (relative) against fp32")
    return _summary(
        [2 * n**3 / t / 1e12 for t in times], "TFLOP/s", n=n, dtype=str(dtype).split(".")[-1], rel_error=err
    )


def run_per_gpu(
    torch: Any,
    device: Any,
    cfg: Any,
    send: Callable[..., None],
    sync: Callable[[], bool] | None = None,
    fault: str | None = None,
) -> dict[str, Any]:
    """The per-GPU suites the config asks for; each starts on every GPU together (the barrier).

    ``fault`` ``hang_suite`` (test hook): the first suite never returns, for the runner's watchdog.
    """
    out: dict[str, Any] = {}
    for suite in ("h2d", "hbm", "matmul"):
        if suite not in cfg.suites:
            continue
        send("phase", mode=suite, phase="sync")
        synced = sync() if sync is not None else True
        send("phase", mode=suite, phase="timed")
        if fault == "hang_suite":
            from dlverify.benchmarks.config import wedge

            wedge()
        try:
            if suite == "h2d":
                res = copy_bandwidth(torch, device, cfg.copy_bytes, cfg.suite_iters)
            elif suite == "hbm":
                res = {"hbm": hbm_bandwidth(torch, device, cfg.copy_bytes, cfg.suite_iters)}
            else:
                res = {"matmul": matmul_tflops(torch, device, cfg.matmul_n, max(cfg.suite_iters, 50))}
        except Exception as exc:  # one suite failing does not lose the others' numbers
            res = {suite: {"error": f"{type(exc).__name__}: {exc}"[:500]}}
        for k, v in res.items():
            v["synced"] = synced
            out[k] = v
        send("partial", suites=res)  # kept by the runner if the run is interrupted
        send("phase", mode=suite, phase="done")
        if device.type == "cuda":
            torch.cuda.empty_cache()
    return out
