"""The per-phase watchdog: a worker stuck in one phase is killed and named; the other workers' results stay.

Real spawned workers on the CPU, real torch, wedged by the ``hang_<phase>`` test hooks, which also ignore
SIGTERM (as a CUDA call stuck in the driver would), so the kill must escalate to SIGKILL. Each phase's
limit comes from the run's own settings (``watchdog.PhaseLimits``), far below the run's ``--timeout``.
"""

from __future__ import annotations

import time

import psutil
import pytest

from dlverify.benchmarks import runner
from dlverify.benchmarks.config import BenchConfig
from dlverify.benchmarks.watchdog import PhaseLimits, phase_of

TIMEOUT_S = 600.0  # the old single limit: the watchdog must act long before it


def _gone(pids: list[int], within_s: float = 10.0) -> list[int]:
    deadline = time.monotonic() + within_s
    while True:
        alive = [
            p for p in pids if psutil.pid_exists(p) and psutil.Process(p).status() != psutil.STATUS_ZOMBIE
        ]
        if not alive or time.monotonic() > deadline:
            return alive
        time.sleep(0.1)


def test_each_hung_phase_is_killed_named_and_timed_while_a_healthy_peer_finishes() -> None:
    pytest.importorskip("torch")
    cfg = BenchConfig(
        device="cpu",
        fault="hang_warmup@1;hang_timed@2;hang_suite@3",
        modes=("train",),
        suites=("resnet18", "h2d"),
        image_size=32,
        train_batch=2,
        duration_s=0.2,
        window_s=0.05,
    )
    limits = PhaseLimits.from_config(cfg)
    pids: list[int] = []
    t0 = time.monotonic()
    recs = runner.run_workers(
        runner.cpu_slots("0,1,2,3"),
        cfg,
        timeout_s=TIMEOUT_S,
        on_event=lambda e: e.get("pid") and pids.append(e["pid"]),
    )
    took = time.monotonic() - t0
    assert took < TIMEOUT_S / 2, took

    ok = recs[0]
    assert ok["status"] == "ok", ok.get("failure")
    assert ok["result"]["modes"]["train"]["img_s"] > 0 and "h2d" in ok["result"]["suites"]

    for rec, phase in zip(recs[1:], ("warmup", "measure", "suites"), strict=True):
        f = rec["failure"]
        assert rec["status"] == "failed" and f["kind"] == "hung", f
        assert f["watchdog_phase"] == phase, f
        assert f["limit_s"] == round(limits.limit(phase), 1)
        assert f["limit_s"] <= f["waited_s"] < f["limit_s"] + 10, f
        assert f"for {f['waited_s']:.1f} s" in f["error"] and phase in f["error"]
    assert len(pids) == 4
    assert not _gone(pids), "a hung worker survived the watchdog"


def test_limits_follow_the_settings() -> None:
    base = PhaseLimits.from_config(BenchConfig(device="cuda"))
    assert base.compile > PhaseLimits.from_config(BenchConfig(device="cuda", compile=False)).compile
    assert PhaseLimits.from_config(BenchConfig(device="cuda", window_s=5.0)).measure > base.measure
    assert PhaseLimits.from_config(BenchConfig(device="cuda", copy_bytes=8 << 30)).suites > base.suites
    assert (
        PhaseLimits.from_config(BenchConfig(device="cuda", coll_max_bytes=16 << 30)).collective
        > base.collective
    )
    slack = PhaseLimits.from_config(BenchConfig(device="cuda", watchdog_slack_s=100.0))
    assert slack.init == pytest.approx(base.init + 40)  # cuda's default slack is 60 s
    # a healthy H100/H200 run's phases fit well inside: 1 GiB copies x 22 at >= 1 GB/s, 8192^3 matmuls x 52
    assert base.suites > 2 * 22 * (1 << 30) / 1e9 and base.measure >= 60


@pytest.mark.parametrize(
    ("mode", "phase", "want"),
    [
        ("train", "import", "init"),
        ("train", "setup", "compile"),
        ("infer", "compile", "compile"),
        ("train", "oom: retry at batch 512", "compile"),
        ("train", "warmup", "warmup"),
        ("h2d", "sync", "sync"),
        ("train", "timed", "measure"),
        ("matmul", "timed", "suites"),
    ],
)
def test_worker_phases_map_to_watchdog_phases(mode: str, phase: str, want: str) -> None:
    assert phase_of(mode, phase) == want
