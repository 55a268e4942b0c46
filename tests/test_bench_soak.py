"""`--soak`: a series of windows of real load, judged for stability against the spec's bench thresholds."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from dlverify.benchmarks.judge_soak import judge_soak
from dlverify.benchmarks.soak import parse_duration, stability
from dlverify.cli import main
from dlverify.hwspec.errors import SpecError
from dlverify.hwspec.lint import lint
from dlverify.hwspec.loader import load_spec_text
from dlverify.hwspec.model import BenchSpec
from dlverify.results import EXIT_USAGE, Recorder

ROOT = Path(__file__).parents[1]
SPEC = (ROOT / "hwspec/examples/h100-sxm-80gb.yaml").read_text()


def _worker(rates: list[float], reasons: dict[int, dict[str, float]] | None = None) -> dict:
    windows = [
        {
            "t_start": i,
            "t_end": i + 1,
            "img_s": r,
            "telemetry": {"reasons": (reasons or {}).get(i, {"gpu_idle": 0.0})},
        }
        for i, r in enumerate(rates)
    ]
    soak = {"duration_s": 60.0 * len(rates), "window_s": 60.0, "windows": windows, **stability(windows)}
    return {"status": "ok", "result": {"modes": {"train": {"img_s": rates[0], "soak": soak}}}}


def _verdict(worker: dict, spec: BenchSpec | None = None) -> tuple[str, str]:
    rec = Recorder("bench")
    judge_soak(rec.for_group("gpu0"), worker, spec or BenchSpec())
    (res,) = rec.results
    assert res.id == "bench.soak.stability"
    return res.status.value, str(res.detail)


def test_a_steady_gpu_passes_and_each_fault_fails_by_name() -> None:
    assert _verdict(_worker([19000, 19050, 18990, 19020]))[0] == "pass"
    status, why = _verdict(_worker([19000, 18500, 17000, 16000]))  # heats up, slows down: -15.8%
    assert status == "fail" and "fell 15.8%" in why
    status, why = _verdict(_worker([19000, 15000, 19000, 19000]))  # one sagging window: spread, not drift
    assert status == "fail" and "spread" in why and "fell" not in why
    status, why = _verdict(_worker([19000] * 4, {2: {"hw_power_brake_slowdown": 0.2}}))
    assert status == "fail" and "window 3/4: hw_power_brake_slowdown 20.0%" in why
    # the thresholds are the spec's
    assert (
        _verdict(_worker([19000, 18500, 17000, 16000]), BenchSpec(soak_max_drift=0.2, soak_max_cv=0.2))[0]
        == "pass"
    )
    assert _verdict(_worker([19000]))[0] == "warn"  # one window: nothing to compare


def test_soak_keys_load_with_defaults_and_bad_values_name_file_line_and_key() -> None:
    spec = load_spec_text(SPEC + "\nbench:\n  soak_window_s: 30\n  soak_max_drift: 0.1\n", "s.yaml")
    assert (spec.bench.soak_window_s, spec.bench.soak_max_drift, spec.bench.soak_max_cv) == (30, 0.1, 0.03)
    lines = len(SPEC.splitlines())
    with pytest.raises(SpecError) as exc:
        load_spec_text(SPEC + "\nbench:\n  soak_max_cv: 2\n", "s.yaml")
    assert f"s.yaml:{lines + 3}" in str(exc.value) and "soak_max_cv" in str(exc.value)
    linted = lint(load_spec_text(SPEC + "\nbench:\n  soak_max_drift: 0\n", "s.yaml"))
    warned = [r for r in linted if r.id == "spec.bench.soak"]
    assert warned and warned[0].status.value == "warn" and "fails every --soak run" in str(warned[0].detail)
    assert not [r for r in lint(load_spec_text(SPEC, "s.yaml")) if r.id == "spec.bench.soak"]


@pytest.mark.parametrize(
    ("text", "seconds"), [("90", 90), ("90s", 90), ("10m", 600), ("1h", 3600), ("0.5", 0.5)]
)
def test_durations(text: str, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "ten", "0", "-5m", "9999h"])
def test_bad_durations_exit_2(text: str, capsys) -> None:
    assert main(["bench", "--device", "cpu", f"--soak={text}"]) == EXIT_USAGE
    assert "--soak" in capsys.readouterr().err


def test_a_short_soak_on_the_cpu_records_a_series_and_judges_it(tmp_path: Path) -> None:
    """Real torch on the CPU: 4 s of training load in 0.5 s windows (the spec's soak_window_s)."""
    pytest.importorskip("torch")
    spec = tmp_path / "hwspec.yaml"
    # loose limits: a shared CI CPU is not a steady GPU; the test is that the series exists and is judged
    spec.write_text(SPEC + "\nbench:\n  soak_window_s: 0.5\n  soak_max_drift: 0.95\n  soak_max_cv: 0.95\n")
    out = tmp_path / "bench.json"
    argv = ["bench", "--device", "cpu", "--mode", "train", "--image-size", "32", "--batch-size", "2"]
    argv += [
        "--duration",
        "0.2",
        "--soak",
        "4s",
        "--spec",
        str(spec),
        "--format",
        "json",
        "-o",
        str(out),
        "-q",
    ]
    main(argv)
    doc = json.loads(out.read_text())
    soak = doc["meta"]["bench"]["workers"][0]["result"]["modes"]["train"]["soak"]
    assert soak["window_s"] == 0.5 and soak["duration_s"] == 4.0
    assert len(soak["windows"]) >= 2 and all(
        w["img_s"] > 0 and w["t_end"] > w["t_start"] for w in soak["windows"]
    )
    assert soak["windows"][-1]["t_end"] - soak["windows"][0]["t_start"] >= 4.0
    res = {(r["group"], r["id"]): r for r in doc["results"]}
    assert res[("cpu0", "bench.soak.stability")]["status"] == "pass", res[("cpu0", "bench.soak.stability")]
