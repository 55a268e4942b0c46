"""What the mirror's test files share (tests/test_harness_mirror_*.py, test_harness_toolkit_standins.py): the
mirror command loaded as a module, look-alikes of NVIDIA's wheels, and readers of what the mirror writes.

The wheels are small and made here (same member paths as NVIDIA's) so that a build needs no download; a build
still runs the real dpkg-deb, dpkg-scanpackages and gpg.
"""

from __future__ import annotations

import hashlib
import importlib.util
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

REPO = Path(__file__).resolve().parent.parent
HARNESS = REPO / "tools" / "harness"
STANDINS = HARNESS / "standins"


def load_mirror() -> ModuleType:
    """tools/harness/mirror.py as the module `dlv_harness_mirror` (once per process; its siblings import as
    `mirror_*`)."""
    if "dlv_harness_mirror" in sys.modules:
        return sys.modules["dlv_harness_mirror"]
    spec = importlib.util.spec_from_file_location("dlv_harness_mirror", HARNESS / "mirror.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while the class is made
    spec.loader.exec_module(module)
    return module


needs_debian_tools = pytest.mark.skipif(
    not all(shutil.which(t) for t in ("dpkg-deb", "dpkg-scanpackages", "gpg", "gpgv")),
    reason="needs dpkg-dev, gnupg and gpgv (apt-get install dpkg-dev gnupg)",
)
needs_gpg = pytest.mark.skipif(not shutil.which("gpg"), reason="needs gnupg (apt-get install gnupg)")

FAKE_PTXAS = b"""#!/bin/sh
echo "ptxas: NVIDIA (R) Ptx optimizing assembler"
echo "Copyright (c) 2005-2023 NVIDIA Corporation"
echo "Cuda compilation tools, release 12.1, V12.1.105"
"""
FAKE_CUDNN_VERSION_H = b"#define CUDNN_MAJOR 8\n#define CUDNN_MINOR 9\n#define CUDNN_PATCHLEVEL 2\n"
FAKE_WHEELS = {
    "nvcc": (
        "nvidia_cuda_nvcc_cu12-12.1.105",
        {
            "nvidia/__init__.py": b"",
            "nvidia/cuda_nvcc/bin/ptxas": FAKE_PTXAS,
            "nvidia/cuda_nvcc/include/crt/host_config.h": b"/* crt */\n",
            "nvidia/cuda_nvcc/nvvm/lib64/libnvvm.so": b"not needed",
        },
    ),
    "cudart": (
        "nvidia_cuda_runtime_cu12-12.1.105",
        {
            "nvidia/cuda_runtime/lib/libcudart.so.12": b"\x7fELF cudart",
            "nvidia/cuda_runtime/include/cuda_runtime.h": b"/* cuda_runtime */\n",
        },
    ),
    "cudnn": (
        "nvidia_cudnn_cu12-8.9.2.26",
        {
            "nvidia/cudnn/lib/libcudnn.so.8": b"\x7fELF cudnn",
            "nvidia/cudnn/lib/libcudnn_cnn_infer.so.8": b"big and not needed",
            "nvidia/cudnn/include/cudnn.h": b'#include "cudnn_version.h"\n',
            "nvidia/cudnn/include/cudnn_version.h": FAKE_CUDNN_VERSION_H,
            "nvidia/cudnn/include/cudnn_version_v8.h": FAKE_CUDNN_VERSION_H,
        },
    ),
}


def write_fake_wheels(wheel_dir: Path) -> dict[str, Path]:
    """Look-alikes of NVIDIA's three wheels in `wheel_dir`, named as pip names them; key -> path."""
    wheel_dir.mkdir(parents=True, exist_ok=True)
    made = {}
    for key, (stem, members) in FAKE_WHEELS.items():
        path = wheel_dir / f"{stem}-py3-none-manylinux1_x86_64.whl"
        with zipfile.ZipFile(path, "w") as zf:
            for name, data in members.items():
                zf.writestr(name, data)
        made[key] = path
    return made


def parse_packages(text: str) -> list[dict[str, str]]:
    """The stanzas of an apt Packages file, continuation lines joined to their field."""
    stanzas = []
    for block in text.strip().split("\n\n"):
        fields: dict[str, str] = {}
        key = ""
        for line in block.splitlines():
            if line.startswith(" ") and key:
                fields[key] += "\n" + line
            else:
                key, _, value = line.partition(": ")
                fields[key] = value
        stanzas.append(fields)
    return stanzas


def parse_unit(text: str) -> dict[str, dict[str, str]]:
    sections: dict[str, dict[str, str]] = {}
    current: dict[str, str] = {}
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("["):
            current = sections.setdefault(line.strip("[]"), {})
        else:
            key, _, value = line.partition("=")
            current[key] = value
    return sections


# The unit NVIDIA's CUDA repository and Ubuntu's archive ship in nvidia-compute-utils-535 (issue 11): static,
# stopped when unneeded, and started WITHOUT persistence mode. The stand-in must not be kinder than this.
REAL_PERSISTENCED_UNIT = {
    "Unit": {
        "Description": "NVIDIA Persistence Daemon",
        "Wants": "syslog.target",
        "StopWhenUnneeded": "true",
        "Before": "systemd-backlight@backlight:nvidia_0.service",
    },
    "Service": {
        "Type": "forking",
        "ExecStart": "/usr/bin/nvidia-persistenced --user nvidia-persistenced"
        " --no-persistence-mode --verbose",
        "ExecStopPost": "/bin/rm -rf /var/run/nvidia-persistenced",
    },
}


def kill_gpg_agents(root: Path) -> None:
    """Stop the gpg-agent of every GnuPG home under `root`: no daemon outlives the test that made it."""
    if shutil.which("gpgconf"):
        for home in root.rglob("gnupg"):
            subprocess.run(["gpgconf", "--homedir", str(home), "--kill", "gpg-agent"], capture_output=True)


def spec_json(spec: Any) -> dict[str, Any]:
    """A DebSpec as JSON: every field; a file's content as its text when short, else its sha256 and size."""

    def content(value: bytes | Path) -> str:
        data = value if isinstance(value, bytes) else value.read_bytes()
        try:
            if len(data) <= 600:
                return data.decode()
        except UnicodeDecodeError:
            pass
        return f"sha256:{hashlib.sha256(data).hexdigest()} ({len(data)} bytes)"

    return {
        "name": spec.name,
        "version": spec.version,
        "summary": spec.summary,
        "arch": spec.arch,
        "depends": spec.depends,
        "conflicts": spec.conflicts,
        "section": spec.section,
        "details": spec.details,
        "files": {path: content(value) for path, value in spec.files.items()},
        "modes": {path: oct(mode) for path, mode in spec.modes.items()},
        "symlinks": spec.symlinks,
        "maintainer_scripts": spec.maintainer_scripts,
        "stand_in": spec.stand_in,
        "stand_in_line": spec.stand_in_line,
    }
