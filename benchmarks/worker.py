"""One benchmark process per GPU: pins itself to its card, runs the modes, reports over a queue.

Started with the `spawn` start method. Only the standard library is imported at module level, so the
environment (which GPU, where the compile cache lives) is set before torch is first imported.
Every message is a dict with ``slot`` and ``event``: ``phase``, ``progress``, ``result`` or ``error``.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import platform
import signal
import sys
import time
import traceback
from typing import Any

MIN_GPU_BATCH = 32  # halving an automatic batch on out-of-memory stops here
BARRIER_WAIT_S = 120.0  # a peer this much later to its timed phase is left behind (the run is unsynchronised)
LATE_S = 3.0  # test hook "late": a compile this much longer than its peers'


def _env(slot_info: dict[str, Any], cache_dir: str, device: str, threads: int | None = None) -> None:
    if device == "cuda":
        # address the card by UUID (or NVML index in PCI order) so CUDA and NVML mean the same GPU
        os.environ["CUDA_DEVICE_ORDER"] = "PCI_BUS_ID"
        os.environ["CUDA_VISIBLE_DEVICES"] = str(slot_info.get("uuid") or slot_info["index"])
    os.makedirs(cache_dir, exist_ok=True)
    os.environ.setdefault("TORCHINDUCTOR_CACHE_DIR", cache_dir)
    os.environ.setdefault("TRITON_CACHE_DIR", os.path.join(cache_dir, "triton"))
    os.environ.setdefault("TORCHINDUCTOR_FX_GRAPH_CACHE", "1")
    os.environ.setdefault("TORCHINDUCTOR_AUTOGRAD_CACHE", "1")
    if threads:  # this worker's share of the cores for inductor's compile pool (runner.with_host_threads)
        os.environ.setdefault("TORCHINDUCTOR_COMPILE_THREADS", str(threads))


def _is_oom(exc: BaseException) -> bool:
    name = type(exc).__name__
    return name == "OutOfMemoryError" or "out of memory" in str(exc).lower()


def _stop_group(_signum: int, _frame: object) -> None:
    """SIGTERM to a worker takes its whole process group (inductor's compile workers) down with it."""
    with contextlib.suppress(OSError):
        os.killpg(os.getpgid(0), signal.SIGKILL)
    os._exit(143)


def _die_with_parent() -> None:
    """Ask Linux for SIGTERM when the runner dies, even by SIGKILL, which no handler of its can catch.

    Without it a worker, in a process group of its own, would run on re-parented to PID 1 with its GPU.
    """
    signal.signal(signal.SIGTERM, _stop_group)
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        pr_set_pdeathsig = 1
        libc.prctl(pr_set_pdeathsig, signal.SIGTERM, 0, 0, 0)
    except (OSError, AttributeError):  # not Linux: the runner's own clean-up is all there is
        return
    parent = multiprocessing.parent_process()
    if parent is not None and os.getppid() != parent.pid:  # it died before prctl took effect
        _stop_group(signal.SIGTERM, None)


def worker_main(slot_info: dict[str, Any], cfg_dict: dict[str, Any], queue: Any, barrier: Any = None) -> None:
    """Entry point of a worker process. Never raises: failures go to the queue as an ``error`` event."""
    slot = int(slot_info["slot"])
    # the runner blocks these around the spawn (pool.STOP_SIGNALS) and a spawned child inherits the mask
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT, signal.SIGTERM, signal.SIGHUP})
    with contextlib.suppress(OSError):
        os.setpgid(0, 0)  # own process group: the runner can stop inductor's compile workers with it
    _die_with_parent()

    def send(event: str, **kw: Any) -> None:
        queue.put({"slot": slot, "event": event, "t": time.monotonic(), **kw})

    try:
        from dlverify.benchmarks.config import BenchConfig

        cfg = BenchConfig.from_dict(cfg_dict).resolved()
        assert cfg.cache_dir is not None
        fault = cfg.fault_for(slot)
        if fault == "crash":
            os._exit(13)  # test hook: dies without a word, like a segfault in a driver call
        if fault == "hang":
            # like a worker wedged in compilation, with a helper process of its own (inductor's pool)
            import subprocess

            helper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
            send("phase", mode=cfg.modes[0], phase="setup", helper_pid=helper.pid)
            while True:  # test hook: a wedged worker; only the runner's timeout ends it
                time.sleep(3600)
        if fault == "raise":
            raise RuntimeError("injected failure (test hook)")
        _env(slot_info, cfg.cache_dir, cfg.device, cfg.host_threads)
        result = _run(slot_info, cfg, fault, send, _synchroniser(barrier))
        send("result", result=result)
    except BaseException as exc:
        kind = "oom" if _is_oom(exc) else "exception"
        send(
            "error",
            kind=kind,
            error=f"{type(exc).__name__}: {exc}"[:2000],
            traceback=traceback.format_exc()[-4000:],
        )
    finally:
        with contextlib.suppress(Exception):
            queue.close()
            queue.join_thread()


def _synchroniser(barrier: Any) -> Any:
    """Wait for the other workers before a timed phase: True when all arrived, False when left alone."""
    import threading

    def sync() -> bool:
        if barrier is None:
            return True
        try:
            barrier.wait(BARRIER_WAIT_S)
            return True
        except threading.BrokenBarrierError:  # a peer failed or is too late: time alone, and say so
            return False

    return sync


def _run(
    slot_info: dict[str, Any], cfg: Any, fault: str | None, send: Any, sync: Any = None
) -> dict[str, Any]:
    t_start = time.perf_counter()
    send("phase", mode=cfg.modes[0], phase="import")
    import torch
    import torchvision

    from dlverify.benchmarks import recipe

    t_import = time.perf_counter() - t_start
    if cfg.device == "cuda":
        if not torch.cuda.is_available():
            raise RuntimeError("torch.cuda is not available in the worker")
        device = torch.device("cuda", 0)
        torch.cuda.set_device(device)
        name = torch.cuda.get_device_name(device)
    else:
        device = torch.device("cpu")
        name = platform.processor() or platform.machine() or "cpu"
        if cfg.host_threads:  # the workers share the CPU: one thread per core in each would starve them all
            torch.set_num_threads(cfg.host_threads)
    recipe.configure_torch(cfg)
    t = time.perf_counter()
    torch.zeros(1, device=device)
    init_s = time.perf_counter() - t

    modes: dict[str, Any] = {}
    for mode in cfg.timed_modes:
        send("phase", mode=mode, phase="setup")
        modes[mode] = _run_mode(recipe, torch, cfg, mode, device, fault, send, sync)
        send("partial", modes={mode: modes[mode]})  # kept by the runner if the run is interrupted
    from dlverify.benchmarks import suites

    per_gpu = suites.run_per_gpu(torch, device, cfg, send, sync, fault)

    return {
        "device": str(device),
        "name": name,
        "software": {
            "torch": torch.__version__,
            "torchvision": torchvision.__version__,
            "cuda": torch.version.cuda,
            "cudnn": torch.backends.cudnn.version() if cfg.device == "cuda" else None,
            "python": sys.version.split()[0],
        },
        "import_s": t_import,
        "threads": {
            "torch": torch.get_num_threads(),
            "inductor_compile": os.environ.get("TORCHINDUCTOR_COMPILE_THREADS"),
        },
        "device_init_s": init_s,
        "wall_s": time.perf_counter() - t_start,
        "modes": modes,
        "suites": per_gpu,
    }


def _run_mode(
    recipe: Any, torch: Any, cfg: Any, mode: str, device: Any, fault: str | None, send: Any, sync: Any = None
) -> dict[str, Any]:
    """Build and time one mode; halve an automatic batch on out-of-memory until it fits."""
    batch = cfg.train_batch if mode == "train" else cfg.infer_batch
    first_batch = batch
    # a GPU that cannot hold a batch of 32 224-px images is broken, not small
    min_batch = MIN_GPU_BATCH if device.type == "cuda" else 1
    prec = recipe.resolve_precision(mode, cfg.precision, cfg.device)
    build = recipe.build_train if mode == "train" else recipe.build_infer

    def progress(phase: str, done: float, total: float) -> None:
        if phase == "timed" and done > 0:
            send("progress", mode=mode, done=done, total=total)
        else:
            send("phase", mode=mode, phase=phase)

    while True:
        try:
            if fault == "oom" and batch == first_batch:
                raise torch.cuda.OutOfMemoryError("CUDA out of memory (injected by the test hook)")
            t = time.perf_counter()
            w = build(cfg, device, prec, batch, fault)
            setup_s = time.perf_counter() - t
            if fault == "late":
                time.sleep(LATE_S)
            hang_in = fault[len("hang_") :] if fault and fault.startswith("hang_") else None
            res = recipe.measure(
                w,
                cfg,
                device,
                progress,
                slow_s=0.05 if fault == "slow" else 0.0,
                sync=sync,
                hang_in=hang_in,
                soak_s=cfg.soak_s if mode == cfg.timed_modes[0] else None,
            )
            res["setup_s"] = setup_s
            if batch != first_batch:
                res["batch_reduced_from"] = first_batch
            break
        except torch.cuda.OutOfMemoryError:
            if cfg.batch_forced or batch // 2 < min_batch:
                raise
        # out of memory (and out of the except block, whose traceback pins the failed attempt's tensors):
        # free what it held, then try half the batch
        w = None
        batch //= 2
        torch._dynamo.reset()
        if device.type == "cuda":
            torch.cuda.empty_cache()
        send("phase", mode=mode, phase=f"oom: retry at batch {batch}")
    # drop this mode's compiled graphs (they hold its model and batch); the on-disk cache keeps them
    w = None
    torch._dynamo.reset()
    if device.type == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(device)
    return res
