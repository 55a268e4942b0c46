"""Scheduler integration: `dlverify check SPEC --only host,gpu --format line` (one line, NHC/Slurm) and
tools/nhc/dlverify.nhc, run by bash with NHC's `die` stood in."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import fleet_synth as fs
import pytest

from dlverify.cli import main

REPO = Path(__file__).resolve().parents[1]
NHC = REPO / "tools/nhc/dlverify.nhc"


@pytest.fixture
def h200(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> tuple[Path, fs.HostType]:
    t = fs.host_type(monkeypatch, tmp_path, "h200", 1)
    spec = tmp_path / "spec.yaml"
    spec.write_text(t.spec_text)
    return spec, t


def _line(capsys, spec: Path, snap: dict, tmp_path: Path) -> tuple[int, str]:
    f = tmp_path / "snap.json"
    f.write_text(json.dumps(snap))
    rc = main(["check", str(spec), "--snapshot", str(f), "--only", "host,gpu", "--format", "line"])
    return rc, capsys.readouterr().out


def test_line_is_ok_or_the_first_failure_in_one_line(h200, capsys, tmp_path: Path) -> None:
    spec, t = h200
    rc, out = _line(capsys, spec, t.snapshot, tmp_path)
    assert rc == 0 and out.startswith("OK: ") and out.count("\n") == 1
    rc, out = _line(capsys, spec, fs.with_xid(fs.drifted_driver(t.snapshot)), tmp_path)
    assert rc == 1 and out.count("\n") == 1
    assert out.startswith("FAIL gpu.driver: ") and "[+1 more: gpu.xid]" in out, out


def _nhc(tmp_path: Path, rc: int, out: str) -> subprocess.CompletedProcess[str]:
    fake = tmp_path / "dlverify"
    fake.write_text(f"#!/bin/sh\necho \"$@\" > {tmp_path}/args\nprintf '%s\\n' '{out}'\nexit {rc}\n")
    fake.chmod(0o755)
    script = (
        f'die() {{ echo "DIE $1: $2"; }}\nsource {NHC}\n'
        f'DLVERIFY={fake} check_dlverify /etc/dlverify/hwspec.yaml; echo "rc=$?"'
    )
    return subprocess.run(["bash", "-c", script], capture_output=True, text=True, timeout=30)


@pytest.mark.parametrize(
    ("rc", "out", "said"),
    [
        (0, "OK: 40 passed, 0 warnings, 3 skipped", "rc=0"),
        (
            1,
            "FAIL gpu.xid: XID 79 (GPU fell off the bus)",
            "DIE 1: check_dlverify: dlverify: FAIL gpu.xid: XID 79",
        ),
        (2, "dlverify: spec.yaml:3:1: bad key", "DIE 1: check_dlverify: dlverify could not judge (exit 2)"),
    ],
)
def test_the_nhc_check_dies_with_the_reason(tmp_path: Path, rc: int, out: str, said: str) -> None:
    proc = _nhc(tmp_path, rc, out)
    assert said in proc.stdout, proc.stdout + proc.stderr
    assert ("DIE" in proc.stdout) == (rc != 0)
    args = (tmp_path / "args").read_text().split()
    assert args == [
        "check",
        "/etc/dlverify/hwspec.yaml",
        "--only",
        "host,gpu",
        "--no-env",
        "--format",
        "line",
    ]
