"""The harness's stand-ins of NVIDIA's Container Toolkit packages (tools/harness/catalogue.yaml) and of
`nvidia-ctk runtime configure` (tools/harness/standins/nvidia-ctk.py): faithful where the containers role
depends on them (package names, versions, dependencies; daemon.json merged, other keys kept, bad JSON left
alone with exit 1)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from harness_mirror import load_mirror

mirror = load_mirror()


def test_toolkit_packages_have_nvidias_names_versions_and_dependencies() -> None:
    specs = {s.name: s for s in mirror.repository_specs("container-toolkit")}
    assert set(specs) == {
        "nvidia-container-toolkit",
        "nvidia-container-toolkit-base",
        "libnvidia-container-tools",
        "libnvidia-container1",
    }
    assert {s.version for s in specs.values()} == {"1.13.1-1"}
    assert "nvidia-container-toolkit-base (= 1.13.1-1)" in specs["nvidia-container-toolkit"].depends
    assert "libnvidia-container-tools (<< 2.0.0)" in specs["nvidia-container-toolkit"].depends
    assert "libnvidia-container1 (>= 1.13.1-1)" in specs["libnvidia-container-tools"].depends
    assert "/usr/bin/nvidia-ctk" in specs["nvidia-container-toolkit-base"].files
    for spec in specs.values():
        assert "STAND-IN" in spec.control(1), spec.name


@pytest.fixture
def ctk(tmp_path: Path) -> Path:
    """The stand-in as the package installs it (its version filled in)."""
    base = {s.name: s for s in mirror.repository_specs("container-toolkit")}["nvidia-container-toolkit-base"]
    exe = tmp_path / "nvidia-ctk"
    exe.write_bytes(base.files["/usr/bin/nvidia-ctk"])
    exe.chmod(0o755)
    return exe


def _configure(ctk: Path, daemon: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(ctk), "runtime", "configure", "--runtime=docker", f"--config={daemon}"],
        capture_output=True,
        text=True,
        timeout=30,
    )


def test_runtime_configure_merges_keeps_keys_and_is_stable(ctk: Path, tmp_path: Path) -> None:
    daemon = tmp_path / "daemon.json"
    daemon.write_text('{"log-driver": "journald", "runtimes": {"crun": {"path": "/usr/bin/crun"}}}')
    done = _configure(ctk, daemon)
    assert done.returncode == 0 and f"Wrote updated config to {daemon}" in done.stderr
    text = daemon.read_text()
    assert json.loads(text) == {
        "log-driver": "journald",
        "runtimes": {
            "crun": {"path": "/usr/bin/crun"},
            "nvidia": {"args": [], "path": "nvidia-container-runtime"},
        },
    }
    # Go's json.MarshalIndent: sorted keys, four spaces, no final newline
    assert text.startswith('{\n    "log-driver"') and not text.endswith("\n")
    assert _configure(ctk, daemon).returncode == 0 and daemon.read_text() == text


def test_runtime_configure_leaves_a_malformed_file_alone(ctk: Path, tmp_path: Path) -> None:
    daemon = tmp_path / "daemon.json"
    daemon.write_text('{"log-driver": ')
    done = _configure(ctk, daemon)
    assert done.returncode == 1 and "unable to load config" in done.stderr
    assert daemon.read_text() == '{"log-driver": '
    missing = tmp_path / "new" / "daemon.json"
    assert _configure(ctk, missing).returncode == 0
    assert json.loads(missing.read_text())["runtimes"]["nvidia"]["path"] == "nvidia-container-runtime"


def test_version_is_the_packages(ctk: Path) -> None:
    out = subprocess.run([sys.executable, str(ctk), "--version"], capture_output=True, text=True, timeout=30)
    assert out.stdout.splitlines()[0] == "NVIDIA Container Toolkit CLI version 1.13.1"
