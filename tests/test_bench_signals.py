"""Ctrl-C, SIGTERM (timeout, Slurm, systemd) or SIGKILL to `dlverify bench` leaves no process behind.

Real processes end to end: the CLI in a subprocess, spawned workers wedged by the ``hang`` test hook, each
with a helper process of its own (as inductor's compile pool would be). The workers sit in their own
process groups, so a signal to the parent alone is the hard case: nothing else would reach them.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

WORKERS = 2


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
