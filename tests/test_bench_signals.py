"""Ctrl-C, SIGTERM (timeout, Slurm, systemd) or SIGKILL to `dlverify bench` leaves no process behind.

Real processes end to end: the CLI in a subprocess, spawned workers wedged by the ``hang`` test hook, each
with a helper process of its own (as inductor's compile pool would be). The workers sit in their own
process groups, so a signal to the parent alone is the hard case: nothing else would reach them.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

WORKERS = 2


def _sigint_default() -> None:
    """The child hears Ctrl-C even when this pytest was started with `&` by a shell without job control
    (which starts it with SIGINT ignored, an inheritance a real terminal user never has)."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _start_hung_bench(err_path: str) -> tuple[subprocess.Popen[str], list[psutil.Process]]:
    # stderr to a file, not a pipe: a worker left behind would hold a pipe open and hide the parent's exit
    env = {**os.environ, "DLVERIFY_BENCH_FAULT": "hang", "PYTHONUNBUFFERED": "1"}
    with open(err_path, "w") as err:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "dlverify.cli",
                "bench",
                "--device",
                "cpu",
                "--gpus",
                "0,1",
                "--quiet",
                "--timeout",
                "300",
                "--format",
                "json",
            ],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=err,
            text=True,
            start_new_session=True,
            preexec_fn=_sigint_default,
        )
    parent = psutil.Process(proc.pid)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        kids = parent.children(recursive=True)
        workers = [
            k
            for k in kids
            if k.ppid() == proc.pid and _cmd(k).count("multiprocessing") and "resource_tracker" not in _cmd(k)
        ]
        helpers = [k for k in kids if "time.sleep(600)" in _cmd(k)]
        if len(workers) == WORKERS and len(helpers) == WORKERS:
            return proc, kids
        time.sleep(0.1)
    proc.kill()
    pytest.fail(f"the hung workers did not start: {[_cmd(k) for k in parent.children(recursive=True)]}")


def _cmd(p: psutil.Process) -> str:
    try:
        return " ".join(p.cmdline())
    except psutil.Error:
        return ""


def _alive(procs: list[psutil.Process]) -> list[str]:
    out = []
    for p in procs:
        try:
            if p.is_running() and p.status() != psutil.STATUS_ZOMBIE:
                out.append(f"{p.pid} {_cmd(p)[:80]}")
        except psutil.NoSuchProcess:
            pass
    return out


def _wait_gone(procs: list[psutil.Process], within_s: float) -> list[str]:
    deadline = time.monotonic() + within_s
    while (left := _alive(procs)) and time.monotonic() < deadline:
        time.sleep(0.1)
    return left


@pytest.mark.parametrize(("sig", "code"), [(signal.SIGTERM, 143), (signal.SIGINT, 130), (signal.SIGHUP, 129)])
def test_a_signal_to_the_parent_alone_stops_every_worker_and_helper(
    sig: signal.Signals, code: int, tmp_path: Path
) -> None:
    proc, kids = _start_hung_bench(str(tmp_path / "err"))
    try:
        proc.send_signal(sig)  # to the parent only, as `timeout` and `kill PID` do
        proc.wait(timeout=30)
        err = (tmp_path / "err").read_text()
        assert proc.returncode == code, err
        assert "interrupted" in err and "Traceback" not in err
        left = _wait_gone(kids, 10)
        assert not left, f"left behind after {sig.name}: {left}"
    finally:
        proc.kill()
        for k in kids:
            with contextlib.suppress(psutil.Error):
                k.kill()


def test_sigkill_to_the_parent_still_takes_the_workers_down(tmp_path: Path) -> None:
    """SIGKILL cannot be caught: the workers ask the kernel to signal them when their parent dies."""
    proc, kids = _start_hung_bench(str(tmp_path / "err"))
    try:
        proc.kill()
        proc.wait(timeout=10)
        left = _wait_gone(kids, 10)
        assert not left, f"left behind after SIGKILL: {left}"
    finally:
        for k in kids:
            with contextlib.suppress(psutil.Error):
                k.kill()


@pytest.mark.parametrize(
    ("sig", "code", "to_file"), [(signal.SIGTERM, 143, True), (signal.SIGINT, 130, False)]
)
def test_a_signal_mid_run_writes_the_partial_report_in_the_normal_format(
    sig: signal.Signals, code: int, to_file: bool, tmp_path: Path
) -> None:
    """cpu0 finishes its ResNet18 run, then cpu1 (--sequential) is wedged in warm-up (deaf to SIGTERM, the
    watchdog far off).
    The signal then ends the run: cpu0's results are judged, cpu1 is a skip saying why, nothing is left."""
    pytest.importorskip("torch")
    out, err_path = tmp_path / "bench.json", tmp_path / "err"
    argv = [
        sys.executable,
        "-m",
        "dlverify.cli",
        "bench",
        "--device",
        "cpu",
        "--gpus",
        "0,1",
        "--quiet",
        "--sequential",
    ]
    argv += ["--mode", "train", "--image-size", "32", "--batch-size", "2", "--duration", "0.2"]
    argv += ["--watchdog-slack", "600", "--format", "json"] + (["-o", str(out)] if to_file else [])
    env = {**os.environ, "DLVERIFY_BENCH_FAULT": "hang_warmup@1", "XDG_CACHE_HOME": str(tmp_path / "cache")}
    with open(err_path, "w") as err, open(tmp_path / "stdout", "w") as so:
        proc = subprocess.Popen(
            argv,
            env=env,
            stdout=so,
            stderr=err,
            text=True,
            start_new_session=True,
            preexec_fn=_sigint_default,
        )
    parent = psutil.Process(proc.pid)
    kids: list[psutil.Process] = []
    workers: list[psutil.Process] = []
    try:
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline:  # cpu0 done and gone, cpu1 started: one worker seen alive
            for k in parent.children(recursive=True):
                if k not in kids:
                    kids.append(k)
                # classified on every look, not the first: a child seen between fork and exec still shows the
                # parent's command line (under load that window is wide enough: a worker went unrecognised)
                if k not in workers and "multiprocessing" in _cmd(k) and "resource_tracker" not in _cmd(k):
                    workers.append(k)
            if len(workers) == 2 and len(_alive(workers)) == 1:
                break
            time.sleep(0.2)
        else:
            pytest.fail(f"cpu0 did not finish: {err_path.read_text()[-2000:]}")
        time.sleep(1.0)
        proc.send_signal(sig)
        proc.wait(timeout=60)
        err = err_path.read_text()
        assert proc.returncode == code, err
        assert "Traceback" not in err and f"interrupted by {sig.name}" in err
        doc = json.loads(out.read_text() if to_file else (tmp_path / "stdout").read_text())
        record = doc["meta"]["bench"]
        assert record["schema"] == "dlverify.bench.run/1"
        assert record["interrupted"]["signal"] == sig.name
        done, cut = record["workers"]
        assert done["status"] == "ok" and done["result"]["modes"]["train"]["img_s"] > 0
        assert cut["status"] == "interrupted" and cut["failure"]["kind"] == "interrupted"
        by = {(r["group"], r["id"]): r for r in doc["results"]}
        assert by[("cpu0", "bench.worker")]["status"] == "pass"
        assert by[("cpu0", "bench.train.correctness")]["status"] == "pass"
        skipped = by[("cpu1", "bench.worker")]
        assert skipped["status"] == "skip" and re.search(
            rf"interrupted by {sig.name} after \d+ s", str(skipped)
        )
        assert not _wait_gone(kids, 10), "left behind"
    finally:
        proc.kill()
        for k in kids:
            with contextlib.suppress(psutil.Error):
                k.kill()
