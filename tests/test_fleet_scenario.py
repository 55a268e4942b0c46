"""molecule/fleet's own parts, without test hosts: its prepare helper (fleet_docs.py) makes the documents the
stand-ins hand back, and its verify.yml, run by ansible-playbook on a results folder laid out as the fleet
playbook fetches it, passes on exactly the injected faults and fails on a fleet that differs (a fault missing,
the healthy host faulty too, the unreachable host reached)."""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

REPO = Path(__file__).resolve().parents[1]
SCENARIO = REPO / "molecule" / "fleet"
HEALTHY, FAULTY, DOWN = "dlv-fleet-a", "dlv-fleet-b", "dlv-fleet-down"


def _fleet_docs() -> ModuleType:
    spec = importlib.util.spec_from_file_location("fleet_docs", SCENARIO / "fleet_docs.py")
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture(scope="module")
def docs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("docs")
    assert _fleet_docs().main([str(out), HEALTHY, FAULTY]) == 0
    return out


def test_the_prepare_helper_gives_the_exit_codes_dlverify_would(docs: Path) -> None:
    rcs = {
        h: {c: (docs / h / f"{c}.rc").read_text().strip() for c in ("snapshot", "check", "bench")}
        for h in (HEALTHY, FAULTY)
    }
    assert rcs == {
        HEALTHY: {"snapshot": "0", "check": "0", "bench": "0"},
        FAULTY: {"snapshot": "0", "check": "1", "bench": "1"},
    }
    snap = json.loads((docs / FAULTY / "snapshot.json").read_text())
    assert len(snap["nvml"]["gpus"]) == 8  # 16 GPUs of one model: over fleet.min_peers


def _results(docs: Path, root: Path, case: str) -> Path:
    """DIR/<dated run>/<host>/... as playbooks/fleet-check.yml writes it, broken as ``case`` says."""
    run = root / "2026-12-02T000000Z"
    for h in (HEALTHY, FAULTY):
        (run / h).mkdir(parents=True)
        for c in ("snapshot", "check", "bench"):
            shutil.copy(docs / h / f"{c}.json", run / h)
        rc = {c: int((docs / h / f"{c}.rc").read_text()) for c in ("snapshot", "check", "bench")}
        status = {"schema": "dlverify.fleet.status/1", **{f"{c}_rc": v for c, v in rc.items()}}
        (run / h / "status.json").write_text(json.dumps(status))
    if case != "down-host-reached":
        (run / DOWN).mkdir()
        (run / DOWN / "unreachable").write_text("Failed to connect to the host via ssh: Connection refused\n")
    if case == "no-xid":
        snap = json.loads((run / FAULTY / "snapshot.json").read_text())
        snap["host"]["xid"]["events"] = []
        (run / FAULTY / "snapshot.json").write_text(json.dumps(snap))
    elif case == "healthy-host-drifted":
        shutil.copy(run / FAULTY / "snapshot.json", run / HEALTHY / "snapshot.json")
    elif case == "no-slow-gpu":
        shutil.copy(run / HEALTHY / "bench.json", run / FAULTY / "bench.json")
    return root


@pytest.mark.parametrize(
    ("case", "fails_at"),
    [
        ("as-injected", None),
        ("no-xid", "_dlv_fleet_named == _dlv_fleet_expected"),
        ("healthy-host-drifted", "_dlv_fleet_named == _dlv_fleet_expected"),
        ("no-slow-gpu", "_dlv_fleet_named == _dlv_fleet_expected"),
        ("down-host-reached", "== ['unreachable']"),
    ],
)
def test_the_scenario_verify_passes_only_on_the_injected_faults(
    docs: Path, tmp_path: Path, case: str, fails_at: str | None
) -> None:
    exe = shutil.which("ansible-playbook", path=str(Path(sys.executable).parent))
    if exe is None:
        pytest.skip("ansible-playbook not installed (pip install -e '.[harness]')")
    results = _results(docs, tmp_path / "results", case)
    extra = {
        "fleet_results_dir": str(results),
        "dlv_fleet_healthy": HEALTHY,
        "dlv_fleet_faulty": FAULTY,
        "dlv_fleet_down": DOWN,
        "fleet_spec": "/etc/dlverify/hwspec.yaml",
        "fleet_tmp_dir": "/var/tmp",
        "dlv_fleet_standin_dir": "/nonexistent",
        "ansible_python_interpreter": sys.executable,
    }
    env = {
        **os.environ,
        "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}",
        "ANSIBLE_CONFIG": str(REPO / "ansible.cfg"),
        "ANSIBLE_HOME": str(tmp_path / "ansible-home"),
        "ANSIBLE_LOCAL_TEMP": str(tmp_path / "ansible-tmp"),
        "ANSIBLE_NOCOLOR": "1",
    }
    # the live-host play has no hosts here (only localhost in the inventory): the report's play is judged
    cmd = [exe, "-i", "localhost,", "-c", "local", str(SCENARIO / "verify.yml"), "-e", json.dumps(extra)]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300, cwd=REPO)
    out = proc.stdout + proc.stderr
    if fails_at is None:
        assert proc.returncode == 0, out[-4000:]
        assert "The report names exactly the injected faults" in out
    else:
        assert proc.returncode == 2, out[-4000:]
        assert "FAILED!" in out and fails_at in out, out[-4000:]
