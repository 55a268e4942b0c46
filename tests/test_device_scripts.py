"""The GPU-machine scripts run here too (no GPU): every step runs, fails where a GPU is needed, and the files
they promise appear, so the script a GPU session gets is one that works (its time there is 15 minutes)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from conftest import ROOT


def test_check_run_dry_run(tmp_path: Path) -> None:
    out = tmp_path / "out"
    env = dict(
        os.environ,
        OUT=str(out),
        PYTHON=sys.executable,
        SPEC=str(ROOT / "hwspec.yaml"),
        SUITES="1",
        PATH=f"{Path(sys.executable).parent}:{os.environ.get('PATH', '')}",
    )
    proc = subprocess.run(
        ["bash", str(ROOT / "benchmarks/device/check_run.sh")],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    timings = json.loads((out / "timings.json").read_text())
    steps = timings["steps"]
    # no GPU here: the checks fail (exit 1) but run; nvidia-smi is missing; the offline steps succeed
    assert steps["snapshot"]["exit"] == 0
    assert {steps[f"check_json_{i}"]["exit"] for i in (1, 2, 3)} == {1}
    assert steps["smi_compare"]["exit"] == 1 and steps["smi_xml"]["exit"] != 0
    assert steps["spec_init"]["exit"] == 0 and steps["spec_init_check"]["exit"] == 0
    # the snapshot judged offline gives what the live check gave
    assert timings["offline_vs_live"] == {"same": True, "differ": {}}
    assert set(timings["in_process"]) == {"host_and_nvml", "nvml", "host"}
    assert timings["in_process"]["host_and_nvml"]["median_ms"] < 500
    report = json.loads((out / "check.json").read_text())
    assert report["schema"] == "dlverify.report/1" and report["exit_code"] == 1
    snap = json.loads((out / "snapshot.json").read_text())
    assert snap["schema"] == "dlverify.snapshot/1"
    assert "check_table: exit 1" in (out / "check_run.log").read_text()
    assert steps["bench_suites"]["exit"] == 2  # SUITES=1: no GPU here, so `no GPU to benchmark`


def test_bench_device_run_stages_and_collects(tmp_path: Path) -> None:
    # PLAN=none with no time for the reference: only the staging, the environment probe and the collection
    out = tmp_path / "out"
    env = dict(os.environ, OUT=str(out), PYTHON=sys.executable, PLAN="none", BUDGET_S="60")
    proc = subprocess.run(
        ["bash", str(ROOT / "benchmarks/device_run.sh")], env=env, capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    log = (out / "device_run.log").read_text()
    assert "skipped the reference: too little time left" in log and log.rstrip().endswith("done")
    assert json.loads((out / "timings.json").read_text()) == {}
    assert json.loads((out / "variants.json").read_text()) == {}
