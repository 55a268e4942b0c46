"""Judgement of recorded bench runs: references, stragglers, throttling, crashes, floors, guards.

Records are built here in the shape `run_bench` writes; card name and limits come from the real H100
recording (tests/fixtures/h100-sxm-80gb/nvml_snapshot.json), throughputs from its reference file.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
from conftest import one

from dlverify import clocks
from dlverify.benchmarks.judge import find_reference, judge, likely_cause, load_references
from dlverify.benchmarks.runner import RECORD_SCHEMA
from dlverify.checks import run_checks
from dlverify.cli import main
from dlverify.hwspec.model import BenchSpec, ChecksSpec, GpuSpec, HardwareSpec, SoftwareSpec, Spec
from dlverify.results import EXIT_FAIL, EXIT_OK, EXIT_USAGE, Status, exit_code

FIX = Path(__file__).parent / "fixtures/h100-sxm-80gb"
H100 = json.loads((FIX / "nvml_snapshot.json").read_text())["gpus"][0]
REF = json.loads((FIX / "resnet18_reference.json").read_text())["resnet18_bs256_224px"]
CARD = H100["name"]
LIMIT_W = H100["power_limit_mw"] / 1000
REFS = load_references()

# a healthy H100 running dlverify's recipe: above the hand-recipe's best (the packaged reference)
TRAIN, INFER = 16_500.0, 72_000.0


def _tele(
    sm: float = 1980,
    power: float = 690,
    temp: float = 62,
    util: float = 100,
    reasons: dict[str, float] | None = None,
    limit: float = LIMIT_W,
) -> dict[str, Any]:
    def mmm(v: float) -> dict[str, float]:
        return {"min": v * 0.97, "median": v, "max": v * 1.01}

    return {
        "samples": 100,
        "interval_s": 0.1,
        "power_limit_w": limit,
        "sm_clock_max_mhz": H100["clock_sm_max"],
        "sm_clock_mhz": mmm(sm),
        "mem_clock_mhz": mmm(H100["clock_mem_max"]),
        "power_w": mmm(power),
        "temperature_c": mmm(temp),
        "util_gpu_pct": mmm(util),
        "util_mem_pct": mmm(50),
        "reasons": reasons if reasons is not None else {"sw_power_cap": 0.6},
    }


def _mode(mode: str, img_s: float, guard_ok: bool = True, precision: str | None = None) -> dict[str, Any]:
    return {
        "mode": mode,
        "precision": precision or ("bf16" if mode == "train" else "fp16"),
        "batch_size": 512 if mode == "train" else 1024,
        "image_size": 224,
        "img_s": img_s,
        "img_s_min": img_s * 0.99,
        "img_s_max": img_s * 1.01,
        "spread_pct": 2.0,
        "windows": 20,
        "compile_s": 12.0,
        "recipe": "test recipe",
        "guard": {
            "ok": guard_ok,
            "detail": "loss fell" if guard_ok else "loss did not drop on a fixed batch: first 6.9, last 6.9",
        },
    }


def _worker(
    i: int,
    train: float = TRAIN,
    infer: float = INFER,
    tele: dict | None = None,
    name: str = CARD,
    guard_ok: bool = True,
) -> dict[str, Any]:
    t = tele or _tele()
    return {
        "slot": i,
        "index": i,
        "label": f"gpu{i}",
        "name": name,
        "status": "ok",
        "result": {
            "name": name,
            "wall_s": 40.0,
            "modes": {"train": _mode("train", train, guard_ok), "infer": _mode("infer", infer)},
        },
        "telemetry": {"run": t, "train": t, "infer": t},
    }


def _record(workers: list[dict[str, Any]], **cfg: Any) -> dict[str, Any]:
    config = {"device": "cuda", "modes": ["train", "infer"], "image_size": 224, "compile": True, **cfg}
    return {
        "schema": RECORD_SCHEMA,
        "config": config,
        "sequential": False,
        "sampler": {"interval_s": 0.1, "sweeps": 400, "cpu_ms_per_sweep": 0.2, "error": None},
        "workers": workers,
    }


def test_packaged_references_name_card_date_versions_and_source() -> None:
    for doc in REFS:
        assert doc["card"] and doc["match"]
        for e in doc["entries"]:
            assert {"mode", "precision", "img_s", "date", "software", "source", "recipe"} <= set(e)
    doc, e = find_reference(REFS, CARD, "infer", "fp16", 224)
    assert e["img_s"] == pytest.approx(REF["infer_bf16amp_cl_compile"]["img_s"], abs=1)
    assert find_reference(REFS, CARD, "train", "fp32", 224)[1]["img_s"] == pytest.approx(
        REF["train_fp32_nchw_eager"]["img_s"], abs=1
    )
    assert find_reference(REFS, "NVIDIA A100-SXM4-80GB", "infer", "fp16", 224) is None


def test_a_healthy_node_passes() -> None:
    res = judge(_record([_worker(i) for i in range(4)]), references=REFS)
    assert exit_code(res) == EXIT_OK
    thr = one(res, "bench.infer.throughput", "gpu2")
    assert thr.status is Status.PASS and "1.44x" in thr.detail
    assert one(res, "bench.train.straggler", "gpu0").status is Status.PASS
    assert one(res, "bench.telemetry", "gpu1").status is Status.PASS  # sw_power_cap is allowed
    node = one(res, "bench.infer.node", "bench")
    assert node.observed == "288,000 img/s total"


def test_a_straggler_is_named_with_its_thermal_cause() -> None:
    hot = _tele(sm=1410, temp=91, reasons={"hw_thermal_slowdown": 0.42, "sw_power_cap": 0.3})
    workers = [_worker(0), _worker(1), _worker(2, train=TRAIN * 0.85, tele=hot), _worker(3)]
    res = judge(_record(workers), references=REFS)
    assert exit_code(res) == EXIT_FAIL
    s = one(res, "bench.train.straggler", "gpu2")
    assert s.status is Status.FAIL
    assert "gpu2 is a straggler: 15.0% below the median of the other GPUs, 16,500 img/s" in s.detail
    assert "thermal throttling (hardware): hw_thermal_slowdown in 42% of samples, max 92 C" in s.detail
    assert "SM clock median 1410 MHz vs 1980 MHz" in s.detail
    # still above the (conservative) reference, so that check passes; the others are not stragglers
    assert one(res, "bench.train.throughput", "gpu2").status is Status.PASS
    assert all(one(res, "bench.train.straggler", f"gpu{i}").status is Status.PASS for i in (0, 1, 3))
    assert one(res, "bench.telemetry", "gpu2").status is Status.FAIL


def test_straggler_tolerance_comes_from_the_spec() -> None:
    workers = [_worker(0), _worker(1, infer=INFER * 0.9), _worker(2)]
    assert (
        one(judge(_record(workers), references=REFS), "bench.infer.straggler", "gpu1").status is Status.FAIL
    )
    loose = BenchSpec(straggler_tolerance=0.12)
    assert (
        one(
            judge(_record(workers), references=REFS, bench_spec=loose), "bench.infer.straggler", "gpu1"
        ).status
        is Status.PASS
    )


def test_a_throttled_gpu_that_keeps_up_is_still_flagged() -> None:
    brake = _tele(reasons={"hw_power_brake_slowdown": 0.1})
    driver_hot = _tele(reasons={"sw_thermal_slowdown": 0.2})
    res = judge(_record([_worker(0, tele=brake), _worker(1, tele=driver_hot), _worker(2)]), references=REFS)
    t0, t1 = one(res, "bench.telemetry", "gpu0"), one(res, "bench.telemetry", "gpu1")
    assert t0.status is Status.FAIL and "hw_power_brake_slowdown 10%" in t0.detail
    # the driver's own thermal slowdown is a fault, as in `dlverify check` (dlverify.clocks)
    assert t1.status is Status.FAIL and "sw_thermal_slowdown 20%" in t1.detail
    assert one(res, "bench.infer.straggler", "gpu0").status is Status.PASS
    # the spec may allow a reason (ChecksSpec.allowed_clock_event_reasons), but never a fault
    synced = _tele(reasons={"sync_boost": 0.2})
    assert (
        one(judge(_record([_worker(0, tele=synced)]), references=REFS), "bench.telemetry", "gpu0").status
        is Status.WARN
    )
    allowed = judge(
        _record([_worker(0, tele=synced)]), references=REFS, allowed_reasons=("sync_boost", "sw_power_cap")
    )
    assert one(allowed, "bench.telemetry", "gpu0").status is Status.PASS
    still = judge(
        _record([_worker(0, tele=driver_hot)]),
        references=REFS,
        allowed_reasons=("sw_thermal_slowdown", "sw_power_cap"),
    )
    assert one(still, "bench.telemetry", "gpu0").status is Status.FAIL


def test_below_reference_fails_with_the_likely_cause() -> None:
    capped = _tele(power=400, limit=400, sm=1300, reasons={"sw_power_cap": 0.95})
    res = judge(_record([_worker(0, infer=38_000, tele=capped)]), references=REFS)
    r = one(res, "bench.infer.throughput", "gpu0")
    assert r.status is Status.FAIL and r.expected == ">= 42,575 img/s"
    assert "24.1% below the reference 50,088 img/s" in r.detail
    assert "at its power cap (400 W) in 95% of samples" in r.detail
    # a single GPU has no node median: skipped, with the reason
    s = one(res, "bench.infer.straggler", "gpu0")
    assert s.status is Status.SKIP and "only one GPU" in s.detail


def test_a_crashed_or_hung_worker_fails_its_gpu_and_the_others_are_judged() -> None:
    crashed = {
        "slot": 1,
        "index": 1,
        "label": "gpu1",
        "name": CARD,
        "status": "failed",
        "failure": {"kind": "oom", "error": "OutOfMemoryError: CUDA out of memory", "phase": "compile"},
        "telemetry": {"unavailable": "x"},
    }
    hung = {
        "slot": 2,
        "index": 2,
        "label": "gpu2",
        "name": CARD,
        "status": "failed",
        "failure": {"kind": "timeout", "error": "no result after 600 s (stuck in compile of train)"},
    }
    res = judge(_record([_worker(0), crashed, hung, _worker(3)]), references=REFS)
    w1, w2 = one(res, "bench.worker", "gpu1"), one(res, "bench.worker", "gpu2")
    assert w1.status is Status.FAIL and "gpu1 ran out of memory: OutOfMemoryError" in w1.detail
    assert w2.status is Status.FAIL and "hung (timeout)" in w2.detail
    assert not [r for r in res if r.group == "gpu1" and r.id != "bench.worker"]
    assert one(res, "bench.train.straggler", "gpu3").status is Status.PASS  # median of the survivors
    assert "2/4 GPU(s)" in one(res, "bench.train.node", "bench").detail


def test_a_missing_reference_is_a_skip_with_the_reason() -> None:
    res = judge(_record([_worker(0, name="NVIDIA L40S")]), references=REFS)
    r = one(res, "bench.train.throughput", "gpu0")
    assert r.status is Status.SKIP and "no reference throughput for 'NVIDIA L40S'" in r.detail
    assert exit_code(res) == EXIT_OK


def test_a_non_standard_run_is_not_compared_with_references() -> None:
    res = judge(_record([_worker(0)], compile=False), references=REFS)
    assert "no reference for this configuration" in one(res, "bench.infer.throughput", "gpu0").detail


def test_a_broken_step_is_not_a_result() -> None:
    res = judge(_record([_worker(0, guard_ok=False), _worker(1)]), references=REFS)
    c = one(res, "bench.train.correctness", "gpu0")
    assert c.status is Status.FAIL and "did not drop" in c.detail
    assert one(res, "bench.train.throughput", "gpu0").status is Status.SKIP
    # a broken GPU does not count in the node median
    assert one(res, "bench.train.straggler", "gpu1").status is Status.SKIP


def test_spec_floors() -> None:
    spec = BenchSpec(min_train_img_s=17_000, min_infer_img_s=60_000)
    res = judge(_record([_worker(0)]), references=REFS, bench_spec=spec)
    f = one(res, "bench.train.floor", "gpu0")
    assert f.status is Status.FAIL and "bench.min_train_img_s = 17,000: 2.9% short" in f.detail
    assert one(res, "bench.infer.floor", "gpu0").status is Status.PASS
    none = judge(_record([_worker(0)]), references=REFS, bench_spec=BenchSpec())
    assert "the spec sets no bench.min_train_img_s" in one(none, "bench.train.floor", "gpu0").detail


def test_likely_cause_names_starvation_and_power_limits() -> None:
    idle = _worker(0, tele=_tele(util=55, reasons={}))
    assert "busy only 55%" in likely_cause(idle, "train", [_worker(1)], ())
    low = _worker(0, tele=_tele(limit=500, reasons={}))
    assert "power limit 500 W vs 700 W" in likely_cause(low, "train", [_worker(1), _worker(2)], ())
    assert "nothing visible" in likely_cause(_worker(0, tele=_tele(reasons={})), "train", [_worker(1)], ())
    assert likely_cause({"telemetry": {"unavailable": "off"}}, "train", [], ()) == "no telemetry to tell why"


def test_replay_of_a_recorded_run_through_the_cli(tmp_path, capsys) -> None:
    rec = _record([_worker(0), _worker(1, train=TRAIN * 0.8, tele=_tele(reasons={"hw_slowdown": 0.5}))])
    doc = {"schema": "dlverify.report/1", "meta": {"bench": rec}}
    path = tmp_path / "run.json"
    path.write_text(json.dumps(doc))
    out = tmp_path / "judged.json"
    assert main(["bench", "--replay", str(path), "--format", "json", "-o", str(out)]) == EXIT_FAIL
    judged = json.loads(out.read_text())
    assert judged["exit_code"] == EXIT_FAIL and judged["meta"]["bench"]["workers"][1]["label"] == "gpu1"
    bad = {r["id"] for r in judged["results"] if r["status"] == "fail"}
    assert bad == {"bench.train.straggler", "bench.telemetry"}
    # the table shows the per-GPU summary, then the judged checks
    assert main(["bench", "--replay", str(path)]) == EXIT_FAIL
    text = capsys.readouterr().out
    assert "ResNet18 images/s per GPU" in text and "13,200 ±2.0%" in text and "FAILED" in text
    # junit for CI
    assert main(["bench", "--replay", str(path), "--format", "junit"]) == EXIT_FAIL
    assert '<testsuite name="gpu1"' in capsys.readouterr().out
    # a file that is not a recorded run is bad input
    broken = copy.deepcopy(rec)
    broken["schema"] = "something/9"
    path.write_text(json.dumps(broken))
    assert main(["bench", "--replay", str(path)]) == EXIT_USAGE
    assert "not a recorded bench run" in capsys.readouterr().err


def test_spec_floors_and_tolerances_through_the_cli(tmp_path, capsys) -> None:
    spec = (Path(__file__).parents[1] / "hwspec/examples/h100-sxm-80gb.yaml").read_text()
    spec_file = tmp_path / "hwspec.yaml"
    spec_file.write_text(spec + "\nbench:\n  min_infer_img_s: 80000\n  straggler_tolerance: 0.05\n")
    run = tmp_path / "run.json"
    run.write_text(json.dumps(_record([_worker(0), _worker(1, train=TRAIN * 0.94)])))
    out = tmp_path / "out.json"
    assert (
        main(["bench", "--replay", str(run), "--spec", str(spec_file), "--format", "json", "-o", str(out)])
        == EXIT_FAIL
    )
    res = {(r["group"], r["id"]): r for r in json.loads(out.read_text())["results"]}
    assert res[("gpu0", "bench.infer.floor")]["status"] == "fail"
    assert res[("gpu1", "bench.train.straggler")]["status"] == "fail"  # 6% below gpu0, tolerance 5%
    assert res[("gpu0", "bench.train.straggler")]["status"] == "pass"
    spec_file.write_text(spec + "\nbench:\n  min_infer_img_s: -3\n")
    assert main(["bench", "--replay", str(run), "--spec", str(spec_file)]) == EXIT_USAGE
    err = capsys.readouterr().err
    assert "problem in the spec" in err and "hwspec.yaml:" in err and "min_infer_img_s" in err


def test_a_real_h200_recording_replays_and_passes(tmp_path) -> None:
    """benchmarks/results holds a real `dlverify bench` run on an H200 (UUIDs masked): judged again
    with the packaged references it passes, and its telemetry (power-capped at 700 W) is as recorded."""
    rec = Path(__file__).parents[1] / "benchmarks/results/2026-11-28-h200-run1/bench_warm.json"
    out = tmp_path / "judged.json"
    assert main(["bench", "--replay", str(rec), "--format", "json", "-o", str(out)]) == EXIT_OK
    res = {(r["group"], r["id"]): r for r in json.loads(out.read_text())["results"]}
    infer = res[("gpu0", "bench.infer.throughput")]
    assert infer["status"] == "pass" and "(h200.json, 2026-11-28, batch 1024)" in infer["detail"]
    assert res[("gpu0", "bench.train.correctness")]["status"] == "pass"
    tele = res[("gpu0", "bench.telemetry")]
    assert tele["status"] == "pass" and " W" in tele["observed"]
    # the same run, as if the card were 20% slower: below the reference, with the power cap named
    doc = json.loads(rec.read_text())
    modes = doc["meta"]["bench"]["workers"][0]["result"]["modes"]
    modes["infer"]["img_s"] *= 0.8
    slow = tmp_path / "slow.json"
    slow.write_text(json.dumps(doc))
    assert main(["bench", "--replay", str(slow), "--format", "json", "-o", str(out)]) == EXIT_FAIL
    r = next(r for r in json.loads(out.read_text())["results"] if r["id"] == "bench.infer.throughput")
    assert r["status"] == "fail" and "at its power cap (700 W)" in r["detail"]


@pytest.mark.parametrize("allowed", [ChecksSpec().allowed_clock_event_reasons, tuple(clocks.NAMES)])
@pytest.mark.parametrize("reason", clocks.NAMES)
def test_check_and_bench_judge_a_clocks_event_reason_alike(reason: str, allowed: tuple[str, ...]) -> None:
    """One table (dlverify.clocks): a reason fails, warns or passes the same in `check` and `bench`."""
    checks = ChecksSpec(allowed_clock_event_reasons=allowed)
    spec = Spec(HardwareSpec(gpus=(GpuSpec(CARD),)), SoftwareSpec(), checks)
    snap = {"nvml": {"gpus": [{"index": 0, "name": CARD, "clocks_event_reasons": [reason]}]}, "host": {}}
    in_check = one(run_checks(spec, snap, only=("gpu",)), "gpu.clocks_event_reasons", "gpu0").status
    bench = judge(
        _record([_worker(0, tele=_tele(reasons={reason: 0.5}))]), references=REFS, allowed_reasons=allowed
    )
    assert one(bench, "bench.telemetry", "gpu0").status is in_check is clocks.severity(reason, allowed)
    assert (in_check is Status.FAIL) == (reason in clocks.FAULTS) == clocks.BY_NAME[reason].fault
