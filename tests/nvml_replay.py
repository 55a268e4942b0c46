"""NVML replay: a STAND-IN for the `pynvml` module, built from a recording of a real GPU.

Not NVIDIA's code and not a mock of our probe: it replays what nvidia-ml-py returned on a real machine
(tests/fixtures/<card>/nvml_snapshot.json), call by call, so the REAL probe code (dlverify.probes.gpu via
dlverify.probes.nvml.query) runs on recorded data. Rules:

- constants and the NVMLError class family are the real pynvml's, so error mapping is exercised for real;
- a recorded ``"ERR NVMLError_<Name>: ..."`` raises that real pynvml exception class;
- a call the recording does not hold raises ``NVMLError_NotSupported``: the recording was made with a fixed
  list of calls, and "not supported" is what NVML answers for a feature it does not have (documented so
  nobody mistakes a missing recording for a card property);
- ``init_error`` makes ``nvmlInit`` raise like a machine without a driver, with a broken one, etc.

The counters issue 10 added (PCIe replays, NVLink error counters, application clocks, the clocks-event
counters and GPU recovery action as NVML field values, the unrepairable-memory flag) are not in either
``nvml_snapshot.json``. For the H100 they come from the same machine's ``nvidia-smi -q -x``
(tests/fixtures/h100-sxm-80gb/nvidia-smi-q.xml, read by :func:`load_recording` into the keys ``pcie_replay``,
``app_clock_*`` and ``field_values``); the H200 has no nvidia-smi recording, so on it these calls answer
NotSupported (field values: NOT_SUPPORTED in each field's slot, as NVML does for a field it lacks). That is
the replay's honest "not recorded", not a property of the card: a real H200 on this driver answers them.
NVLink error counters and the unrepairable-memory flag were recorded on neither card: NotSupported (the
recorded cards have no NVLink; nvidia-smi 580 prints no unrepairable-memory line). A fault test adds the
key to a copy of the recording.

Use :func:`install` with pytest's monkeypatch: it swaps the module where dlverify.probes.nvml looks for it.
A whole recorded host (a spec it passes, its env record, a fake filesystem root, a snapshot taken by the real
code) is built in ``replay_host.py`` on top of this module.
"""

from __future__ import annotations

import copy
import json
import types
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pynvml as _real

FIXTURES = Path(__file__).parent / "fixtures"
EXAMPLES = Path(__file__).resolve().parents[1] / "hwspec" / "examples"
H100 = FIXTURES / "h100-sxm-80gb"
H200 = FIXTURES / "h200"


@dataclass(frozen=True)
class Card:
    """One recorded machine, and what a spec for it asks (written here from the recordings, not from the
    probe): the spec's GPU model and its size as sold, and the example spec in hwspec/examples."""

    label: str  # how messages name it: "H100"
    folder: Path
    spec_model: str
    memory_gb: float
    example: Path

    @property
    def id(self) -> str:
        return self.folder.name

    def software(self) -> dict[str, Any]:
        return json.loads((self.folder / "software.json").read_text())

    def nvml_name(self) -> str:
        return load_recording(self.folder)["gpus"][0]["name"]


CARDS = {
    "h100": Card("H100", H100, "NVIDIA H100 80GB SXM", 80, EXAMPLES / "h100-sxm-80gb.yaml"),
    "h200": Card("H200", H200, "NVIDIA H200", 141, EXAMPLES / "h200.yaml"),
}


def load_recording(card: Path | Card = H100) -> dict[str, Any]:
    folder = card.folder if isinstance(card, Card) else card
    rec = json.loads((folder / "nvml_snapshot.json").read_text())
    xml = folder / "nvidia-smi-q.xml"
    if xml.is_file() and len(rec.get("gpus", [])) == 1:
        rec["gpus"][0].update(_from_smi_xml(xml))
    return rec


def _from_smi_xml(path: Path) -> dict[str, Any]:
    """What the same machine's ``nvidia-smi -q -x`` recorded for the calls nvml_snapshot.json lacks."""
    import xml.etree.ElementTree as ET

    gpu = ET.parse(path).getroot().find("gpu")
    assert gpu is not None

    def num(tag: str) -> int:
        text = (gpu.findtext(tag) or "").split()
        return int(text[0])

    out: dict[str, Any] = {
        "pcie_replay": num("pci/replay_counter"),
        "app_clock_graphics": num("applications_clocks/graphics_clock"),
        "app_clock_mem": num("applications_clocks/mem_clock"),
        "app_clock_graphics_default": num("default_applications_clocks/graphics_clock"),
        "app_clock_mem_default": num("default_applications_clocks/mem_clock"),
    }
    actions = {"None": 0, "Reset": 1, "Reboot": 2, "Drain P2P": 3, "Drain and Reset": 4}
    counters = "clocks_event_reasons_counters/clocks_event_reasons_counters_"
    us = 1000  # nvidia-smi prints the counters in us, NVML's fields are ns
    out["field_values"] = {
        "230": actions[gpu.findtext("gpu_recovery_action") or ""],
        "74": num(counters + "sw_power_cap") * us,
        "76": num(counters + "sync_boost") * us,
        "269": num(counters + "sw_therm_slowdown") * us,
        "270": num(counters + "hw_therm_slowdown") * us,
        "271": num(counters + "hw_power_brake") * us,
    }
    return out


def _raise(name: str) -> None:
    raise getattr(_real, name)()


def _value(v: Any) -> Any:
    if isinstance(v, str) and v.startswith("ERR "):
        _raise(v[4:].split(":", 1)[0].strip())
    return v


class _Handle:
    def __init__(self, gpu: dict[str, Any]) -> None:
        self.gpu = gpu


def _field(key: str, wrap: Any = None) -> Any:
    def fn(handle: _Handle, *args: Any) -> Any:
        if key not in handle.gpu:
            _raise("NVMLError_NotSupported")
        v = _value(handle.gpu[key])
        return wrap(v) if wrap else v

    return fn


def _ns(v: dict[str, Any]) -> types.SimpleNamespace:
    return types.SimpleNamespace(**v)


def build(recording: dict[str, Any], init_error: str | None = None) -> types.ModuleType:
    """A pynvml look-alike answering from ``recording`` (a dict shaped like nvml_snapshot.json)."""
    rec = copy.deepcopy(recording)
    mod = types.ModuleType("pynvml_replay")
    for name in dir(_real):  # constants, NVMLError and its subclasses; not the functions
        if not name.startswith("nvml") or name.startswith("nvmlClocks"):
            setattr(mod, name, getattr(_real, name))
    gpus = rec.get("gpus", [])

    def init() -> None:
        if init_error:
            _raise(init_error)

    def by_index(i: int) -> _Handle:
        if not 0 <= i < len(gpus):
            _raise("NVMLError_InvalidArgument")
        return _Handle(gpus[i])

    def ecc_errors(h: _Handle, err_type: int, counter: int) -> int:
        if err_type != _real.NVML_MEMORY_ERROR_TYPE_UNCORRECTED:
            _raise("NVMLError_NotSupported")
        key = (
            "ecc_volatile_uncorrected" if counter == _real.NVML_VOLATILE_ECC else "ecc_aggregate_uncorrected"
        )
        return _field(key)(h)

    def retired(h: _Handle, cause: int) -> Any:
        dbe = cause == _real.NVML_PAGE_RETIREMENT_CAUSE_DOUBLE_BIT_ECC_ERROR
        return _field("retired_pages_dbe" if dbe else "retired_pages_sbe")(h)

    def clock(current: bool) -> Any:
        def fn(h: _Handle, kind: int) -> Any:
            base = {_real.NVML_CLOCK_SM: "clock_sm", _real.NVML_CLOCK_MEM: "clock_mem"}.get(
                kind, "clock_other"
            )
            return _field(base if current else base + "_max")(h)

        return fn

    def nvlink(h: _Handle, link: int) -> Any:
        links = h.gpu.get("nvlink", [])
        if link >= len(links):
            _raise("NVMLError_NotSupported")
        return _value(links[link])

    def fabric(h: _Handle, info: Any) -> int:
        """Fills the caller's fabric-info struct like NVML does; the recordings' single GPUs (PCIe-attached
        in a VM) have no fabric, which NVML answers as NotSupported."""
        rec_fabric = _value(h.gpu.get("fabric", "ERR NVMLError_NotSupported"))
        info.state, info.status = rec_fabric["state"], rec_fabric["status"]
        return _real.NVML_SUCCESS

    def app_clock(default: bool) -> Any:
        def fn(h: _Handle, kind: int) -> Any:
            base = {_real.NVML_CLOCK_GRAPHICS: "app_clock_graphics", _real.NVML_CLOCK_MEM: "app_clock_mem"}
            if kind not in base:
                _raise("NVMLError_NotSupported")
            return _field(base[kind] + ("_default" if default else ""))(h)

        return fn

    def nvlink_error(h: _Handle, link: int, counter: int) -> Any:
        """``nvlink_errors``: one list per link of the NVML_NVLINK_ERROR_DL_* counters, when recorded."""
        per_link = h.gpu.get("nvlink_errors")
        if per_link is None or link >= len(per_link) or counter >= len(per_link[link]):
            _raise("NVMLError_NotSupported")
        return _value(per_link[link][counter])

    def field_values(h: _Handle, ids: list[Any]) -> list[Any]:
        """Like NVML: the call succeeds and each field carries its own return code; a field not recorded
        answers NOT_SUPPORTED in its slot."""
        recorded = h.gpu.get("field_values", {})
        out = []
        for fid in ids:
            v = recorded.get(str(fid))
            ret = _real.NVML_SUCCESS if isinstance(v, int) else _real.NVML_ERROR_NOT_SUPPORTED
            val = types.SimpleNamespace(ullVal=v if isinstance(v, int) else 0)
            out.append(
                types.SimpleNamespace(
                    fieldId=fid, nvmlReturn=ret, valueType=_real.NVML_VALUE_TYPE_UNSIGNED_LONG_LONG, value=val
                )
            )
        return out

    def temperature(h: _Handle, sensor: int) -> Any:
        if sensor != _real.NVML_TEMPERATURE_GPU:
            _raise("NVMLError_NotSupported")
        return _field("temperature")(h)

    calls: dict[str, Any] = {
        "nvmlInit": init,
        "nvmlShutdown": lambda: None,
        "nvmlSystemGetDriverVersion": lambda: _value(rec["driver"]),
        "nvmlSystemGetNVMLVersion": lambda: _value(rec["nvml"]),
        "nvmlSystemGetCudaDriverVersion": lambda: _value(rec["cuda_driver"]),
        "nvmlSystemGetCudaDriverVersion_v2": lambda: _value(rec["cuda_driver"]),
        "nvmlDeviceGetCount": lambda: len(gpus),
        "nvmlDeviceGetHandleByIndex": by_index,
        "nvmlDeviceGetName": _field("name"),
        "nvmlDeviceGetUUID": _field("uuid"),
        "nvmlDeviceGetSerial": _field("serial"),
        "nvmlDeviceGetVbiosVersion": _field("vbios"),
        "nvmlDeviceGetPciInfo": _field("pci", _ns),
        "nvmlDeviceGetMemoryInfo": _field("memory", _ns),
        "nvmlDeviceGetEccMode": _field("ecc_mode", list),
        "nvmlDeviceGetTotalEccErrors": ecc_errors,
        "nvmlDeviceGetRemappedRows": _field("remapped_rows", tuple),
        "nvmlDeviceGetRetiredPages": retired,
        "nvmlDeviceGetRetiredPagesPendingStatus": _field("retired_pages_pending"),
        "nvmlDeviceGetTemperature": temperature,
        "nvmlDeviceGetGpuFabricInfoV": fabric,
        "nvmlDeviceGetGpuFabricInfo": fabric,
        "nvmlDeviceGetPowerUsage": _field("power_usage_mw"),
        "nvmlDeviceGetEnforcedPowerLimit": _field("power_limit_mw"),
        "nvmlDeviceGetPowerManagementLimit": _field("power_limit_mw"),
        "nvmlDeviceGetPowerManagementDefaultLimit": _field("power_default_limit_mw"),
        "nvmlDeviceGetClockInfo": clock(True),
        "nvmlDeviceGetMaxClockInfo": clock(False),
        "nvmlDeviceGetCurrentClocksEventReasons": _field("throttle"),
        "nvmlDeviceGetCurrentClocksThrottleReasons": _field("throttle"),
        "nvmlDeviceGetPersistenceMode": _field("persistence"),
        "nvmlDeviceGetComputeMode": _field("compute_mode"),
        "nvmlDeviceGetMigMode": _field("mig_mode", list),
        "nvmlDeviceGetCudaComputeCapability": _field("cuda_cc", tuple),
        "nvmlDeviceGetCurrPcieLinkGeneration": _field("pcie_gen_cur"),
        "nvmlDeviceGetMaxPcieLinkGeneration": _field("pcie_gen_max"),
        "nvmlDeviceGetGpuMaxPcieLinkGeneration": _field("pcie_gen_gpu_max"),
        "nvmlDeviceGetCurrPcieLinkWidth": _field("pcie_width_cur"),
        "nvmlDeviceGetMaxPcieLinkWidth": _field("pcie_width_max"),
        "nvmlDeviceGetNvLinkState": nvlink,
        "nvmlDeviceGetPerformanceState": _field("perf_state"),
        "nvmlDeviceGetUtilizationRates": _field("utilization", _ns),
        "nvmlDeviceGetFanSpeed": _field("fan"),
        "nvmlDeviceGetNumaNodeId": _field("numa_node"),
        "nvmlDeviceGetPcieReplayCounter": _field("pcie_replay"),
        "nvmlDeviceGetApplicationsClock": app_clock(False),
        "nvmlDeviceGetDefaultApplicationsClock": app_clock(True),
        "nvmlDeviceGetNvLinkErrorCounter": nvlink_error,
        "nvmlDeviceGetFieldValues": field_values,
        "nvmlDeviceGetUnrepairableMemoryFlag_v1": _field("unrepairable_memory"),
    }
    for name, fn in calls.items():
        setattr(mod, name, fn)

    def __getattr__(name: str) -> Any:  # PEP 562: any other NVML call is "not in the recording"
        if name.startswith("nvml"):
            return lambda *a: _raise("NVMLError_NotSupported")
        raise AttributeError(name)

    mod.__getattr__ = __getattr__  # type: ignore[attr-defined]
    return mod


def install(monkeypatch: Any, recording: dict[str, Any] | None = None, init_error: str | None = None) -> Any:
    """Make dlverify's NVML layer talk to the replay; returns the replay module."""
    import dlverify.probes.nvml as nvml

    mod = build(load_recording() if recording is None else recording, init_error)
    monkeypatch.setattr(nvml, "_pynvml", mod)
    return mod
