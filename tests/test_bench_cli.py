"""`dlverify bench` end to end on the CPU: real spawned workers, real torch, JSON out, exit codes."""

from __future__ import annotations

import json

import pytest

from dlverify.cli import main
from dlverify.probes import nvml
from dlverify.results import EXIT_FAIL, EXIT_USAGE


def _nvml_works() -> bool:
    try:
        with nvml.session():
            return True
    except nvml.NvmlInitError:
        return False


@pytest.mark.skipif(_nvml_works(), reason="this host has NVML: `dlverify bench` would really run")
def test_no_gpu_is_a_clear_message_and_exit_2(capsys) -> None:
    assert main(["bench", "--format", "json"]) == EXIT_USAGE
    err = capsys.readouterr().err
    assert "no GPU to benchmark" in err and "--device cpu" in err
    assert "Traceback" not in err


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--duration", "0"], "--duration must be > 0"),
        (["--batch-size", "0"], "--batch-size must be >= 1"),
        (["--image-size", "8"], "--image-size must be >= 32"),
        (["--device", "cpu", "--gpus", "one"], "'one' is not a GPU index"),
        (["--replay", "/nonexistent/run.json"], "cannot replay"),
    ],
)
def test_bad_usage_exits_2(argv, message, capsys) -> None:
    assert main(["bench", *argv]) == EXIT_USAGE
    assert message in capsys.readouterr().err


def test_cpu_run_through_the_cli_with_a_crashing_worker(tmp_path, monkeypatch) -> None:
    """Two CPU workers: one runs the real recipe, the other crashes (test hook); JSON via -o."""
    monkeypatch.setenv("DLVERIFY_BENCH_FAULT", "crash@1")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    out = tmp_path / "bench.json"
    rc = main(
        [
            "bench",
            "--device",
            "cpu",
            "--gpus",
            "0,1",
            "--image-size",
            "32",
            "--batch-size",
            "2",
            "--duration",
            "0.2",
            "--format",
            "json",
            "-o",
            str(out),
            "--quiet",
            "--timeout",
            "120",
        ]
    )
    assert rc == EXIT_FAIL
    doc = json.loads(out.read_text())
    assert doc["schema"] == "dlverify.report/1" and doc["command"] == "bench" and doc["exit_code"] == 1
    res = {(r["group"], r["id"]): r for r in doc["results"]}
    assert res[("cpu0", "bench.worker")]["status"] == "pass"
    assert res[("cpu0", "bench.train.correctness")]["status"] == "pass"
    assert res[("cpu0", "bench.infer.correctness")]["status"] == "pass"
    assert res[("cpu0", "bench.train.throughput")]["status"] == "skip"  # no reference for a CPU run
    assert res[("cpu1", "bench.worker")]["status"] == "fail"
    assert "crashed: worker exited with code 13" in res[("cpu1", "bench.worker")]["detail"]
    rec = doc["meta"]["bench"]
    assert rec["schema"] == "dlverify.bench.run/1"
    assert rec["config"]["image_size"] == 32 and rec["config"]["batch_forced"] is True
    train = rec["workers"][0]["result"]["modes"]["train"]
    assert train["batch_size"] == 2 and train["img_s"] > 0 and train["guard"]["ok"]
    assert train["timed_s"] >= 0.2 and train["windows"] >= 5
    assert rec["workers"][0]["result"]["software"]["torch"]
    assert (tmp_path / "cache" / "dlverify" / "inductor").is_dir()  # the compile cache location
    assert doc["summary"]["fail"] == 1


def test_progress_bars_follow_worker_events(capsys) -> None:
    from dlverify.benchmarks.progress import ProgressView
    from dlverify.benchmarks.runner import cpu_slots

    slots = cpu_slots("0,1")
    with ProgressView(slots, ["train", "infer"], 10.0, enabled=True) as view:
        view({"slot": 0, "event": "phase", "mode": "train", "phase": "compile"})
        view({"slot": 0, "event": "progress", "mode": "infer", "done": 5.0, "total": 10.0})
        assert view._progress.tasks[0].completed == 15.0  # train's 10 s, then half of infer
        view({"slot": 1, "event": "finished", "status": "failed", "failure": {"kind": "timeout"}})
        assert "timeout" in view._progress.tasks[1].fields["status"]
        view({"slot": 0, "event": "finished", "status": "ok"})
        assert view._progress.tasks[0].completed == 20.0
    assert "cpu1" in capsys.readouterr().err
    quiet = ProgressView(slots, ["train"], 1.0, enabled=False)
    with quiet:
        quiet({"slot": 0, "event": "phase"})  # a no-op, no terminal needed


def test_cpu_bench_without_torch_says_what_to_install(tmp_path) -> None:
    """Issue 18: without the bench extra (the `make check` venv) workers died with ModuleNotFoundError."""
    import os
    import subprocess
    import sys

    stub = tmp_path / "no-torch" / "torch"
    stub.mkdir(parents=True)
    (stub / "__init__.py").write_text('raise ModuleNotFoundError("No module named torch (test stand-in)")\n')
    env = {**os.environ, "PYTHONPATH": str(stub.parent)}
    done = subprocess.run(
        [sys.executable, "-m", "dlverify.cli", "bench", "--device", "cpu", "--quiet"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2, done.stderr
    assert "pip install 'dlverify[bench]'" in done.stderr and "Traceback" not in done.stderr
