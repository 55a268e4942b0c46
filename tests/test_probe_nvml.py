"""The NVML probe on the recorded H100 agrees with that card's own `nvidia-smi -q -x`."""

from __future__ import annotations

import nvml_replay
import pytest

from dlverify.probes import smi
from dlverify.probes.gpu import decode_clock_event_reasons, probe_nvml
from dlverify.probes.nvml import Unavailable, query
from dlverify.snapshot import to_jsonable

SMI_XML = (nvml_replay.H100 / "nvidia-smi-q.xml").read_text()

# in nvidia-smi's output but not among the calls the NVML recording made (so the replay says NotSupported)
NOT_RECORDED = {"clock_mem_mhz"}


def test_smi_parser_reads_the_recorded_card() -> None:
    doc = smi.parse(SMI_XML)
    g = doc["gpus"][0]
    assert doc["driver_version"] == "580.159.04"
    assert doc["cuda_driver_version"] == "13.0"
    assert g["name"] == "NVIDIA H100 80GB HBM3"
    assert g["memory_total_mib"] == 81559
    assert (g["pcie_gen_max"], g["pcie_width_max"], g["pcie_width_current"]) == (5, 16, 16)
    assert g["ecc_mode_current"] is True and g["ecc_volatile_uncorrected"] == 0
    assert g["temperature_c"] == 31
    assert g["power_limit_mw"] == 700000 and g["power_default_limit_mw"] == 700000
    assert g["persistence_mode"] is True and g["mig_mode_current"] is False
    assert g["clocks_event_reasons"] == ["gpu_idle"]
    assert g["compute_mode"] == "default"


def test_probe_agrees_with_nvidia_smi(monkeypatch) -> None:
    nvml_replay.install(monkeypatch)
    probed = to_jsonable(probe_nvml())
    rows = smi.compare(probed, smi.parse(SMI_XML))
    compared = {r["field"] for r in rows}
    # the list: name, driver, memory, PCIe, ECC, temperature, power limit, persistence, MIG, clocks
    for field in (
        "name",
        "driver_version",
        "memory_total_mib",
        "pcie_gen_max",
        "pcie_gen_current",
        "pcie_width_max",
        "pcie_width_current",
        "ecc_mode_current",
        "ecc_volatile_uncorrected",
        "temperature_c",
        "power_limit_mw",
        "power_default_limit_mw",
        "persistence_mode",
        "mig_mode_current",
        "clock_sm_mhz",
        "clock_sm_max_mhz",
        "clock_mem_max_mhz",
        "clocks_event_reasons",
        "uuid",
        "pci_bus_id",
        "vbios_version",
        "remapped_rows_pending",
    ):
        assert field in compared, field
    disagree = {r["field"] for r in rows if not r["agree"]}
    assert disagree == NOT_RECORDED, [r for r in rows if not r["agree"]]


def test_compare_catches_a_disagreement(monkeypatch) -> None:
    rec = nvml_replay.load_recording()
    rec["gpus"][0]["pcie_width_max"] = 8
    nvml_replay.install(monkeypatch, rec)
    rows = smi.compare(to_jsonable(probe_nvml()), smi.parse(SMI_XML))
    bad = {r["field"]: r for r in rows if not r["agree"]}
    assert bad["pcie_width_max"]["nvml"] == 8 and bad["pcie_width_max"]["smi"] == 16


def test_replay_raises_the_real_pynvml_errors(monkeypatch) -> None:
    import pynvml

    mod = nvml_replay.install(monkeypatch)
    h = mod.nvmlDeviceGetHandleByIndex(0)
    with pytest.raises(pynvml.NVMLError_NotSupported):
        mod.nvmlDeviceGetFanSpeed(h)
    with pytest.raises(pynvml.NVMLError_NotSupported):  # not in the recording at all
        mod.nvmlDeviceGetEncoderUtilization(h)
    assert query("nvmlDeviceGetFanSpeed", h) == Unavailable("not supported on this GPU")


def test_clock_event_reason_names() -> None:
    assert decode_clock_event_reasons(0) == []
    assert decode_clock_event_reasons(0x1 | 0x4 | 0x40) == ["gpu_idle", "sw_power_cap", "hw_thermal_slowdown"]
    assert decode_clock_event_reasons(0x800) == ["unknown_0x800"]


def test_old_drivers_fall_back_to_throttle_reasons(monkeypatch) -> None:
    mod = nvml_replay.install(monkeypatch)

    def gone(*_):
        raise mod.NVMLError_FunctionNotFound()

    monkeypatch.setattr(mod, "nvmlDeviceGetCurrentClocksEventReasons", gone)
    g = to_jsonable(probe_nvml())["gpus"][0]
    assert g["clocks_event_reasons"] == ["gpu_idle"]


def test_this_machine_without_nvidia_driver_gives_a_reason() -> None:
    """Real pynvml on the test machine (no NVIDIA driver in CI): an Unavailable with a clear reason."""
    import shutil

    if shutil.which("nvidia-smi"):
        pytest.skip("an NVIDIA driver is installed here")
    got = probe_nvml()
    assert isinstance(got, Unavailable)
    assert "not found" in got.reason or "not loaded" in got.reason


def test_live_compare_tolerates_movement_between_reads(monkeypatch) -> None:
    rec = nvml_replay.load_recording()
    rec["gpus"][0]["temperature"] = 33  # two degrees warmer than when nvidia-smi read it
    nvml_replay.install(monkeypatch, rec)
    probed = to_jsonable(probe_nvml())
    rows = {r["field"]: r for r in smi.compare(probed, smi.parse(SMI_XML), live=True)}
    assert rows["temperature_c"]["agree"]
    rows = {r["field"]: r for r in smi.compare(probed, smi.parse(SMI_XML))}
    assert not rows["temperature_c"]["agree"]
