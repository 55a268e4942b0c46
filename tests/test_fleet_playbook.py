"""playbooks/fleet-check.yml and fleet-bench.yml run by ansible-playbook against a local inventory: one host
reached over a local connection (a STAND-IN `dlverify` on its PATH that writes documents derived from the
real H200 recording and exits as dlverify would), one host that cannot be reached (TEST-NET-1 192.0.2.1,
2 s timeout). Then `dlverify fleet report` on what was fetched."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import fleet_synth as fs
import pytest

from dlverify.cli import main

REPO = Path(__file__).resolve().parents[1]
FAKE = """#!/bin/sh
# dlverify test STAND-IN: writes the prepared document for its subcommand to -o FILE, exits as told
cmd=$1; out=""
while [ $# -gt 0 ]; do [ "$1" = "-o" ] && out=$2; shift; done
echo "$cmd" >> "$FAKE_DLV_DIR/calls"
cp "$FAKE_DLV_DIR/$cmd.json" "$out"
exit $(cat "$FAKE_DLV_DIR/$cmd.rc" 2>/dev/null || echo 0)
"""


def _ansible_playbook() -> str:
    exe = shutil.which("ansible-playbook", path=str(Path(sys.executable).parent)) or shutil.which(
        "ansible-playbook"
    )
    if exe is None:
        pytest.skip("ansible-playbook not installed (pip install -e '.[harness]')")
    return exe


@pytest.fixture
def stand_in(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The fake dlverify and its documents: the H200 type's snapshot, a check report failing gpu.xid (the
    snapshot with an XID 79, judged by the real checks) and its bench report."""
    t = fs.host_type(monkeypatch, tmp_path, "h200", 1)
    docs = tmp_path / "docs"
    docs.mkdir()
    snap = fs.with_xid(t.snapshot)
    (docs / "snapshot.json").write_text(json.dumps(snap))
    (docs / "check.json").write_text(json.dumps(fs.check_doc(snap, t, "gpu-local")))
    (docs / "check.rc").write_text("1\n")
    (docs / "bench.json").write_text(json.dumps(t.bench))
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "dlverify").write_text(FAKE)
    (bin_dir / "dlverify").chmod(0o755)
    return docs


def _run(playbook: str, tmp_path: Path, docs: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    inv = tmp_path / "hosts.yml"
    inv.write_text(
        "all:\n  children:\n    gpu_servers:\n      hosts:\n"
        f"        gpu-local:\n          ansible_connection: local\n"
        f"          ansible_python_interpreter: {sys.executable}\n"
        "        gpu-down:\n          ansible_host: 192.0.2.1\n          ansible_connection: ssh\n"
        "          ansible_timeout: 2\n"
        "          ansible_ssh_common_args: -o ConnectTimeout=2 -o BatchMode=yes\n"
    )
    env = {
        **os.environ,
        "PATH": f"{tmp_path / 'bin'}:{os.environ['PATH']}",
        "FAKE_DLV_DIR": str(docs),
        "ANSIBLE_CONFIG": str(REPO / "ansible.cfg"),
        "ANSIBLE_HOME": str(tmp_path / "ansible-home"),
        "ANSIBLE_LOCAL_TEMP": str(tmp_path / "ansible-tmp"),
    }
    cmd = [
        _ansible_playbook(),
        "-i",
        str(inv),
        str(REPO / "playbooks" / playbook),
        "-e",
        f"fleet_results_dir={tmp_path / 'results'}",
        "-e",
        "fleet_spec=/etc/dlverify/hwspec.yaml",
        *extra,
    ]
    return subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300, cwd=REPO)


@pytest.mark.slow
@pytest.mark.parametrize("playbook", ["fleet-check.yml", "fleet-bench.yml"])
def test_the_fleet_playbook_fetches_every_host_and_records_the_unreachable(
    stand_in: Path, tmp_path: Path, capsys, playbook: str
) -> None:
    proc = _run(playbook, tmp_path, stand_in)
    # the run completes for the reachable host although its check failed (exit 1) and one host is down
    assert "gpu-local" in proc.stdout and proc.returncode in (0, 4), proc.stdout[-3000:] + proc.stderr[-2000:]
    runs = list((tmp_path / "results").iterdir())
    assert len(runs) == 1  # one dated folder for the whole run
    run = runs[0]
    local, down = run / "gpu-local", run / "gpu-down"
    bench = playbook == "fleet-bench.yml"
    assert sorted(p.name for p in local.iterdir()) == sorted(
        ["snapshot.json", "check.json", "status.json"] + (["bench.json"] if bench else [])
    )
    status = json.loads((local / "status.json").read_text())
    assert (status["check_rc"], status["snapshot_rc"]) == (1, 0)
    assert (status["bench_rc"] == 0) if bench else status["bench_rc"] is None
    assert sorted(p.name for p in down.iterdir()) == ["unreachable"]
    assert (down / "unreachable").read_text().strip()  # Ansible's reason
    calls = (stand_in / "calls").read_text().split()
    assert calls == ["snapshot", "check"] + (["bench"] if bench else [])

    rc = main(["fleet", "report", str(tmp_path / "results"), "--format", "json"])
    doc = json.loads(capsys.readouterr().out)
    assert rc == 1
    assert {(f["host"], f["id"]) for f in doc["findings"]} == {
        ("gpu-local", "gpu.xid"),
        ("gpu-local", "fleet.xid"),
        ("gpu-down", "fleet.unreachable"),
    }
