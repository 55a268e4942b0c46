"""The quick start's first command, `tools/check-this-machine.sh`, keeps dlverify's own exit codes.

`make check` cannot (make turns every failure into its exit 2), which is why the script exists: a script or a
person reading the exit code must get 1 for an incompatible spec or a failed check and 2 for bad input, and
the check must not run on a spec whose pins do not fit together.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "tools/check-this-machine.sh"


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "VENV": sys.prefix, "NO_COLOR": "1", "COLUMNS": "200"}
    return subprocess.run(
        ["bash", str(SCRIPT), *args], capture_output=True, text=True, env=env, timeout=120, check=False
    )


def test_incompatible_pins_exit_1_and_the_check_does_not_run(tmp_path: Path) -> None:
    spec = tmp_path / "hwspec.yaml"
    text = (REPO / "hwspec.yaml").read_text()
    assert 'nvidia_driver: "535.183.01"' in text
    spec.write_text(text.replace('nvidia_driver: "535.183.01"', 'nvidia_driver: "470.256.02"'))
    res = _run(str(spec), "--only", "host")
    assert res.returncode == 1, res.stderr
    assert "spec lint" in res.stdout and "dlverify check" not in res.stdout


def test_an_unreadable_spec_is_exit_2(tmp_path: Path) -> None:
    res = _run(str(tmp_path / "missing.yaml"))
    assert res.returncode == 2 and "missing.yaml: no such file" in res.stderr


def test_the_check_s_own_exit_code_comes_through(tmp_path: Path) -> None:
    """The example spec on this machine: the lint passes; the check then decides (1 here: no GPU, no CUDA)."""
    out = tmp_path / "check.json"
    res = _run("hwspec.yaml", "--format", "json", "-o", str(out))
    report = json.loads(out.read_text())
    assert res.returncode == report["exit_code"], res.stderr
