"""`dlverify check --format prometheus`: node_exporter textfile format, parsed by prometheus_client (and by
promtool where installed); one series per check and GPU with dcgm-exporter-joinable labels; atomic -o."""

from __future__ import annotations

import copy
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import nvml_replay
import pytest
import replay_host
from prometheus_client.parser import text_string_to_metric_families

from dlverify.cli import main
from dlverify.metrics import STATUS_VALUE, render_prometheus
from dlverify.results import CheckResult, Status

REPO = Path(__file__).resolve().parents[1]
H100_SPEC = REPO / "hwspec/examples/h100-sxm-80gb.yaml"


def _families(text: str) -> dict[str, list]:
    return {f.name: f.samples for f in text_string_to_metric_families(text)}


def _h100_snapshot_file(monkeypatch, tmp_path: Path, recording: dict | None = None) -> Path:
    from dlverify.hwspec.loader import load_spec

    snap = replay_host.h100_snapshot(monkeypatch, tmp_path, spec=load_spec(H100_SPEC), recording=recording)
    f = tmp_path / "h100.json"
    f.write_text(json.dumps(snap))
    return f


def test_status_values_are_the_documented_ones() -> None:
    assert STATUS_VALUE == {Status.PASS: 0, Status.WARN: 1, Status.FAIL: 2, Status.SKIP: 3}


def test_every_result_is_one_series_with_gpu_and_uuid_labels_and_escaped_values() -> None:
    results = [
        CheckResult("host.os", "host", "OS", Status.PASS),
        CheckResult("gpu.ecc.volatile_uncorrected", "gpu0", "ECC", Status.FAIL, detail="3 errors"),
        CheckResult("gpu.ecc.volatile_uncorrected", "gpu1", "ECC", Status.PASS),
        CheckResult("gpu.nvlink", "gpu1", "NVLink", Status.SKIP, detail="none"),
        CheckResult('odd"id\\x', "host", "odd", Status.WARN, detail="w"),
    ]
    meta = {"gpus": {"0": "GPU-aaa", "1": "GPU-bbb"}, "driver_version": "535.54.03", "elapsed_seconds": 1.5}
    fam = _families(render_prometheus(results, command="check x", meta=meta, now=1700000000.25))
    got = {(s.labels["check"], s.labels["group"]): s for s in fam["dlverify_check_status"]}
    assert len(got) == 5
    ecc0 = got[("gpu.ecc.volatile_uncorrected", "gpu0")]
    assert ecc0.value == 2 and ecc0.labels["gpu"] == "0" and ecc0.labels["uuid"] == "GPU-aaa"
    assert got[("gpu.ecc.volatile_uncorrected", "gpu1")].labels["uuid"] == "GPU-bbb"
    assert got[("gpu.nvlink", "gpu1")].value == 3
    assert "gpu" not in got[("host.os", "host")].labels and got[("host.os", "host")].value == 0
    assert got[('odd"id\\x', "host")].value == 1
    counts = {s.labels["status"]: s.value for s in fam["dlverify_check_results"]}
    assert counts == {"pass": 2, "warn": 1, "fail": 1, "skip": 1}
    assert fam["dlverify_check_exit_code"][0].value == 1
    assert fam["dlverify_check_last_run_timestamp_seconds"][0].value == 1700000000.25
    assert fam["dlverify_check_duration_seconds"][0].value == 1.5
    assert fam["dlverify_info"][0].labels["driver"] == "535.54.03"


def test_check_on_the_replayed_h100_writes_the_textfile(monkeypatch, tmp_path: Path) -> None:
    snap = _h100_snapshot_file(monkeypatch, tmp_path)
    out = tmp_path / "dlverify.prom"
    before = time.time()
    rc = main(
        [
            "check",
            str(H100_SPEC),
            "--snapshot",
            str(snap),
            "--only",
            "gpu",
            "--format",
            "prometheus",
            "-o",
            str(out),
        ]
    )
    assert rc == 0
    fam = _families(out.read_text())
    uuid = nvml_replay.load_recording(nvml_replay.CARDS["h100"])["gpus"][0]["uuid"]
    gpu0 = [s for s in fam["dlverify_check_status"] if s.labels.get("gpu") == "0"]
    assert gpu0 and all(s.labels["uuid"] == uuid for s in gpu0)
    assert all(s.value in (0, 3) for s in fam["dlverify_check_status"])
    assert fam["dlverify_check_exit_code"][0].value == 0
    assert fam["dlverify_check_last_run_timestamp_seconds"][0].value >= before - 1
    assert oct(out.stat().st_mode & 0o777) == "0o644"
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".dlverify.prom")] == []


def test_an_uncorrectable_ecc_error_is_a_2_on_its_gpu(monkeypatch, tmp_path: Path, capsys) -> None:
    rec = copy.deepcopy(nvml_replay.load_recording(nvml_replay.CARDS["h100"]))
    rec["gpus"][0]["ecc_volatile_uncorrected"] = 3
    snap = _h100_snapshot_file(monkeypatch, tmp_path, recording=rec)
    rc = main(["check", str(H100_SPEC), "--snapshot", str(snap), "--only", "gpu", "--format", "prometheus"])
    fam = _families(capsys.readouterr().out)
    assert rc == 1
    failing = {s.labels["check"] for s in fam["dlverify_check_status"] if s.value == 2}
    assert any(c.startswith("gpu.ecc") for c in failing), failing
    assert fam["dlverify_check_exit_code"][0].value == 1


def _read_only_fs(*_a, **_k):
    raise OSError(30, "Read-only file system")


def test_a_missing_textfile_dir_is_exit_2(monkeypatch, tmp_path: Path, capsys) -> None:
    snap = _h100_snapshot_file(monkeypatch, tmp_path)
    out = tmp_path / "no-such-dir" / "dlverify.prom"
    rc = main(["check", str(H100_SPEC), "--snapshot", str(snap), "--format", "prometheus", "-o", str(out)])
    assert rc == 2 and f"{out}: cannot write: No such file or directory" in capsys.readouterr().err
    assert not out.parent.exists()


def test_an_unwritable_textfile_dir_is_exit_2_and_the_old_file_stays(
    monkeypatch, tmp_path: Path, capsys
) -> None:
    snap = _h100_snapshot_file(monkeypatch, tmp_path)
    d = tmp_path / "textfile"
    d.mkdir()
    old = d / "dlverify.prom"
    old.write_text("# old\n")
    d.chmod(0o555)
    if os.geteuid() == 0:  # root writes into a read-only directory: a read-only file system stands in
        monkeypatch.setattr("tempfile.mkstemp", _read_only_fs)
    try:
        rc = main(
            [
                "check",
                str(H100_SPEC),
                "--snapshot",
                str(snap),
                "--only",
                "gpu",
                "--format",
                "prometheus",
                "-o",
                str(old),
            ]
        )
    finally:
        d.chmod(0o755)
    assert rc == 2
    assert "cannot write" in capsys.readouterr().err
    assert sorted(p.name for p in d.iterdir()) == ["dlverify.prom"] and old.read_text() == "# old\n"


def test_a_failed_write_removes_its_temp_file(monkeypatch, tmp_path: Path, capsys) -> None:
    snap = _h100_snapshot_file(monkeypatch, tmp_path)
    d = tmp_path / "textfile"
    d.mkdir()
    target = d / "dlverify.prom"
    target.mkdir()  # a directory where the file should go: the rename fails after the temp file is written
    rc = main(
        [
            "check",
            str(H100_SPEC),
            "--snapshot",
            str(snap),
            "--only",
            "gpu",
            "--format",
            "prometheus",
            "-o",
            str(target),
        ]
    )
    assert rc == 2 and "cannot write" in capsys.readouterr().err
    assert [p.name for p in d.iterdir()] == ["dlverify.prom"]


PROMTOOL = shutil.which("promtool") or shutil.which("promtool", path=str(Path(sys.executable).parent))


@pytest.mark.skipif(PROMTOOL is None, reason="promtool not installed (make host-tools; Molecule runs it)")
def test_promtool_accepts_the_textfile(tmp_path: Path) -> None:
    results = [
        CheckResult("gpu.ecc", "gpu0", "ECC", Status.FAIL, detail="x"),
        CheckResult("host.os", "host", "OS", Status.PASS),
    ]
    text = render_prometheus(results, command="check", meta={"gpus": {"0": "GPU-1"}, "elapsed_seconds": 0.5})
    proc = subprocess.run([str(PROMTOOL), "check", "metrics"], input=text, text=True, capture_output=True)
    assert proc.returncode == 0, proc.stderr
