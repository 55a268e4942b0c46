"""`dlverify fleet report` on synthetic fleets derived from the real H100/H200 recordings
(tests/fleet_synth.py): every injected fault is named, with its kind, and nothing else is."""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import fleet_synth as fs
import pytest

from dlverify.cli import main

REPO = Path(__file__).resolve().parents[1]
# the faults of the standard fleet: (host, section, finding id)
EXPECTED = {
    ("h100-007", "outlier", "fleet.outlier.train"),
    ("h100-007", "outlier", "fleet.outlier.infer"),
    ("h100-007", "failing", "bench.train.straggler"),
    ("h100-007", "failing", "bench.infer.straggler"),
    ("h100-007", "failing", "bench.train.throughput"),  # the real bench judge: below the card's reference
    ("h100-007", "failing", "bench.infer.throughput"),
    ("h100-007", "failing", "bench.telemetry"),  # ... and hw_thermal_slowdown in 62% of samples
    ("h100-042", "drift", "fleet.drift.driver"),
    ("h100-042", "failing", "gpu.driver"),
    ("h200-011", "health", "fleet.xid"),
    ("h200-011", "failing", "gpu.xid"),
    ("h200-023", "unreachable", "fleet.unreachable"),
}


@pytest.fixture(scope="session")
def types(tmp_path_factory: pytest.TempPathFactory) -> dict[str, fs.HostType]:
    tmp = tmp_path_factory.mktemp("types")
    with pytest.MonkeyPatch.context() as mp:
        return {"h100": fs.host_type(mp, tmp, "h100", 8), "h200": fs.host_type(mp, tmp, "h200", 1)}


def standard_hosts(types: dict[str, fs.HostType], n100: int = 80, n200: int = 40) -> list[fs.Host]:
    """120 hosts: 80 8-GPU H100 boxes and 40 single H200s, with four faults."""
    hosts = [fs.Host(f"h100-{i:03d}", types["h100"]) for i in range(n100)]
    hosts += [fs.Host(f"h200-{i:03d}", types["h200"]) for i in range(n200)]
    by = {h.name: h for h in hosts}
    slow = by["h100-007"]
    slow.bench = fs.rejudge(fs.slow_gpu(fs.jitter(types["h100"].bench, slow.name), gpu=5))
    by["h100-042"].snapshot = fs.drifted_driver(types["h100"].snapshot)
    by["h200-011"].snapshot = fs.with_xid(types["h200"].snapshot)
    by["h200-023"].unreachable = "Failed to connect to the host via ssh: Connection timed out"
    return hosts


@pytest.fixture(scope="session")
def fleet_dir(types: dict[str, fs.HostType], tmp_path_factory: pytest.TempPathFactory) -> Path:
    return fs.write_fleet(tmp_path_factory.mktemp("fleet") / "run", standard_hosts(types))


def report(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, Any, str]:
    rc = main(["fleet", "report", *args])
    out, err = capsys.readouterr()
    return rc, (json.loads(out) if "json" in args else out), err


def named(doc: dict[str, Any]) -> set[tuple[str, str, str]]:
    return {(f["host"], f["section"], f["id"]) for f in doc["findings"]}


def test_the_fleet_report_names_exactly_the_injected_faults(fleet_dir: Path, capsys) -> None:
    rc, doc, err = report(capsys, str(fleet_dir), "--format", "json")
    assert rc == 1 and err == ""
    assert doc["schema"] == "dlverify.fleet/1" and doc["exit_code"] == 1
    assert named(doc) == EXPECTED
    assert doc["summary"] == {
        "hosts": 120,
        "ok": 116,
        "failing": 3,
        "unreachable": 1,
        "no_result": 0,
        "findings": len(EXPECTED),
    }
    states = {h["name"]: h["state"] for h in doc["hosts"]}
    assert {h for h, s in states.items() if s != "ok"} == {"h100-007", "h100-042", "h200-011", "h200-023"}
    assert states["h200-023"] == "unreachable"  # listed apart from the failing hosts
    keys = {g["key"]: len(g["hosts"]) for g in doc["groups"]}
    assert keys == {
        "NVIDIA H100 80GB HBM3 x8, spec h100-x8.yaml": 80,
        "NVIDIA H200 x1, spec h200-x1.yaml": 39,
    }


def test_each_finding_says_what_and_why(fleet_dir: Path, capsys) -> None:
    _rc, doc, _err = report(capsys, str(fleet_dir), "--format", "json")
    f = {(x["host"], x["id"]): x for x in doc["findings"]}
    slow = f[("h100-007", "fleet.outlier.train")]
    assert slow["name"].startswith("gpu5:")  # the GPU, not only the host
    assert re.search(r"2[12]% below the median", slow["detail"])  # 0.78x, give or take the jitter
    assert "thermal" in slow["detail"] and "91 C" in slow["detail"]  # the telemetry that explains it
    drift = f[("h100-042", "fleet.drift.driver")]
    assert (drift["observed"], drift["expected"]) == ("580.126.09", "580.159.04")
    assert "79 of 80 hosts" in drift["detail"]
    xid = f[("h200-011", "fleet.xid")]
    assert xid["status"] == "fail" and xid["observed"] == "XID 79 x1"
    assert "Connection timed out" in f[("h200-023", "fleet.unreachable")]["detail"]
    train = next(
        p for p in doc["throughput"] if p["model"] == "NVIDIA H100 80GB HBM3" and p["mode"] == "train"
    )
    assert train["gpus"] == 640 and train["outliers"] == [
        {"host": "h100-007", "gpu": "gpu5", "img_s": pytest.approx(train["outliers"][0]["img_s"])}
    ]


def test_a_healthy_fleet_exits_0_and_names_nothing(types, tmp_path: Path, capsys) -> None:
    hosts = [fs.Host(f"h200-{i:03d}", types["h200"]) for i in range(12)]
    rc, doc, _ = report(capsys, str(fs.write_fleet(tmp_path / "ok", hosts)), "--format", "json")
    assert (rc, doc["findings"], doc["summary"]["ok"]) == (0, [], 12)


def test_the_threshold_is_configurable(types, tmp_path: Path, capsys) -> None:
    hosts = [fs.Host(f"h200-{i:03d}", types["h200"]) for i in range(20)]
    hosts[3].bench = fs.slow_gpu(fs.jitter(types["h200"].bench, "h200-003"), gpu=0, factor=0.94)
    d = fs.write_fleet(tmp_path / "f", hosts)
    _rc, doc, _ = report(capsys, str(d), "--format", "json")
    assert ("h200-003", "outlier", "fleet.outlier.train") in named(doc)  # 6% below: over the 5% default gap
    rc, doc, _ = report(capsys, str(d), "--format", "json", "--min-gap", "0.1")
    assert not [x for x in doc["findings"] if x["section"] == "outlier"] and rc == 0


def test_the_spec_sets_the_outlier_rules_and_options_override_it(types, tmp_path: Path, capsys) -> None:
    """fleet: in hwspec.yaml (issue 15): the same 6%-slow GPU, judged by the spec's min_gap, then by an
    option given on top of the spec; the report says where its rules came from."""
    hosts = [fs.Host(f"h200-{i:03d}", types["h200"]) for i in range(20)]
    hosts[3].bench = fs.slow_gpu(fs.jitter(types["h200"].bench, "h200-003"), gpu=0, factor=0.94)
    d = fs.write_fleet(tmp_path / "f", hosts)
    spec = tmp_path / "hwspec.yaml"
    spec.write_text("hardware:\n  gpu: NVIDIA H200\nfleet:\n  min_gap: 0.1\n  mad_threshold: 4\n")
    rc, doc, _ = report(capsys, str(d), "--format", "json", "--spec", str(spec))
    assert rc == 0 and not [x for x in doc["findings"] if x["section"] == "outlier"]
    assert doc["thresholds"] == {"mad": 4.0, "min_gap": 0.1, "min_peers": 3, "source": f"{spec}:3"}
    rc, doc, _ = report(capsys, str(d), "--format", "json", "--spec", str(spec), "--min-gap", "0.05")
    assert rc == 1 and ("h200-003", "outlier", "fleet.outlier.train") in named(doc)
    assert doc["thresholds"]["mad"] == 4.0 and doc["thresholds"]["source"] == f"--min-gap; otherwise {spec}:3"
    _rc, out, _ = report(capsys, str(d), "--spec", str(spec))
    assert "outlier rules: 4 scaled MADs and 10% below the median, at least 3 peers" in out


def test_min_peers_from_the_spec_leaves_a_small_population_unjudged(types, tmp_path: Path, capsys) -> None:
    hosts = [fs.Host(f"h200-{i:03d}", types["h200"]) for i in range(4)]
    hosts[1].bench = fs.slow_gpu(fs.jitter(types["h200"].bench, "h200-001"), gpu=0, factor=0.78)
    d = fs.write_fleet(tmp_path / "f", hosts)
    _rc, doc, _ = report(capsys, str(d), "--format", "json")
    assert ("h200-001", "outlier", "fleet.outlier.train") in named(doc)  # 4 GPUs >= the default 3 peers
    spec = tmp_path / "hwspec.yaml"
    spec.write_text("fleet:\n  min_peers: 5\n")
    _rc, doc, _ = report(capsys, str(d), "--format", "json", "--spec", str(spec))
    assert not [x for x in doc["findings"] if x["section"] == "outlier"]
    assert {p["cutoff"] for p in doc["throughput"]} == {None}  # measured and shown, not judged


def test_a_bad_fleet_section_is_exit_2_naming_file_line_and_key(
    fleet_dir: Path, tmp_path: Path, capsys
) -> None:
    spec = tmp_path / "hwspec.yaml"
    spec.write_text("fleet:\n  min_gap: 5%\n")
    rc, out, err = report(capsys, str(fleet_dir), "--spec", str(spec))
    assert rc == 2 and out == "" and "Traceback" not in err
    assert f"{spec}:2:12: fleet.min_gap: expected a number" in err, err


def test_table_and_junit_name_the_same_hosts(fleet_dir: Path, capsys) -> None:
    rc, out, _ = report(capsys, str(fleet_dir), "--format", "table")
    assert rc == 1
    for host in ("h100-007", "h100-042", "h200-011", "h200-023"):
        assert host in out
    assert "h100-008" not in out
    assert "FAILED: 120 hosts: 116 ok, 3 failing, 1 unreachable, 0 without a result" in out
    import xml.etree.ElementTree as ET

    _rc, xml, _ = report(capsys, str(fleet_dir), "--format", "junit")
    root = ET.fromstring(xml)
    hosts = root.find("testsuite[@name='hosts']")
    assert hosts is not None and hosts.get("tests") == "120" and hosts.get("failures") == "4"
    failed = {c.get("name") for c in hosts.iter("testcase") if c.find("failure") is not None}
    assert failed == {"h100-007", "h100-042", "h200-011", "h200-023"}


# --- bad input: one bad file costs only itself ----------------------------------------------------
def test_bad_files_are_named_and_the_rest_is_reported(types, tmp_path: Path, capsys) -> None:
    hosts = [fs.Host(f"h200-{i:03d}", types["h200"]) for i in range(10)]
    d = fs.write_fleet(tmp_path / "bad", hosts)
    check = (d / "h200-001/check.json").read_text()
    (d / "h200-001/check.json").write_text(check[: len(check) // 2])  # truncated
    (d / "h200-002/check.json").write_text(json.dumps({"schema": "something.else/3"}))  # foreign
    (d / "h200-003/check.json").unlink()
    os.mkfifo(d / "h200-003/check.json")  # not a regular file: refused at once, never read
    (d / "h200-004/snapshot.json").write_text("{")  # only the snapshot is bad: still judged by its check
    (d / "notes.txt").write_text("who put this here")
    (d / "h200-005/check.json").unlink()  # no result at all
    rc, doc, err = report(capsys, str(d), "--format", "json")
    assert rc == 1
    by = {(x["host"], x["id"]): x for x in doc["findings"]}
    assert "h200-001/check.json: not valid JSON (truncated?)" in by[("h200-001", "fleet.no_result")]["detail"]
    assert "not a `dlverify check --format json` report" in by[("h200-002", "fleet.no_result")]["detail"]
    assert "FIFO" in by[("h200-003", "fleet.no_result")]["detail"]
    assert "h200-005/check.json: missing" in by[("h200-005", "fleet.no_result")]["detail"]
    assert by[("h200-004", "fleet.input")]["status"] == "warn"
    assert "notes.txt: not a host folder" in by[("DIR", "fleet.input")]["detail"]
    states = {h["name"]: h["state"] for h in doc["hosts"]}
    assert [h for h, s in states.items() if s == "no_result"] == [
        "h200-001",
        "h200-002",
        "h200-003",
        "h200-005",
    ]
    assert states["h200-004"] == "ok" and sum(s == "ok" for s in states.values()) == 6
    for name in ("h200-001/check.json", "h200-002/check.json", "h200-003/check.json", "notes.txt"):
        assert name in err  # also said on stderr
    assert "Traceback" not in err


@pytest.mark.parametrize("case", ["empty", "missing", "file", "only-files"])
def test_an_unusable_folder_is_exit_2_naming_it(tmp_path: Path, capsys, case: str) -> None:
    d = tmp_path / "results"
    if case == "empty":
        d.mkdir()
    elif case == "file":
        d.write_text("x")
    elif case == "only-files":
        d.mkdir()
        (d / "check.json").write_text("{}")
    rc, _out, err = report(capsys, str(d))
    assert rc == 2 and str(d) in err and "Traceback" not in err


def test_the_newest_dated_run_is_read(types, tmp_path: Path, capsys) -> None:
    fs.write_fleet(tmp_path / "runs/2026-11-01T0300", [fs.Host("old", types["h200"], unreachable="x")])
    fs.write_fleet(tmp_path / "runs/2026-12-01T0300", [fs.Host("new", types["h200"])])
    rc, doc, _ = report(capsys, str(tmp_path / "runs"), "--format", "json")
    assert rc == 0 and [h["name"] for h in doc["hosts"]] == ["new"]


# --- speed -------------------------------------------------------------------------------------------------
def _parse_only_cpu(folder: Path) -> float:
    """CPU seconds this process takes to read and parse every JSON file under ``folder`` (broken ones too)."""
    start = time.process_time()
    for path in sorted(folder.rglob("*.json")):
        with contextlib.suppress(ValueError):
            json.loads(path.read_bytes())
    return time.process_time() - start


@pytest.mark.slow
def test_a_1000_host_fleet_reports_in_under_2_s(types, tmp_path: Path) -> None:
    """600 8-GPU H100 hosts and 400 H200s (5,200 GPUs, 83 MB of JSON), the CLI end to end. The wall time
    is judged when the machine is not busy with other work. On a loaded machine (load average at 3/4 of its
    cores: the other pytest worker, Molecule alongside) neither wall nor CPU time is the code's: two busy
    hyperthreads of one core inflated the CPU time 1.6x (4.5 s against 2.7 s idle, 2026-12-03). There the
    report's CPU time is judged against the machine's own cost of only parsing the same JSON, measured here in
    the same minute: the floor no report can go under, and a ratio that load and a slower CPU leave alone."""
    import resource

    hosts = standard_hosts(types, n100=600, n200=400)
    d = fs.write_fleet(tmp_path / "k", hosts)
    exe = shutil.which("dlverify", path=str(Path(sys.executable).parent)) or "dlverify"
    best_wall = best_cpu = best_parse = float("inf")
    for _ in range(3):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        start = time.perf_counter()
        proc = subprocess.run(
            [exe, "fleet", "report", str(d), "--format", "json", "-o", str(tmp_path / "r.json")],
            capture_output=True,
            text=True,
            timeout=60,
        )
        best_wall = min(best_wall, time.perf_counter() - start)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        best_cpu = min(best_cpu, after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime)
        best_parse = min(best_parse, _parse_only_cpu(d))
    doc = json.loads((tmp_path / "r.json").read_text())
    assert proc.returncode == 1 and named(doc) == EXPECTED, proc.stderr
    cores, load = os.cpu_count() or 1, os.getloadavg()[0]
    print(
        f"\n1,000-host fleet report: {best_wall:.2f} s wall, {best_cpu:.2f} s CPU"
        f" (parsing its JSON alone: {best_parse:.2f} s), {cores} cores, load {load:.1f}"
    )
    if load < 0.75 * cores:  # alone, this test keeps the load average near 1 on 2 cores
        assert best_wall < 2.0, f"{best_wall:.2f} s"
    else:
        # 2026-12-03, 2 cores: idle 2.5-3.1 s against 1.1-1.2 s of parsing (2.4-2.7x); with three busy loops
        # beside it 4.1 s against 1.05 s (3.9x: the worker processes suffer more than one parser). A step
        # that goes quadratic in the hosts, or parses a document twice, goes past 6.
        ratio = best_cpu / best_parse
        assert ratio < 6.0, f"{best_cpu:.2f} s of CPU, {ratio:.1f}x parsing alone (load {load:.1f})"
