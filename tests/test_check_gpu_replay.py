"""Real probe + checks on the recorded H100 (NVML replay): its spec passes, each fault fails its check."""

from __future__ import annotations

import copy
import dataclasses
from typing import Any

import nvml_replay
import pytest

from dlverify.checks import run_checks
from dlverify.hwspec.model import GpuSpec
from dlverify.results import Status


def _by_id(results: list[Any], group: str | None = None) -> dict[str, Any]:
    return {r.id: r for r in results if group is None or r.group == group}


def _gpu_results(
    monkeypatch: Any,
    tmp_path: Any,
    recording: dict | None = None,
    spec: Any = None,
    env_record: dict | None = None,
) -> list[Any]:
    spec = spec or nvml_replay.h100_spec()
    snap = nvml_replay.h100_snapshot(
        monkeypatch, tmp_path, recording=recording, spec=spec, env_record=env_record
    )
    return run_checks(spec, snap, only=("gpu", "software"))


def _rec(**gpu_changes: Any) -> dict:
    rec = copy.deepcopy(nvml_replay.load_recording())
    rec["gpus"][0].update(gpu_changes)
    return rec


def test_recorded_h100_passes_every_gpu_check(monkeypatch, tmp_path) -> None:
    results = _gpu_results(monkeypatch, tmp_path)
    gpu = [r for r in results if r.group in ("gpu", "gpu0")]
    assert not [r for r in gpu if r.status in (Status.FAIL, Status.WARN)], [
        (r.id, r.detail) for r in gpu if r.status in (Status.FAIL, Status.WARN)
    ]
    ids = _by_id(gpu)
    for must_pass in (
        "gpu.nvml",
        "gpu.count",
        "gpu.driver",
        "gpu.cuda_driver",
        "gpu.model",
        "gpu.memory",
        "gpu.persistence",
        "gpu.ecc.mode",
        "gpu.ecc.volatile_uncorrected",
        "gpu.remap.pending",
        "gpu.remap.failure",
        "gpu.pcie.gen",
        "gpu.pcie.width",
        "gpu.pcie.width_current",
        "gpu.temperature",
        "gpu.clocks_event_reasons",
        "gpu.power_limit",
        "gpu.mig",
        "gpu.compute_mode",
    ):
        assert ids[must_pass].status is Status.PASS, (must_pass, ids[must_pass])
    # what the card cannot tell is a skip that says why, never a pass
    assert ids["gpu.nvlink"].status is Status.SKIP
    assert ids["gpu.nvlink"].detail == "NVLink not supported on this card"
    assert ids["gpu.retired_pages.pending"].status is Status.SKIP
    assert "not supported" in ids["gpu.retired_pages.pending"].detail
    assert ids["gpu.xid"].status is Status.SKIP  # no kernel log in the recording
    assert ids["gpu.model"].observed == "NVIDIA H100 80GB HBM3"
    assert ids["gpu.memory"].observed == "79.6 GiB"
    # idle gen downclock is not in play here (gen 5 at idle), the reason list shows only gpu_idle
    assert ids["gpu.clocks_event_reasons"].observed == "gpu_idle"
    sw = _by_id(results, "software")
    for must_pass in (
        "software.cuda_toolkit",
        "software.python",
        "software.torch",
        "software.torch_cuda",
        "software.cuda_available",
        "software.torch_device_count",
    ):
        assert sw[must_pass].status is Status.PASS, (must_pass, sw[must_pass])


@pytest.mark.parametrize(
    ("label", "recording_changes", "spec_changes", "failing_id"),
    [
        ("a GPU missing", {}, {"gpus": 2}, "gpu.count"),
        ("PCIe x8 slot", {"pcie_width_max": 8, "pcie_width_cur": 8}, {}, "gpu.pcie.width"),
        ("x16 card trained at x8", {"pcie_width_cur": 8}, {}, "gpu.pcie.width_current"),
        ("Gen4 slot", {"pcie_gen_max": 4, "pcie_gen_cur": 4}, {}, "gpu.pcie.gen"),
        ("uncorrectable volatile ECC", {"ecc_volatile_uncorrected": 2}, {}, "gpu.ecc.volatile_uncorrected"),
        ("ECC off", {"ecc_mode": [0, 0]}, {}, "gpu.ecc.mode"),
        ("pending row remap", {"remapped_rows": [0, 1, 1, 0]}, {}, "gpu.remap.pending"),
        ("row remap failure", {"remapped_rows": [0, 3, 0, 1]}, {}, "gpu.remap.failure"),
        ("thermal slowdown", {"throttle": 0x1 | 0x40}, {}, "gpu.clocks_event_reasons"),
        ("HW power brake", {"throttle": 0x80}, {}, "gpu.clocks_event_reasons"),
        ("too hot", {"temperature": 91}, {}, "gpu.temperature"),
        ("persistence off", {"persistence": 0}, {}, "gpu.persistence"),
        ("MIG on", {"mig_mode": [1, 1]}, {}, "gpu.mig"),
        ("exclusive compute", {"compute_mode": 3}, {}, "gpu.compute_mode"),
        ("wrong driver", {}, {"nvidia_driver": "535.54.03"}, "gpu.driver"),
        ("wrong driver branch", {}, {"nvidia_driver": "570"}, "gpu.driver"),
        # the H100 the spec asks for is then missing too
        ("another card", {"name": "NVIDIA A100-SXM4-80GB"}, {}, ("gpu.model", "gpu.count")),
    ],
)
def test_each_fault_fails_its_check(
    monkeypatch, tmp_path, label, recording_changes, spec_changes, failing_id
) -> None:
    spec = nvml_replay.h100_spec()
    if "gpus" in spec_changes:
        spec = dataclasses.replace(
            spec,
            hardware=dataclasses.replace(
                spec.hardware,
                gpus=(GpuSpec(model="NVIDIA H100 80GB SXM", count=spec_changes.pop("gpus"), memory_gb=80),),
            ),
        )
    if spec_changes:
        spec = dataclasses.replace(spec, software=dataclasses.replace(spec.software, **spec_changes))
    results = _gpu_results(monkeypatch, tmp_path, recording=_rec(**recording_changes), spec=spec)
    failed = {r.id for r in results if r.status is Status.FAIL and r.group != "software"}
    want = {failing_id} if isinstance(failing_id, str) else set(failing_id)
    # the fault is pinned on the right check: nothing else in the GPU groups fails because of it
    assert failed == want, (label, [(r.id, r.status, r.detail) for r in results if r.status is Status.FAIL])


def test_branch_driver_pin_passes(monkeypatch, tmp_path) -> None:
    spec = nvml_replay.h100_spec(nvidia_driver="580")
    ids = _by_id(_gpu_results(monkeypatch, tmp_path, spec=spec))
    assert ids["gpu.driver"].status is Status.PASS
    assert ids["gpu.driver"].detail == "branch 580"


def test_idle_gen_downclock_is_not_a_fault(monkeypatch, tmp_path) -> None:
    ids = _by_id(_gpu_results(monkeypatch, tmp_path, recording=_rec(pcie_gen_cur=1)))
    assert ids["gpu.pcie.gen"].status is Status.PASS
    assert "idle" in ids["gpu.pcie.gen"].detail


def test_lifetime_ecc_errors_warn(monkeypatch, tmp_path) -> None:
    ids = _by_id(_gpu_results(monkeypatch, tmp_path, recording=_rec(ecc_aggregate_uncorrected=5)))
    assert ids["gpu.ecc.aggregate_uncorrected"].status is Status.WARN


def test_power_capped_below_default_warns(monkeypatch, tmp_path) -> None:
    ids = _by_id(_gpu_results(monkeypatch, tmp_path, recording=_rec(power_limit_mw=400000)))
    assert ids["gpu.power_limit"].status is Status.WARN
    assert "57%" in ids["gpu.power_limit"].detail


def test_a_gpu_failing_calls_costs_only_those_fields(monkeypatch, tmp_path) -> None:
    lost = "ERR NVMLError_GpuIsLost: GPU is lost"
    rec = _rec(temperature=lost, ecc_mode=lost, remapped_rows=lost)
    snap = nvml_replay.h100_snapshot(monkeypatch, tmp_path, recording=rec)
    g = snap["nvml"]["gpus"][0]
    assert g["temperature_c"] == {"unavailable": "GPU is lost (fell off the bus)"}
    assert g["remapped_rows_pending"] == {"unavailable": "GPU is lost (fell off the bus)"}
    assert g["name"] == "NVIDIA H100 80GB HBM3"
    ids = _by_id(run_checks(nvml_replay.h100_spec(), snap, only=("gpu",)))
    assert ids["gpu.temperature"].status is Status.SKIP
    assert ids["gpu.ecc.mode"].status is Status.FAIL  # ECC required and unreadable: never a silent pass
    assert "GPU is lost" in ids["gpu.ecc.mode"].detail


def test_nvlink_links_judged_where_the_card_has_them(monkeypatch, tmp_path) -> None:
    ids = _by_id(_gpu_results(monkeypatch, tmp_path, recording=_rec(nvlink=[1] * 18)))
    assert ids["gpu.nvlink"].status is Status.PASS
    assert ids["gpu.nvlink"].observed == "18/18 up"
    ids = _by_id(_gpu_results(monkeypatch, tmp_path / "b", recording=_rec(nvlink=[1] * 17 + [0])))
    assert ids["gpu.nvlink"].status is Status.FAIL
    assert "17" in ids["gpu.nvlink"].detail


@pytest.mark.parametrize(
    ("label", "env_changes", "failing_id"),
    [
        (
            "torch built for another CUDA",
            {"torch": "2.11.0+cu126", "torch_cuda": "12.6"},
            "software.torch_cuda",
        ),
        ("torch sees fewer GPUs", {"device_count": 0}, "software.torch_device_count"),
        ("CUDA not usable from torch", {"cuda_available": False}, "software.cuda_available"),
        ("wrong torch", {"torch": "2.10.0+cu130"}, "software.torch"),
        (
            "torch not importable",
            {"torch": {"unavailable": "torch not importable: ModuleNotFoundError"}},
            "software.torch",
        ),
    ],
)
def test_env_faults_fail_their_check(monkeypatch, tmp_path, label, env_changes, failing_id) -> None:
    env = {**nvml_replay.h100_env_record(), **env_changes}
    results = _gpu_results(monkeypatch, tmp_path, env_record=env)
    ids = _by_id(results, "software")
    assert ids[failing_id].status is Status.FAIL, (label, ids[failing_id])


@pytest.mark.parametrize(
    ("error", "phrase"),
    [
        ("NVMLError_LibraryNotFound", "libnvidia-ml.so.1) not found"),
        ("NVMLError_DriverNotLoaded", "driver not loaded"),
        ("NVMLError_LibRmVersionMismatch", "driver/library version mismatch"),
        ("NVMLError_NoPermission", "no permission"),
    ],
)
def test_nvml_init_failures_are_one_clear_failed_check(monkeypatch, error, phrase) -> None:
    from dlverify import snapshot

    nvml_replay.install(monkeypatch, init_error=error)
    snap = snapshot.take(nvml_replay.h100_spec(), only=("gpu",))
    assert set(snap["nvml"]) == {"unavailable"}
    assert phrase in snap["nvml"]["unavailable"]
    ids = _by_id(run_checks(nvml_replay.h100_spec(), snap, only=("gpu",)))
    assert ids["gpu.nvml"].status is Status.FAIL
    assert phrase in ids["gpu.nvml"].detail
    assert ids["gpu.count"].status is Status.FAIL
    assert ids["gpu.driver"].status is Status.SKIP


def test_no_gpus_fails_the_count(monkeypatch) -> None:
    from dlverify import snapshot

    rec = nvml_replay.load_recording()
    rec["gpus"] = []
    nvml_replay.install(monkeypatch, rec)
    snap = snapshot.take(nvml_replay.h100_spec(), only=("gpu",))
    ids = _by_id(run_checks(nvml_replay.h100_spec(), snap, only=("gpu",)))
    assert snap["nvml"]["gpu_count"] == 0
    assert ids["gpu.count"].status is Status.FAIL
    assert ids["gpu.count"].observed == "none"
