"""`dlverify check` / `dlverify snapshot` end to end on this machine (no GPU), and their bad inputs."""

from __future__ import annotations

import json
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
import replay_host

from dlverify.cli import main
from dlverify.report import JSON_SCHEMA_ID

REPO = Path(__file__).resolve().parents[1]
HWSPEC = str(REPO / "hwspec.yaml")
H100_SPEC = REPO / "hwspec/examples/h100-sxm-80gb.yaml"


def _nvidia_present() -> bool:
    import shutil

    return shutil.which("nvidia-smi") is not None


def _json(capsys, argv: list[str]) -> tuple[int, dict, str]:
    rc = main(argv)
    out = capsys.readouterr()
    return rc, json.loads(out.out), out.err


@pytest.mark.skipif(_nvidia_present(), reason="checks this machine's no-GPU truth")
def test_check_on_this_machine_fails_gpus_clearly_and_judges_host_truthfully(capsys) -> None:
    rc, doc, err = _json(capsys, ["check", HWSPEC, "--format", "json"])
    assert rc == 1 and err == ""
    assert doc["schema"] == JSON_SCHEMA_ID and doc["exit_code"] == 1
    ids = {r["id"]: r for r in doc["results"]}
    gpu = ids["gpu.nvml"]
    assert gpu["status"] == "fail"
    assert "NVML library (libnvidia-ml.so.1) not found" in gpu["detail"]
    assert ids["gpu.count"]["status"] == "fail" and ids["gpu.count"]["expected"] == "4"
    os_release = Path("/etc/os-release").read_text()
    if 'ID="ubuntu"' not in os_release and "ID=ubuntu" not in os_release:
        assert ids["host.os"]["status"] == "fail"
        assert ids["host.os"]["expected"] == "Ubuntu 22.04"
    # the spec's conda env is not on this machine: said, not crashed
    assert ids["software.python"]["status"] == "fail"
    assert "does not exist" in ids["software.python"]["detail"]
    assert [g for g in dict.fromkeys(r["group"] for r in doc["results"])] == ["host", "gpu", "software"]
    assert doc["meta"]["snapshot"] == "live"


def test_snapshot_then_offline_check_equals_live(tmp_path: Path, capsys) -> None:
    snap = tmp_path / "snap.json"
    assert main(["snapshot", "--spec", HWSPEC, "-o", str(snap)]) == 0
    doc = json.loads(snap.read_text())
    assert doc["schema"] == "dlverify.snapshot/1"
    rc_off, off, _ = _json(capsys, ["check", HWSPEC, "--snapshot", str(snap), "--format", "json"])
    rc_live, live, _ = _json(capsys, ["check", HWSPEC, "--format", "json"])
    assert rc_off == rc_live
    assert off["results"] == live["results"]
    assert off["meta"]["snapshot"] == str(snap)


def test_replayed_h100_snapshot_checked_offline_with_the_example_spec(monkeypatch, tmp_path, capsys) -> None:
    """The H100 replay recorded as a snapshot file, judged offline with hwspec/examples/h100-sxm-80gb.yaml."""
    if not H100_SPEC.exists():
        pytest.skip("the H100 example spec is not in this tree")
    from dlverify.hwspec.loader import load_spec

    snap = replay_host.h100_snapshot(monkeypatch, tmp_path, spec=load_spec(H100_SPEC))
    f = tmp_path / "h100.json"
    f.write_text(json.dumps(snap))
    rc, doc, _ = _json(
        capsys, ["check", str(H100_SPEC), "--snapshot", str(f), "--only", "gpu", "--format", "json"]
    )
    bad = [r for r in doc["results"] if r["status"] in ("fail", "warn")]
    assert rc == 0 and not bad, bad
    assert {r["group"] for r in doc["results"]} == {"gpu", "gpu0"}


def test_only_and_no_env(capsys) -> None:
    _, doc, _ = _json(capsys, ["check", HWSPEC, "--only", "host", "--format", "json"])
    assert {r["group"] for r in doc["results"]} == {"host"}
    assert doc["meta"]["probe_seconds"].keys() == {"host"}
    _, doc, _ = _json(capsys, ["check", HWSPEC, "--only", "software", "--no-env", "--format", "json"])
    ids = {r["id"]: r for r in doc["results"]}
    assert ids["software.torch"]["status"] == "skip" and "--no-env" in ids["software.torch"]["detail"]


def test_junit_and_table_and_output_file(tmp_path: Path, capsys) -> None:
    out = tmp_path / "r.xml"
    rc = main(["check", HWSPEC, "--format", "junit", "-o", str(out), "--no-env"])
    assert rc in (0, 1)
    suites = ET.fromstring(out.read_text())
    assert {s.get("name") for s in suites} >= {"host", "software"}
    rc = main(["check", HWSPEC, "--no-env", "--only", "host"])
    text = capsys.readouterr().out
    assert "host" in text and ("OK:" in text or "FAILED:" in text)


@pytest.mark.parametrize(
    ("content", "phrase"),
    [
        (None, "cannot read snapshot"),
        ("{not json", "not valid JSON"),
        ('{"schema": "something/1"}', "not a dlverify snapshot"),
        ('{"schema": "dlverify.snapshot/9", "nvml": {}, "host": {}, "software": {}}', "not supported"),
        ('{"schema": "dlverify.snapshot/1", "nvml": {}}', "lacks the 'host' section"),
        ("[1, 2]", "expected a JSON object"),
    ],
)
def test_bad_snapshot_exits_2_naming_the_file(tmp_path: Path, capsys, content, phrase) -> None:
    f = tmp_path / "snap.json"
    if content is not None:
        f.write_text(content)
    rc = main(["check", HWSPEC, "--snapshot", str(f)])
    err = capsys.readouterr().err
    assert rc == 2
    assert str(f) in err and phrase in err


def _snap(**sections: dict) -> dict:
    doc = {"schema": "dlverify.snapshot/1", "nvml": {}, "host": {}, "software": {}}
    doc.update(sections)
    return doc


@pytest.mark.parametrize(
    ("doc", "field"),
    [
        (_snap(nvml={"driver_version": 5}), "nvml.driver_version: expected string"),
        (_snap(nvml={"gpu_count": "two"}), "nvml.gpu_count: expected number"),
        (_snap(nvml={"gpus": [{"name": 3}]}), "nvml.gpus[0].name: expected string"),
        (_snap(nvml={"gpus": [7]}), "nvml.gpus[0]: expected object"),
        (_snap(nvml={"gpus": [{"temperature_c": "hot"}]}), "nvml.gpus[0].temperature_c: expected number"),
        # issue 10: "false" read as MIG enabled; NaN passed the temperature check
        (
            _snap(nvml={"gpus": [{"mig_mode_current": "false"}]}),
            "nvml.gpus[0].mig_mode_current: expected true/false",
        ),
        (_snap(host={"os": [], "cpu": "x"}), "host.os: expected object"),
        (_snap(software={"python_env": 3}), "software.python_env: expected object"),
    ],
)
def test_malformed_snapshot_is_exit_2_naming_the_field(tmp_path: Path, capsys, doc: dict, field: str) -> None:
    f = tmp_path / "snap.json"
    f.write_text(json.dumps(doc))
    rc = main(["check", HWSPEC, "--snapshot", str(f), "--format", "json"])
    err = capsys.readouterr().err
    assert rc == 2 and f"{f}: {field}" in err, err


def test_nan_temperature_is_refused_naming_the_field(tmp_path: Path, capsys) -> None:
    f = tmp_path / "snap.json"
    f.write_text(json.dumps(_snap(nvml={"gpus": [{"temperature_c": float("nan")}]})))  # json writes NaN
    assert main(["check", HWSPEC, "--snapshot", str(f)]) == 2
    assert "nvml.gpus[0].temperature_c: NaN is not a value" in capsys.readouterr().err


def test_bad_spec_exits_2_with_location(tmp_path: Path, capsys) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("hardware:\n  gpu: [\n")
    rc = main(["check", str(bad)])
    err = capsys.readouterr().err
    assert rc == 2 and str(bad) in err
    rc = main(["check", str(tmp_path / "missing.yaml")])
    assert rc == 2 and "missing.yaml" in capsys.readouterr().err


def test_usage_errors_exit_2(capsys) -> None:
    with pytest.raises(SystemExit) as e:
        main(["check", HWSPEC, "--only", "gpu,disks"])
    assert e.value.code == 2
    assert "unknown area disks" in capsys.readouterr().err


def test_console_entry_never_tracebacks(tmp_path: Path) -> None:
    f = tmp_path / "snap.json"
    f.write_text("{}")
    proc = subprocess.run(
        [sys.executable, "-m", "dlverify.cli", "check", HWSPEC, "--snapshot", str(f)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr and "not a dlverify snapshot" in proc.stderr


def test_a_snapshot_of_another_env_is_not_judged_as_the_specs_env(monkeypatch, tmp_path, capsys) -> None:
    """Issue 18: `dlverify snapshot` without --spec asks python3 on PATH; `check SPEC --snapshot` then judged
    that interpreter's torch as the spec's env. The snapshot records which interpreter it asked."""
    from dlverify.hwspec import load_spec

    spec = load_spec(H100_SPEC)
    snap = replay_host.h100_snapshot(monkeypatch, tmp_path, spec=spec)
    asked = snap["python_env_interpreter"]
    assert "/bin/python" in asked and snap["software"]["python_env"]["torch"]

    def judge(interpreter: str) -> dict:
        f = tmp_path / "snap.json"
        f.write_text(json.dumps({**snap, "python_env_interpreter": interpreter}))
        _rc, doc, _err = _json(
            capsys, ["check", str(H100_SPEC), "--snapshot", str(f), "--only", "software", "--format", "json"]
        )
        return {r["id"]: r for r in doc["results"]}

    # the snapshot's env stands in for the spec's (the replay moved it under a fake root): judged as data
    monkeypatch.setattr("dlverify.snapshot.env_interpreter", lambda _spec: asked)
    same = judge(asked)
    assert same["software.torch"]["status"] == "pass", same["software.torch"]
    # the same snapshot taken without --spec: python3 on PATH, another env
    other = judge("/usr/bin/python3")
    assert other["software.torch"]["status"] == "fail"
    assert "the snapshot probed /usr/bin/python3" in other["software.python"]["detail"]
    assert "dlverify snapshot --spec SPEC" in other["software.python"]["detail"]
