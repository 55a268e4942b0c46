"""`dlverify bench --format prometheus`: the real H200 bench record (benchmarks/results/, replayed without
a GPU) as node_exporter textfile metrics, parsed with prometheus_client (and promtool where installed):
per-GPU images/s with dcgm-exporter's `gpu`/`UUID` labels, written atomically, nothing exported that the
bench does not stand behind."""

from __future__ import annotations

import copy
import datetime
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from dlverify.cli import main
from dlverify.metrics import render_prometheus
from dlverify.metrics_bench import render_bench_prometheus
from dlverify.results import CheckResult, Status

REPO = Path(__file__).resolve().parents[1]
H200_RUN = REPO / "benchmarks/results/2026-11-28-h200-run1/bench_warm.json"
UUID = "GPU-00000000-1111-2222-3333-444444444444"


def _record() -> dict:
    return json.loads(H200_RUN.read_text())["meta"]["bench"]


def _families(text: str) -> dict[str, list]:
    return {f.name: f.samples for f in text_string_to_metric_families(text)}


def _replay(tmp_path: Path, record: dict, capsys) -> tuple[int, dict[str, list], Path]:
    rec = tmp_path / "run.json"
    rec.write_text(json.dumps(record))
    out = tmp_path / "textfile" / "dlverify-bench.prom"
    out.parent.mkdir(exist_ok=True)
    rc = main(["bench", "--replay", str(rec), "--format", "prometheus", "-o", str(out)])
    capsys.readouterr()
    return rc, _families(out.read_text()), out


def _one(samples: list, **labels: str):
    hits = [s for s in samples if all(s.labels.get(k) == v for k, v in labels.items())]
    assert len(hits) == 1, (labels, samples)
    return hits[0]


def test_the_recorded_h200_run_exports_its_images_per_second_per_gpu(tmp_path: Path, capsys) -> None:
    record = _record()
    rc, fam, out = _replay(tmp_path, record, capsys)
    assert rc == 0
    modes = record["workers"][0]["result"]["modes"]
    img = fam["dlverify_bench_images_per_second"]
    assert len(img) == 2
    for mode in ("train", "infer"):
        s = _one(img, mode=mode)
        # dcgm-exporter's own label names, so `on(UUID)` joins the GPU's telemetry
        assert s.labels["gpu"] == "0" and s.labels["UUID"] == UUID
        assert s.labels["precision"] == modes[mode]["precision"]
        assert s.labels["batch_size"] == str(modes[mode]["batch_size"])
        assert s.value == pytest.approx(modes[mode]["img_s"])
    assert _one(fam["dlverify_bench_check_status"], check="bench.train.throughput").labels["UUID"] == UUID
    assert fam["dlverify_bench_exit_code"][0].value == 0
    assert fam["dlverify_bench_duration_seconds"][0].value == pytest.approx(record["wall_s"])
    started = datetime.datetime(2026, 11, 28, 5, 20, 31, tzinfo=datetime.timezone.utc).timestamp()
    assert record["started_at"] == "2026-11-28T05:20:31+00:00"
    assert fam["dlverify_bench_last_run_timestamp_seconds"][0].value == pytest.approx(
        started + record["wall_s"]
    )
    assert _one(fam["dlverify_bench_info"]).labels["torch"] == "2.11.0+cu130"
    assert oct(out.stat().st_mode & 0o777) == "0o644"
    assert [p.name for p in out.parent.iterdir()] == ["dlverify-bench.prom"]  # no temp file left


def test_suites_and_collectives_are_exported_per_gpu_and_per_node(tmp_path: Path, capsys) -> None:
    """The H200 record with the bandwidth suites added (derived: values of the size the H200 reaches)."""
    record = _record()
    suites = {"h2d": 55.1, "d2h": 56.2, "hbm": 4100.0, "matmul": 760.0}
    record["workers"][0]["result"]["suites"] = {k: {"value": v, "unit": "GB/s"} for k, v in suites.items()}
    record["collectives"] = {
        "world_size": 1,
        "backend": "nccl",
        "allreduce": {"busbw_gb_s": 0.0},
        "allgather": {"busbw_gb_s": 0.0},
    }
    _rc, fam, _ = _replay(tmp_path, record, capsys)
    bw = fam["dlverify_bench_bandwidth_gigabytes_per_second"]
    for key in ("h2d", "d2h", "hbm"):
        s = _one(bw, suite=key)
        assert (s.labels["gpu"], s.labels["UUID"], s.value) == ("0", UUID, suites[key])
    assert _one(fam["dlverify_bench_matmul_teraflops"], UUID=UUID).value == 760.0
    bus = fam["dlverify_bench_bus_bandwidth_gigabytes_per_second"]
    assert {s.labels["collective"] for s in bus} == {"allreduce", "allgather"}
    assert _one(bus, collective="allreduce").labels == {
        "collective": "allreduce",
        "backend": "nccl",
        "gpus": "1",
    }


def test_a_failed_guard_or_a_crashed_worker_exports_no_throughput(tmp_path: Path, capsys) -> None:
    record = _record()
    second = copy.deepcopy(record["workers"][0])
    second.update(index=1, slot=1, label="gpu1", uuid="GPU-2", status="crashed", result=None)
    record["workers"].append(second)
    record["workers"][0]["result"]["modes"]["train"]["guard"] = {"ok": False, "why": "loss did not fall"}
    rc, fam, _ = _replay(tmp_path, record, capsys)
    assert rc == 1
    img = fam["dlverify_bench_images_per_second"]
    assert [(s.labels["gpu"], s.labels["mode"]) for s in img] == [("0", "infer")]
    assert _one(fam["dlverify_bench_check_status"], check="bench.worker", gpu="1").value == 2
    assert _one(fam["dlverify_bench_check_status"], check="bench.worker", gpu="1").labels["UUID"] == "GPU-2"
    assert fam["dlverify_bench_exit_code"][0].value == 1


def test_a_failed_write_is_exit_2_and_leaves_nothing_behind(tmp_path: Path, capsys) -> None:
    """A directory where the file should go: the rename fails after the temp file was written (the same
    atomic writer as `check`, whose read-only and missing-directory cases tests/test_metrics.py covers)."""
    rec = tmp_path / "run.json"
    rec.write_text(json.dumps(_record()))
    d = tmp_path / "textfile"
    target = d / "dlverify-bench.prom"
    target.mkdir(parents=True)
    rc = main(["bench", "--replay", str(rec), "--format", "prometheus", "-o", str(target)])
    assert rc == 2 and f"{target}: cannot write" in capsys.readouterr().err
    assert [p.name for p in d.iterdir()] == ["dlverify-bench.prom"] and target.is_dir()


def test_bench_and_check_textfiles_share_no_family() -> None:
    """node_exporter reads both files of the textfile directory: a family defined twice is a scrape error."""
    check = render_prometheus([CheckResult("gpu.ecc", "gpu0", "ECC", Status.PASS)], command="check")
    bench = render_bench_prometheus([CheckResult("bench.worker", "gpu0", "w", Status.PASS)], _record())
    assert not set(_families(check)) & set(_families(bench))
    assert _families(check + bench)  # one exposition, as the collector merges them


PROMTOOL = shutil.which("promtool") or shutil.which("promtool", path=str(Path(sys.executable).parent))


@pytest.mark.skipif(PROMTOOL is None, reason="promtool not installed (make host-tools; Molecule runs it)")
def test_promtool_accepts_the_bench_textfile() -> None:
    text = render_bench_prometheus(
        [CheckResult("bench.worker", "gpu0", "w", Status.FAIL, detail="crashed")], _record()
    )
    proc = subprocess.run(
        [str(PROMTOOL), "check", "metrics"], input=text, text=True, capture_output=True, check=False
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
