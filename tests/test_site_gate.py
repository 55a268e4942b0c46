"""site.yml's spec gate, run for real with ansible-playbook.

The gate must hold under every --limit, --tags, --skip-tags and --start-at-task a user can pass: with a
missing or an incompatible spec, no task may run on a host. The hosts here are fake: a local connection
whose Python interpreter is a script that only records that it was called and fails, so "a task ran on the
host" is exactly "the marker file exists", and nothing on this machine is ever changed. Every run is --check.

DLV_TEST_SITE_ROOT=DIR runs the same tests against another checkout's site.yml (how they were seen to fail on
the site.yml before the gate, commit d6a5562).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
SITE_ROOT = Path(os.environ.get("DLV_TEST_SITE_ROOT", REPO)).resolve()
ANSIBLE_PLAYBOOK = shutil.which("ansible-playbook", path=str(Path(sys.executable).parent)) or shutil.which(
    "ansible-playbook"
)

pytestmark = pytest.mark.skipif(
    ANSIBLE_PLAYBOOK is None, reason="ansible-playbook not installed (pip install -e '.[harness]')"
)

# lint exit 1: PyTorch 2.0.0 has no cu121 build
INCOMPATIBLE = REPO / "hwspec" / "examples" / "seed-notes.yaml"
GOOD = REPO / "hwspec.yaml"

# What a user passes; each skipped the gate (or the spec play) before, and touched the host.
INVOCATIONS = {
    "limit": ["--limit", "gpu01"],
    "tags": ["--tags", "cuda,cudnn"],
    "limit+skip-tags": ["--limit", "gpu01", "--skip-tags", "base"],
    "start-at-task": ["--start-at-task", "Install the CUDA toolkit"],
    "limit+skip-tags-always": ["--limit", "gpu01", "--skip-tags", "always"],
}
# The gate itself runs under these, so the refusal names the spec's own problem; under the others it is
# skipped and the guard refuses, naming the spec file and why nothing ran.
GATE_RUNS = {"limit", "tags", "limit+skip-tags"}


def _fake_host(tmp_path: Path) -> tuple[Path, Path]:
    marker = tmp_path / "host-touched"
    fake_python = tmp_path / "fake-python"
    fake_python.write_text(
        "#!/bin/sh\n"
        f'echo "$0 $*" >> "{marker}"\n'
        'echo "fake test host: refusing to run a module" >&2\n'
        "exit 1\n"
    )
    fake_python.chmod(0o755)
    host = f"ansible_connection: local, ansible_python_interpreter: {fake_python}"
    inventory = tmp_path / "hosts.yml"
    inventory.write_text(
        "all:\n  children:\n    gpu_servers:\n      hosts:\n"
        f"        gpu01: {{{host}}}\n        gpu02: {{{host}}}\n"
        f'      vars:\n        miniconda_installer_sha256: "{"0" * 64}"\n'
    )
    return inventory, marker


def _run(
    tmp_path: Path, spec: Path, extra: list[str], playbook: str = "site.yml"
) -> tuple[subprocess.CompletedProcess, Path]:
    inventory, marker = _fake_host(tmp_path)
    # never installed: only what the gate takes for -e dlverify_wheel=PATH
    wheel = tmp_path / "dlverify-0-py3-none-any.whl"
    wheel.write_text("")
    env = dict(
        os.environ,
        ANSIBLE_CONFIG=str(SITE_ROOT / "ansible.cfg"),
        ANSIBLE_NOCOLOR="1",
        ANSIBLE_FORCE_COLOR="0",
        ANSIBLE_HOME=str(tmp_path / "ansible-home"),
        ANSIBLE_LOCAL_TEMP=str(tmp_path / "ansible-tmp"),
    )
    proc = subprocess.run(
        [
            ANSIBLE_PLAYBOOK,
            playbook,
            "-i",
            str(inventory),
            "--check",
            "-e",
            f"hwspec={spec}",
            "-e",
            f"dlverify_wheel={wheel}",
            *extra,
        ],
        cwd=SITE_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    return proc, marker


def _touched(marker: Path) -> str:
    return marker.read_text() if marker.exists() else ""


@pytest.mark.parametrize("invocation", list(INVOCATIONS))
def test_missing_spec_touches_no_host(tmp_path, invocation):
    spec = tmp_path / "no-such-hwspec.yaml"
    proc, marker = _run(tmp_path, spec, INVOCATIONS[invocation])
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0, out
    assert _touched(marker) == "", f"a task ran on the host:\n{_touched(marker)}\n{out}"
    assert str(spec) in out, out
    if invocation in GATE_RUNS:
        assert "not found" in out and "no host was touched" in out, out
    else:
        assert "dlverify spec gate: gpu01 was not touched" in out, out


@pytest.mark.parametrize("invocation", list(INVOCATIONS))
def test_incompatible_spec_touches_no_host(tmp_path, invocation):
    proc, marker = _run(tmp_path, INCOMPATIBLE, INVOCATIONS[invocation])
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0, out
    assert _touched(marker) == "", f"a task ran on the host:\n{_touched(marker)}\n{out}"
    assert "seed-notes.yaml" in out, out
    if invocation in GATE_RUNS:
        assert "exited 1 (incompatible pins); no host was touched" in out, out
        assert "spec.pytorch.cuda_build" in out, out
    else:
        assert "dlverify spec gate: gpu01 was not touched" in out, out
        assert "--start-at-task and --skip-tags always skip it" in out, out


def test_a_good_spec_passes_the_gate_under_limit(tmp_path):
    """The control: a spec that lints clean lets the run reach the host (where the fake one refuses)."""
    proc, marker = _run(tmp_path, GOOD, ["--limit", "gpu01"])
    out = proc.stdout + proc.stderr
    assert _touched(marker) != "", out
    assert "dlverify spec gate" not in out and "no host was touched" not in out, out
    assert "fake test host: refusing to run a module" in out, out


@pytest.mark.parametrize(("cudnn", "build"), [("8.9.7", "12.2"), ("8.9.2", "12.1")])
def test_the_gate_hands_the_cudnn_role_nvidias_build_from_the_data(tmp_path, cudnn, build):
    """Issue 11: NVIDIA publishes cuDNN 8.9.7 for CUDA 12 only as +cuda12.2; the role built +cuda12.1 from the
    spec's CUDA minor. The gate reads the build from lint (hwspec/data/cudnn.yaml) into cudnn_cuda_build."""
    spec = tmp_path / "hwspec.yaml"
    text = GOOD.read_text()
    assert 'cudnn: "8.9.2"' in text
    spec.write_text(text.replace('cudnn: "8.9.2"', f'cudnn: "{cudnn}"'))
    playbook = tmp_path / "show.yml"
    playbook.write_text(
        f"- ansible.builtin.import_playbook: {SITE_ROOT}/playbooks/spec.yml\n"
        "- hosts: gpu01\n  gather_facts: false\n"
        f"  vars_files: [{SITE_ROOT}/playbooks/vars/spec_mapping.yml]\n"
        "  tasks:\n    - ansible.builtin.debug:\n"
        '        msg: "cudnn {{ cudnn_version }} build=[{{ cudnn_cuda_build }}]"\n'
    )
    proc, _ = _run(tmp_path, spec, [], playbook=str(playbook))
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out
    assert f"cudnn {cudnn} build=[{build}]" in out, out


def test_the_gate_warns_only_about_pins_no_role_installs(tmp_path):
    """Every software.frameworks pin goes into the env (pytorch_env_pip_packages) and docker and the toolkit
    have the containers role; the gate once still called them "not installed by site.yml". An extra
    containers name (containerd) is the one pin left that no role installs, and the warning must name it."""
    spec = tmp_path / "hwspec.yaml"
    text = GOOD.read_text()
    assert "  containers: {}\n" in text and '    torchaudio: "2.1.2+cu121"\n' in text
    text = text.replace(
        "  containers: {}\n",
        '  containers: {docker: "24.0.7", nvidia_container_toolkit: "1.13.1", containerd: "1.7.2"}\n',
    ).replace('    torchaudio: "2.1.2+cu121"\n', '    torchaudio: "2.1.2+cu121"\n    onnxruntime: "1.16.3"\n')
    spec.write_text(text)
    proc, marker = _run(tmp_path, spec, [], playbook="playbooks/spec.yml")
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out
    assert _touched(marker) == "", out
    warning = " ".join(out[out.index("WARNING: ") : out.index("not installed by site.yml")].split())
    assert warning.endswith("containers.containerd is pinned in the spec but"), warning
    assert "onnxruntime" not in warning and "containers.docker" not in warning, warning
    assert "nvidia_container_toolkit" not in warning, warning
