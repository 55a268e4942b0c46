"""Tests of the Molecule runner's command line (tools/harness/molecule-run.sh) that need no podman.

--list and the usage errors exit before the runner touches the host, so they run anywhere.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
RUNNER = REPO / "tools" / "harness" / "molecule-run.sh"


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", str(RUNNER), *args], capture_output=True, text=True, check=False, timeout=60
    )


def test_list_finds_every_role_scenario():
    done = run("--list")
    assert done.returncode == 0, done.stderr
    listed = {line.split()[0]: line.split()[1:] for line in done.stdout.splitlines()}
    expected = {p.parent.parent.parent.name for p in REPO.glob("roles/*/molecule/default/molecule.yml")}
    assert expected <= set(listed)
    assert listed["nvidia_driver"] == ["roles/nvidia_driver", "default"]
    for scenario in REPO.glob("molecule/*/molecule.yml"):
        assert listed[scenario.parent.name] == [".", scenario.parent.name]


def test_list_selects_a_role_and_a_role_scenario_once():
    done = run("--list", "nvidia_driver", "nvidia_driver/default")
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [
        "nvidia_driver  roles/nvidia_driver  default"
    ]  # each scenario runs once


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["no_such_role"], "no scenario 'no_such_role'"),
        (["nvidia_driver/no_such_scenario"], "no scenario 'nvidia_driver/no_such_scenario'"),
        (["-j", "zero"], "-j needs a positive number"),
        (["--frobnicate"], "unknown option '--frobnicate'"),
    ],
)
def test_usage_errors_exit_2_with_a_reason(args, message):
    done = run("--list", *args) if not args[0].startswith("-") else run(*args)
    assert done.returncode == 2
    assert message in done.stderr


@pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("setpriv"), reason="needs root to drop to nobody")
def test_not_root_is_refused_with_a_reason():
    done = subprocess.run(
        ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "bash", str(RUNNER), "nvidia_driver"],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert done.returncode == 2
    assert "must run as root" in done.stderr and "sudo" in done.stderr and "nvidia_driver" in done.stderr
