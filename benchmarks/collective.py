"""Across-GPU suites: all-reduce / all-gather bus bandwidth and the pairwise peer-to-peer matrix.

One process per GPU (spawn) joined by ``torch.distributed`` (nccl on GPUs, gloo on the CPU), after the
per-GPU workers are done. Every process sees all the run's GPUs (CUDA_VISIBLE_DEVICES lists them in run
order) and uses ``cuda:rank``, so NCCL can pick NVLink/NVSwitch and CUDA peer access as it would in training.

Bus bandwidth as nccl-tests define it (doc/PERFORMANCE.md there): for an operation moving ``size`` bytes
(all-reduce: the buffer; all-gather: the whole output) in ``t`` seconds, algbw = size / t, and
busbw = algbw x 2(n-1)/n for all-reduce, algbw x (n-1)/n for all-gather: the per-link rate, comparable
across GPU counts. The time of one size is the slowest rank's (max over ranks) mean over the timed iterations.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import multiprocessing as mp
import os
import queue as _queue
import tempfile
import time
import traceback
from collections.abc import Sequence
from typing import Any

GB = 1e9
OPS = ("allreduce", "allgather")


def bus_factor(op: str, n: int) -> float:
    """nccl-tests' busbw / algbw factor for ``op`` over ``n`` ranks."""
    if op == "allreduce":
        return 2 * (n - 1) / n
    if op == "allgather":
        return (n - 1) / n
    raise ValueError(op)


def bandwidth(op: str, size_bytes: int, seconds: float, n: int) -> tuple[float, float]:
    """(algbw, busbw) in GB/s, as nccl-tests print them."""
    alg = size_bytes / seconds / GB
    return alg, alg * bus_factor(op, n)


def sizes(min_bytes: int, max_bytes: int) -> list[int]:
    out, s = [], min_bytes
    while s < max_bytes:
        out.append(s)
        s *= 4
    return [*out, max_bytes]


def _rank_main(
    rank: int,
    world: int,
    backend: str,
    init: str,
    cfg_dict: dict[str, Any],
    visible: str | None,
    q: Any,
    timeout_s: float,
) -> None:
    from dlverify.benchmarks.worker import _die_with_parent

    with contextlib.suppress(OSError):
        os.setpgid(0, 0)
    _die_with_parent()
    if visible is not None:
        os.environ["CUDA_DEVICE_ORDER"] = "PCI_BUS_ID"
        os.environ["CUDA_VISIBLE_DEVICES"] = visible
    try:
        import torch
        import torch.distributed as dist

        from dlverify.benchmarks.config import BenchConfig

        cfg = BenchConfig.from_dict(cfg_dict).resolved()
        if backend == "nccl":
            device = torch.device("cuda", rank)
            torch.cuda.set_device(device)
        else:
            device = torch.device("cpu")
        dist.init_process_group(
            backend, init_method=init, rank=rank, world_size=world, timeout=_dt.timedelta(seconds=timeout_s)
        )
        out: dict[str, Any] = {}
        if "allreduce" in cfg.suites:
            for op in OPS:
                out[op] = _sweep(torch, dist, device, op, world, cfg)
        if "p2p" in cfg.suites:
            out["p2p"] = _p2p(torch, dist, device, world, cfg)
        if rank == 0:
            q.put({"rank": rank, "event": "result", "result": out})
        dist.barrier()
        dist.destroy_process_group()
    except BaseException as exc:
        q.put(
            {
                "rank": rank,
                "event": "error",
                "error": f"{type(exc).__name__}: {exc}"[:2000],
                "traceback": traceback.format_exc()[-4000:],
            }
        )
    finally:
        with contextlib.suppress(Exception):
            q.close()
            q.join_thread()


def _sync(torch: Any, device: Any) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _slowest(torch: Any, dist: Any, device: Any, seconds: float) -> float:
    t = torch.tensor([seconds], dtype=torch.float64, device=device)
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return float(t.item())


def _sweep(torch: Any, dist: Any, device: Any, op: str, n: int, cfg: Any) -> dict[str, Any]:
    min_bytes = (1 << 20) if device.type == "cuda" else (1 << 10)
    dtype = torch.bfloat16 if device.type == "cuda" else torch.float32
    el = torch.tensor([], dtype=dtype).element_size()
    iters = max(5, cfg.suite_iters)
    rows = []
    for size in sizes(min_bytes, int(cfg.coll_max_bytes)):
        count = max(n, size // el // n * n)  # divisible by n: all-gather's per-rank part
        if op == "allreduce":
            buf = torch.ones(count, dtype=dtype, device=device)
        else:
            part = torch.full((count // n,), float(dist.get_rank()), dtype=dtype, device=device)
            whole = torch.empty(count, dtype=dtype, device=device)

        def run() -> None:
            if op == "allreduce":
                dist.all_reduce(buf)  # noqa: B023 (run is called in this iteration only)
            else:
                dist.all_gather_into_tensor(whole, part)  # noqa: B023

        for _ in range(3):
            run()
        _sync(torch, device)
        dist.barrier()
        t = time.perf_counter()
        for _ in range(iters):
            run()
        _sync(torch, device)
        secs = _slowest(torch, dist, device, (time.perf_counter() - t) / iters)
        nbytes = count * el
        alg, bus = bandwidth(op, nbytes, secs, n)
        rows.append({"bytes": nbytes, "time_s": secs, "algbw_gb_s": alg, "busbw_gb_s": bus})
        if op == "allgather":  # every rank's part arrived where it belongs
            got = whole.view(n, -1)[:, 0].float().cpu().tolist()
            if got != [float(r) for r in range(n)]:
                raise RuntimeError(f"all_gather returned {got[:8]} for ranks 0..{n - 1}")
    best = max(r["busbw_gb_s"] for r in rows)
    return {
        "busbw_gb_s": best,
        "sizes": rows,
        "dtype": str(dtype).split(".")[-1],
        "iters": iters,
        "plateau": rows[-1]["busbw_gb_s"] >= 0.95 * best,
        "definition": f"busbw = algbw x {'2(n-1)/n' if op == 'allreduce' else '(n-1)/n'} (nccl-tests)",
    }


def _p2p(torch: Any, dist: Any, device: Any, n: int, cfg: Any) -> dict[str, Any]:
    """matrix[src][dst]: GB/s of ``p2p_bytes`` sends src -> dst, one pair at a time, timed by the receiver."""
    rank = dist.get_rank()
    count = int(cfg.p2p_bytes) // 4
    buf = torch.ones(count, dtype=torch.float32, device=device)
    iters = max(3, cfg.suite_iters // 2)
    mat = torch.zeros(n * n, dtype=torch.float64, device=device)
    for src in range(n):
        for dst in range(n):
            if src == dst:
                continue
            dist.barrier()
            if rank not in (src, dst):
                continue
            for k in range(iters + 1):  # the first transfer sets the link up: not timed
                if k == 1:
                    _sync(torch, device)
                    t = time.perf_counter()
                if rank == src:
                    dist.send(buf, dst)
                else:
                    dist.recv(buf, src)
            _sync(torch, device)
            if rank == dst:
                mat[src * n + dst] = count * 4 * iters / (time.perf_counter() - t) / GB
    dist.all_reduce(mat)
    rows = mat.view(n, n).cpu().tolist()
    return {
        "gb_s": rows,
        "bytes": count * 4,
        "iters": iters,
        "method": "torch.distributed send/recv, one pair at a time, timed by the receiver",
    }


def run_collectives(slots: Sequence[Any], cfg: Any, timeout_s: float = 600.0) -> dict[str, Any]:
    """The node suites over ``slots`` (runner.Slot); a record with the ranks' labels, or an error."""
    labels = [s.label for s in slots]
    base = {"ranks": labels, "world_size": len(slots)}
    if len(slots) < 2:
        return base | {"skipped": "one GPU: no collective or peer-to-peer link to measure"}
    backend = "nccl" if cfg.device == "cuda" else "gloo"
    visible = ",".join(str(s.uuid or s.index) for s in slots) if cfg.device == "cuda" else None
    ctx = mp.get_context("spawn")
    q = ctx.Queue()
    procs = []
    t0 = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="dlverify-coll-") as tmp:
        init = "file://" + os.path.join(tmp, "store")
        try:
            for r in range(len(slots)):
                p = ctx.Process(
                    target=_rank_main,
                    name=f"dlverify-bench-coll{r}",
                    args=(r, len(slots), backend, init, cfg.to_dict(), visible, q, timeout_s),
                )
                p.start()
                procs.append(p)
            result: dict[str, Any] | None = None
            error: dict[str, Any] | None = None
            deadline = t0 + timeout_s
            while result is None and error is None:
                try:
                    msg = q.get(timeout=0.2)
                except _queue.Empty:
                    if time.monotonic() > deadline:
                        error = {"error": f"no result after {timeout_s:.0f} s: ranks killed"}
                    elif any(p.exitcode not in (None, 0) for p in procs):
                        time.sleep(0.5)
                        with contextlib.suppress(_queue.Empty):
                            msg = q.get(timeout=0.5)
                            error = msg if msg.get("event") == "error" else None
                        error = error or {
                            "error": "a rank died without a word: exit codes "
                            + str([p.exitcode for p in procs])
                        }
                    continue
                if msg.get("event") == "result":
                    result = msg["result"]
                else:
                    error = msg
            for p in procs:
                p.join(10 if result is not None else 0.1)
        finally:
            from dlverify.benchmarks.pool import kill_tree

            for p in procs:
                kill_tree(p)
            with contextlib.suppress(Exception):
                q.close()
    base |= {"backend": backend, "elapsed_s": time.monotonic() - t0}
    if error is not None:
        return base | {"error": error.get("error", "failed"), "traceback": error.get("traceback", "")}
    return base | (result or {})
