"""playbooks/vars/spec_mapping.yml for issue 13's sections: what the containers and jupyterlab roles get from
software.containers and software.jupyter, evaluated by Ansible itself (a local play, no host touched)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
ANSIBLE_PLAYBOOK = shutil.which("ansible-playbook", path=str(BIN)) or shutil.which("ansible-playbook")

VARS = [
    "containers_docker",
    "containers_docker_version",
    "containers_docker_source",
    "containers_nvidia_container_toolkit",
    "containers_nvidia_container_toolkit_version",
    "jupyterlab_enabled",
    "jupyterlab_users",
    "jupyterlab_listen",
    "jupyterlab_port",
    "jupyterlab_tls_cert",
    "jupyterlab_tls_key",
    "jupyterlab_kernel_name",
    "jupyterlab_kernel_python",
    "pytorch_env_pip_packages",
]
BASE = {
    "nvidia_driver": "535",
    "cuda": "12.1",
    "cudnn": "8.9.2",
    "frameworks": {"pytorch": "2.1.2"},
    "python_env": {"name": "dl", "python": "3.10", "installer": "conda", "prefix": "/opt/miniconda3"},
}


def _mapped(tmp_path: Path, software: dict) -> dict:
    if ANSIBLE_PLAYBOOK is None:
        pytest.skip("ansible-playbook not installed (pip install -e '.[harness]')")
    out = tmp_path / "mapped.json"
    play = [
        {
            "name": "Map",
            "hosts": "localhost",
            "connection": "local",
            "gather_facts": False,
            "vars": {"dlv_spec": software, "dlv_hwspec_file": "x", "dlv_dlverify_wheel": ""},
            "vars_files": [str(REPO / "playbooks" / "vars" / "spec_mapping.yml")],
            "tasks": [
                {
                    "name": "Write the mapped variables",
                    "ansible.builtin.copy": {
                        "content": "{{ {" + ", ".join(f"'{v}': {v}" for v in VARS) + "} | to_json }}",
                        "dest": str(out),
                        "mode": "0644",
                    },
                }
            ],
        }
    ]
    (tmp_path / "play.yml").write_text(yaml.safe_dump(play))
    env = {**os.environ, "ANSIBLE_HOME": str(tmp_path / ".ansible"), "ANSIBLE_NOCOLOR": "1"}
    done = subprocess.run(
        [
            ANSIBLE_PLAYBOOK,
            "-i",
            "localhost,",
            "-e",
            f"ansible_python_interpreter={sys.executable}",
            str(tmp_path / "play.yml"),
        ],
        capture_output=True,
        text=True,
        timeout=180,
        env=env,
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    return json.loads(out.read_text())


def test_the_notes_sections_reach_the_roles(tmp_path: Path) -> None:
    got = _mapped(
        tmp_path,
        {
            **BASE,
            "containers": {
                "docker": "24.0.7",
                "docker_source": "docker-ce",
                "nvidia_container_toolkit": "1.13.1",
            },
            "jupyter": {"users": ["alice", "bob"], "port": 8890, "tls_cert": "none"},
        },
    )
    assert got["containers_docker"] and got["containers_nvidia_container_toolkit"]
    assert got["containers_docker_version"] == "24.0.7" and got["containers_docker_source"] == "docker-ce"
    assert got["jupyterlab_enabled"] and got["jupyterlab_users"] == ["alice", "bob"]
    assert (got["jupyterlab_listen"], int(got["jupyterlab_port"])) == ("127.0.0.1", 8890)
    assert got["jupyterlab_tls_cert"] == "" and got["jupyterlab_tls_key"] == ""
    # the kernel is the spec's conda env, by its own interpreter
    assert got["jupyterlab_kernel_name"] == "dl"
    assert got["jupyterlab_kernel_python"].strip() == "/opt/miniconda3/envs/dl/bin/python"


def test_absent_or_disabled_sections_run_nothing(tmp_path: Path) -> None:
    got = _mapped(tmp_path, {**BASE, "containers": {}, "jupyter": None})
    assert not got["containers_docker"] and not got["containers_nvidia_container_toolkit"]
    assert not got["jupyterlab_enabled"]
    venv_env = {"name": "dl", "python": "3.10", "installer": "venv", "prefix": "/opt/venvs/dl"}
    got = _mapped(tmp_path, {**BASE, "python_env": venv_env, "jupyter": {"users": ["a"], "enabled": False}})
    assert not got["jupyterlab_enabled"]
    assert got["jupyterlab_kernel_python"].strip() == "/opt/venvs/dl/bin/python"


@pytest.mark.parametrize(
    ("frameworks", "want"),
    [
        ({"pytorch": "2.1.2", "torchvision": "0.16.2"}, []),
        # the release's own CUDA wheels (the [and-cuda] extra exists from 2.14 on)
        ({"pytorch": "2.1.2", "tensorflow": "2.15.0"}, ["tensorflow[and-cuda]==2.15.0"]),
        (
            {"pytorch": "2.1.2", "tensorflow": "2.13.1", "jax": "0.4.30"},
            ["tensorflow==2.13.1", "jax[cuda12]==0.4.30"],
        ),
        ({"pytorch": "2.1.2+cpu", "tensorflow": "2.15.0"}, ["tensorflow==2.15.0"]),
    ],
)
def test_every_pinned_framework_is_installed_into_the_env(tmp_path: Path, frameworks: dict, want: list):
    """Issue 13: every framework the spec pins goes into the env, not only the torch family."""
    mapped = _mapped(tmp_path, {**BASE, "frameworks": frameworks, "containers": {}, "jupyter": None})
    assert sorted(mapped["pytorch_env_pip_packages"]) == sorted(want)
