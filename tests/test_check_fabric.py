"""gpu.fabric: NVSwitch boards need nvidia-fabricmanager before CUDA starts. The real NVML probe runs on the
recorded cards (NVML replay) with a fabric state added where a case needs one; the host side is the real
probe on a fake /sys tree with a stand-in `systemctl`."""

from __future__ import annotations

import copy
import subprocess
from pathlib import Path
from typing import Any

import nvml_replay
import pynvml
import pytest
import replay_host

from dlverify.checks import run_checks
from dlverify.probes.fabric import nvswitches, probe_fabric_host
from dlverify.results import Status
from dlverify.snapshot import to_jsonable

H100 = nvml_replay.CARDS["h100"]
COMPLETED, IN_PROGRESS, NOT_SUPPORTED = 3, 2, 0


def _pci(root: Path, addr: str, vendor: str, cls: str) -> None:
    d = root / "sys/bus/pci/devices" / addr
    d.mkdir(parents=True)
    (d / "vendor").write_text(vendor + "\n")
    (d / "class").write_text(cls + "\n")


def _host_tree(root: Path, switches: int) -> Path:
    _pci(root, "0000:18:00.0", "0x10de", "0x030200")  # the GPU itself (3D controller)
    _pci(root, "0000:3b:00.0", "0x15b3", "0x068000")  # another vendor's "other bridge": not an NVSwitch
    for i in range(switches):
        _pci(root, f"0000:{0xC5 + i:02x}:00.0", "0x10de", "0x068000")
    return root


def _systemctl(word: str | None):
    def run(cmd: list[str]) -> subprocess.CompletedProcess[str]:
        assert cmd[:2] == ["systemctl", "is-active"], cmd
        if word is None:
            raise FileNotFoundError("systemctl")
        return subprocess.CompletedProcess(cmd, 0 if word == "active" else 3, word + "\n", "")

    return run


def _fabric(
    monkeypatch: Any,
    tmp_path: Path,
    *,
    gpu_fabric: Any = None,
    switches: int = 0,
    service: str | None = "active",
) -> Any:
    rec = copy.deepcopy(nvml_replay.load_recording(H100))
    if gpu_fabric is not None:
        rec["gpus"][0]["fabric"] = gpu_fabric
    spec = replay_host.spec_for(H100)
    snap = replay_host.take_snapshot(monkeypatch, tmp_path, H100, recording=rec, spec=spec)
    snap["host"] = {
        "fabric": to_jsonable(probe_fabric_host(_host_tree(tmp_path / "host", switches), _systemctl(service)))
    }
    return next(r for r in run_checks(spec, snap, only=("gpu",)) if r.id == "gpu.fabric")


def test_the_recorded_single_gpu_machines_need_no_fabric(monkeypatch, tmp_path) -> None:
    r = _fabric(monkeypatch, tmp_path)
    assert r.status is Status.SKIP
    assert r.detail == "no NVSwitch on this host and no GPU reports a fabric: no fabric manager needed"
    # NVML's explicit "not supported" state reads the same as the call being unsupported
    assert (
        _fabric(monkeypatch, tmp_path / "b", gpu_fabric={"state": NOT_SUPPORTED, "status": 0}).status
        is Status.SKIP
    )


@pytest.mark.parametrize(
    ("label", "gpu_fabric", "service", "status", "observed"),
    [
        ("Hopper, registered", {"state": COMPLETED, "status": 0}, "active", Status.PASS,
         "registered on 1 GPU(s); nvidia-fabricmanager active"),
        ("Hopper, fabric manager still starting", {"state": IN_PROGRESS, "status": 0}, "activating",
         Status.FAIL, "GPU 0: in_progress; nvidia-fabricmanager activating"),
        ("Hopper, registration failed", {"state": COMPLETED, "status": pynvml.NVML_ERROR_UNKNOWN}, "failed",
         Status.FAIL, "GPU 0: completed (NVML_ERROR_UNKNOWN); nvidia-fabricmanager failed"),
        ("Ampere: no GPU fabric state, service up", None, "active", Status.PASS,
         "4 NVSwitch(es); nvidia-fabricmanager active"),
        ("Ampere: service down", None, "inactive", Status.FAIL,
         "4 NVSwitch(es); nvidia-fabricmanager inactive"),
        ("Ampere: no systemd to ask", None, None, Status.WARN, "4 NVSwitch(es)"),
    ],
)  # fmt: skip
def test_nvswitch_boards(monkeypatch, tmp_path, label, gpu_fabric, service, status, observed) -> None:
    r = _fabric(monkeypatch, tmp_path, gpu_fabric=gpu_fabric, switches=4, service=service)
    assert (r.status, r.observed) == (status, observed), (label, r.detail)
    if status is Status.FAIL:
        assert "error 802" in r.detail and "version must equal the driver's" in r.detail


def test_a_gpu_reporting_a_fabric_is_judged_even_when_switches_are_hidden(monkeypatch, tmp_path) -> None:
    # in a VM the NVSwitches stay with the host, yet the passed-through Hopper GPU reports its fabric state
    r = _fabric(monkeypatch, tmp_path, gpu_fabric={"state": IN_PROGRESS, "status": 0}, switches=0)
    assert r.status is Status.FAIL and r.observed == "GPU 0: in_progress"


def test_host_probe_finds_only_nvidia_switches_and_asks_systemd_only_then(tmp_path) -> None:
    root = _host_tree(tmp_path, switches=2)
    assert nvswitches(root) == ["0000:c5:00.0", "0000:c6:00.0"]

    def never(cmd: list[str]) -> subprocess.CompletedProcess[str]:
        raise AssertionError(f"asked {cmd} on a host without NVSwitches")

    bare = probe_fabric_host(_host_tree(tmp_path / "bare", switches=0), never)
    assert bare["nvswitches"] == [] and "not asked" in bare["fabricmanager"].reason
    assert probe_fabric_host(root, _systemctl("failed"))["fabricmanager"] == "failed"


def test_without_host_data_the_check_says_so(monkeypatch, tmp_path) -> None:
    spec = replay_host.spec_for(H100)
    snap = replay_host.take_snapshot(monkeypatch, tmp_path, H100, spec=spec)  # only gpu + software
    r = next(r for r in run_checks(spec, snap, only=("gpu",)) if r.id == "gpu.fabric")
    assert r.status is Status.SKIP and "NVSwitches not probed" in r.detail


@pytest.mark.parametrize("service", ["failed", "inactive"])
def test_a_fabric_manager_that_died_after_registering_fails(monkeypatch, tmp_path, service) -> None:
    # the GPUs registered (state completed) before the service died: the fabric is not re-set-up after a
    # GPU reset or a switch error, and a restart of the box stays broken until it runs again
    r = _fabric(
        monkeypatch, tmp_path, gpu_fabric={"state": COMPLETED, "status": 0}, switches=4, service=service
    )
    assert r.status is Status.FAIL, (r.observed, r.detail)
    assert r.observed == f"registered on 1 GPU(s); nvidia-fabricmanager {service}"
    assert "nvidia-fabricmanager" in r.detail and service in r.detail
