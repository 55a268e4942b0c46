"""The runner's worker processes (real spawn, real worker code), driven into failure by the test hooks.

A worker that crashes or hangs is reported as a failed result for its GPU; the others still finish.
The hooks fire before torch is imported, so these runs take seconds.
"""

from __future__ import annotations

import contextlib
import time

import pytest

from dlverify.benchmarks import runner
from dlverify.benchmarks.config import BenchConfig
from dlverify.probes.nvml import NvmlInitError


def test_crashing_hanging_and_raising_workers_are_each_reported() -> None:
    slots = runner.cpu_slots("0,1,2")
    cfg = BenchConfig(device="cpu", fault="crash@0;hang@1;raise@2")
    events: list[dict] = []
    t = time.monotonic()
    recs = runner.run_workers(slots, cfg, timeout_s=4.0, on_event=events.append)
    took = time.monotonic() - t
    assert [r["label"] for r in recs] == ["cpu0", "cpu1", "cpu2"]
    assert all(r["status"] == "failed" for r in recs)
    crash, hang, err = (r["failure"] for r in recs)
    assert crash["kind"] == "crash" and "exited with code 13" in crash["error"]
    assert hang["kind"] == "timeout" and "no result after 4 s" in hang["error"]
    assert hang["phase"] == "setup"  # where it was stuck, from its last phase event
    assert err["kind"] == "exception" and "injected failure" in err["error"]
    assert "Traceback" in err["traceback"]
    assert took < 4.0 + 2 * runner.KILL_GRACE_S + 10
    assert {e["slot"] for e in events if e["event"] == "finished"} == {0, 1, 2}


def test_sequential_runs_one_worker_at_a_time() -> None:
    slots = runner.cpu_slots("0,1")
    events: list[dict] = []
    recs = runner.run_workers(
        slots, BenchConfig(device="cpu", fault="raise"), sequential=True, on_event=events.append
    )
    order = [(e["event"], e["slot"]) for e in events if e["event"] in ("started", "finished")]
    assert order == [("started", 0), ("finished", 0), ("started", 1), ("finished", 1)]
    assert [r["failure"]["kind"] for r in recs] == ["exception", "exception"]


def _running(pid: int) -> bool:
    """True while the process exists and is not a zombie."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def test_a_hung_worker_is_killed_with_its_helper_processes() -> None:
    helpers: list[int] = []

    def grab(ev: dict) -> None:
        if ev.get("helper_pid"):
            helpers.append(ev["helper_pid"])

    slots = runner.cpu_slots("all")
    recs = runner.run_workers(slots, BenchConfig(device="cpu", fault="hang"), timeout_s=2.0, on_event=grab)
    assert recs[0]["failure"]["kind"] == "timeout"
    assert len(helpers) == 1
    deadline = time.monotonic() + 5
    while _running(helpers[0]) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _running(helpers[0]), "the hung worker's helper process survived the kill"
    import multiprocessing as mp

    assert not [p for p in mp.active_children() if p.name.startswith("dlverify-bench-")]


def test_gpu_selection() -> None:
    assert runner.parse_gpus("all", [0, 1, 2]) == [0, 1, 2]
    assert runner.parse_gpus("2, 0,2", [0, 1, 2]) == [2, 0]
    with pytest.raises(runner.GpuSelectionError, match="no GPU 5 on this host"):
        runner.parse_gpus("5", [0, 1])
    with pytest.raises(runner.GpuSelectionError, match="not a GPU index"):
        runner.parse_gpus("gpu0", [0])


class _FailingNvml:
    """Stand-in for dlverify.probes.nvml whose session() fails as on a host without a driver."""

    @staticmethod
    def session():
        raise NvmlInitError("NVML library (libnvidia-ml.so.1) not found: the NVIDIA driver is not installed")


def test_no_nvml_means_no_gpu() -> None:
    with pytest.raises(runner.NoGpuError, match="libnvidia-ml"):
        runner.discover_gpus("all", nvml=_FailingNvml)


class _TwoGpuNvml:
    """Stand-in for dlverify.probes.nvml on a host with two H100s; the real query() layer is used."""

    NvmlInitError = NvmlInitError
    UUIDS = ("GPU-1c0a6b1e-0000-0000-0000-000000000000", "GPU-9f3e2d4c-0000-0000-0000-000000000000")

    class _Lib:
        def nvmlDeviceGetCount(self) -> int:
            return 2

        def nvmlDeviceGetHandleByIndex(self, i: int) -> int:
            return i

        def nvmlDeviceGetName(self, h: int) -> str:
            return "NVIDIA H100 80GB HBM3"

        def nvmlDeviceGetUUID(self, h: int) -> str:
            return _TwoGpuNvml.UUIDS[h]

    @classmethod
    @contextlib.contextmanager
    def session(cls):
        yield cls._Lib()

    @staticmethod
    def query(fn, *args):
        from dlverify.probes import nvml

        return nvml.query(fn, *args)


@pytest.mark.parametrize(
    ("visible", "gpus", "want"),
    [
        (None, "all", [0, 1]),
        ("1", "all", [1]),
        ("GPU-9f3e", "all", [1]),
        ("1,0", "all", [1, 0]),
        ("0,7,1", "all", [0]),  # CUDA ignores everything from the first entry it cannot resolve
    ],
)
def test_an_inherited_cuda_visible_devices_is_respected(monkeypatch, visible, gpus, want) -> None:
    if visible is None:
        monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    else:
        monkeypatch.setenv("CUDA_VISIBLE_DEVICES", visible)
    assert [s.index for s in runner.discover_gpus(gpus, nvml=_TwoGpuNvml)] == want


def test_cuda_visible_devices_limits_what_gpus_may_name(monkeypatch) -> None:
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "1")
    with pytest.raises(runner.GpuSelectionError, match="no GPU 0"):
        runner.discover_gpus("0", nvml=_TwoGpuNvml)


@pytest.mark.parametrize(
    ("visible", "match"),
    [
        ("", "leaves no GPU"),
        ("MIG-4f0c1b2a-0000-0000-0000-000000000000", "MIG instance"),
    ],
)
def test_cuda_visible_devices_that_leave_nothing_say_why(monkeypatch, visible, match) -> None:
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", visible)
    with pytest.raises(runner.NoGpuError, match=match):
        runner.discover_gpus("all", nvml=_TwoGpuNvml)


def test_all_workers_start_timing_together_after_their_own_compile() -> None:
    """Worker 1 compiles LATE_S longer (test hook "late"); both still start the timed phase together."""
    pytest.importorskip("torch")
    slots = runner.cpu_slots("0,1")
    cfg = BenchConfig(
        device="cpu",
        fault="late@1",
        modes=("train",),
        image_size=32,
        train_batch=2,
        duration_s=0.2,
        window_s=0.05,
    )
    recs = runner.run_workers(slots, cfg, timeout_s=120)
    assert [r["status"] for r in recs] == ["ok", "ok"], recs
    starts = [next(t for mode, phase, t in r["phases"] if phase == "timed") for r in recs]
    assert abs(starts[0] - starts[1]) < 0.5, starts  # about 1 s apart without the barrier
    assert all(r["result"]["modes"]["train"]["synced"] for r in recs)


def test_a_failed_peer_does_not_hold_the_others_at_the_start_line() -> None:
    pytest.importorskip("torch")
    slots = runner.cpu_slots("0,1")
    cfg = BenchConfig(
        device="cpu",
        fault="raise@1",
        modes=("train",),
        image_size=32,
        train_batch=2,
        duration_s=0.2,
        window_s=0.05,
    )
    t = time.monotonic()
    recs = runner.run_workers(slots, cfg, timeout_s=120)
    assert recs[0]["status"] == "ok" and recs[1]["failure"]["kind"] == "exception"
    assert recs[0]["result"]["modes"]["train"]["synced"] is False  # it timed alone, and says so
    assert time.monotonic() - t < 60
