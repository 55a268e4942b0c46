"""NVSwitch fabric, host side: the NVSwitches on the PCI bus and the state of nvidia-fabricmanager.

On HGX/DGX boards the GPUs talk through NVSwitches that nvidia-fabricmanager (of exactly the driver's version)
must set up before CUDA can start: without it every CUDA program fails with "system not yet initialized"
(error 802) while nvidia-smi looks healthy. The GPUs' own view (NVML's fabric state, Hopper and later) is read
by probes/gpu.py; this is what the host adds: whether switches exist here, and whether the service runs.
"""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

from dlverify.unavailable import Unavailable

NVIDIA_VENDOR = "0x10de"
NVSWITCH_CLASS = "0x0680"  # PCI class "bridge, other" (0x0680xx), which on NVIDIA's vendor id is an NVSwitch
SERVICE = "nvidia-fabricmanager"

Runner = Callable[[list[str]], "subprocess.CompletedProcess[str]"]


def _read(path: Path) -> str:
    try:
        return path.read_text().strip().lower()
    except OSError:
        return ""


def nvswitches(root: Path) -> list[str]:
    """PCI addresses of NVIDIA NVSwitches under ``root``/sys/bus/pci/devices."""
    base = root / "sys/bus/pci/devices"
    if not base.is_dir():
        return []
    return sorted(
        d.name
        for d in base.iterdir()
        if _read(d / "vendor") == NVIDIA_VENDOR and _read(d / "class").startswith(NVSWITCH_CLASS)
    )


def service_state(runner: Runner) -> str | Unavailable:
    """``systemctl is-active``'s word for the fabric manager: active, inactive, failed, activating, ..."""
    try:
        proc = runner(["systemctl", "is-active", SERVICE])
    except FileNotFoundError:
        return Unavailable("systemctl not found (no systemd): cannot tell whether the fabric manager runs")
    except subprocess.TimeoutExpired:
        return Unavailable("systemctl is-active timed out")
    word = (proc.stdout or "").strip().splitlines()
    if word:
        return word[0]
    return Unavailable(f"systemctl is-active {SERVICE}: rc {proc.returncode}, no answer")


def probe_fabric_host(root: Path, runner: Runner) -> dict[str, Any]:
    switches = nvswitches(root)
    return {
        "nvswitches": switches,
        # asked only where it matters, so a host without switches spends no time on systemctl
        "fabricmanager": service_state(runner) if switches else Unavailable("no NVSwitch: not asked"),
    }
