"""GPU probe: everything the verifier needs from NVML, as one plain record per GPU.

Every call goes through :func:`dlverify.probes.nvml.query`, so a GPU that refuses one call (not supported,
no permission, fell off the bus) costs that field only: it is stored as an :class:`Unavailable` with the
reason. The probe never judges; units are in the field names.
"""

from __future__ import annotations

from typing import Any

from dlverify import clocks
from dlverify.probes.nvml import NvmlInitError, field_values, query, session
from dlverify.unavailable import NO_FABRIC, NO_NVLINK, Unavailable, is_unavailable

# NVML clocks-event (formerly "throttle") reason bits -> names: the table is dlverify.clocks
CLOCK_EVENT_REASONS: dict[int, str] = {r.bit: r.name for r in clocks.REASONS}

COMPUTE_MODES = {0: "default", 1: "exclusive_thread", 2: "prohibited", 3: "exclusive_process"}

# nvmlGpuFabricState_t: how far nvidia-fabricmanager got in registering this GPU with the NVSwitch fabric
FABRIC_STATES = {0: "not_supported", 1: "not_started", 2: "in_progress", 3: "completed"}
_NOT_HERE = ("not in this driver's NVML", "not in this nvidia-ml-py version")


decode_clock_event_reasons = clocks.decode


def cuda_version_string(value: int | Unavailable) -> str | Unavailable:
    """NVML's CUDA driver API version (12020) as "12.2"."""
    if isinstance(value, Unavailable):
        return value
    return f"{value // 1000}.{(value % 1000) // 10}"


def _map(value: Any, fn: Any) -> Any:
    return value if isinstance(value, Unavailable) else fn(value)


def _item(value: Any, index: int) -> Any:
    return _map(value, lambda v: v[index])


def _attr(value: Any, name: str) -> Any:
    def get(v: Any) -> Any:
        got = getattr(v, name)
        return got.decode(errors="replace") if isinstance(got, bytes) else got

    return _map(value, get)


def _nvlink(nv: Any, handle: Any) -> list[dict[str, Any]] | Unavailable:
    """State of each NVLink link; a card without NVLink answers NotSupported on link 0."""
    links: list[dict[str, Any]] = []
    first: Unavailable | None = None
    for link in range(int(getattr(nv, "NVML_NVLINK_MAX_LINKS", 18))):
        state = query("nvmlDeviceGetNvLinkState", handle, link)
        if isinstance(state, Unavailable):
            if link == 0:
                first = state
                break
            continue  # links past the card's count answer NotSupported / InvalidArgument
        links.append({"link": link, "active": bool(state)})
    if not links:
        reason = first.reason if first is not None else "no link answered"
        if "not supported" in reason.lower():
            return Unavailable(NO_NVLINK)
        return Unavailable(f"NVLink state unreadable: {reason}")
    return links


def _return_name(nv: Any, code: int) -> str:
    """NVML's name for a return code (``NVML_ERROR_NOT_READY``), found offline among pynvml's constants."""
    for name in dir(nv):
        if (name == "NVML_SUCCESS" or name.startswith("NVML_ERROR_")) and getattr(nv, name) == code:
            return name
    return f"NVML return code {code}"


def _fabric(nv: Any, handle: Any) -> dict[str, Any] | Unavailable:
    """Fabric registration (Hopper and later): the versioned call, else the older one (drivers < 550)."""
    last = Unavailable("no fabric query in this nvidia-ml-py version")
    for fn, struct in (
        ("nvmlDeviceGetGpuFabricInfoV", "c_nvmlGpuFabricInfoV_t"),
        ("nvmlDeviceGetGpuFabricInfo", "c_nvmlGpuFabricInfo_t"),
    ):
        make = getattr(nv, struct, None)
        if make is None:
            continue
        info = make()
        got = query(fn, handle, info)
        if isinstance(got, Unavailable):
            last = got
            if got.reason in _NOT_HERE:
                continue
            break
        state = FABRIC_STATES.get(int(info.state), f"state {int(info.state)}")
        if state == "not_supported":
            return Unavailable(NO_FABRIC)
        return {"state": state, "status": _return_name(nv, int(info.status))}
    return Unavailable(NO_FABRIC) if "not supported" in last.reason else last


# nvmlDeviceGetNvLinkErrorCounter counters (NVML_NVLINK_ERROR_DL_*) -> snapshot names
NVLINK_ERRORS = {"replay": 0, "recovery": 1, "crc_flit": 2, "crc_data": 3}

# cumulative clocks-event counters (ns since the driver loaded), NVML field ids (drivers >= 535 have
# sw_power_cap and sync_boost as the PERF_POLICY counters; the thermal/brake ones are newer fields)
CLOCK_EVENT_COUNTER_FIELDS = {
    "sw_power_cap": 74,  # NVML_FI_DEV_CLOCKS_EVENT_REASON_SW_POWER_CAP (= NVML_FI_DEV_PERF_POLICY_POWER)
    "sync_boost": 76,  # NVML_FI_DEV_CLOCKS_EVENT_REASON_SYNC_BOOST (= NVML_FI_DEV_PERF_POLICY_SYNC_BOOST)
    "sw_thermal_slowdown": 269,  # NVML_FI_DEV_CLOCKS_EVENT_REASON_SW_THERM_SLOWDOWN
    "hw_thermal_slowdown": 270,  # NVML_FI_DEV_CLOCKS_EVENT_REASON_HW_THERM_SLOWDOWN
    "hw_power_brake_slowdown": 271,  # NVML_FI_DEV_CLOCKS_EVENT_REASON_HW_POWER_BRAKE_SLOWDOWN
}
RECOVERY_ACTION_FIELD = 230  # NVML_FI_DEV_GET_GPU_RECOVERY_ACTION (drivers >= 570)
# nvmlDeviceGpuRecoveryAction_t
RECOVERY_ACTIONS = {
    0: "none",
    1: "gpu_reset",
    2: "node_reboot",
    3: "drain_p2p",
    4: "drain_and_reset",
    5: "recover_imex_domain",
    6: "bus_reset",
    7: "system_reboot",
}


def _nvlink_errors(handle: Any, links: Any) -> dict[str, int] | Unavailable:
    """NVLink replay/recovery/CRC error counters summed over the card's links (NVML counts per link)."""
    if isinstance(links, Unavailable):
        return links
    total = dict.fromkeys(NVLINK_ERRORS, 0)
    first: Unavailable | None = None
    answered = 0
    for entry in links:
        for name, counter in NVLINK_ERRORS.items():
            got = query("nvmlDeviceGetNvLinkErrorCounter", handle, entry["link"], counter)
            if isinstance(got, Unavailable):
                first = first or got
                continue
            total[name] += int(got)
            answered += 1
    if not answered:
        return Unavailable(f"NVLink error counters: {first.reason if first else 'no link'}")
    return total


def _clock_event_counters(fields: dict[int, Any] | Unavailable) -> dict[str, int] | Unavailable:
    if isinstance(fields, Unavailable):
        return fields
    got = {n: fields[f] for n, f in CLOCK_EVENT_COUNTER_FIELDS.items() if not is_unavailable(fields[f])}
    if not got:
        return fields[CLOCK_EVENT_COUNTER_FIELDS["hw_thermal_slowdown"]]
    return {n: int(v) for n, v in got.items()}


def _recovery_action(fields: dict[int, Any] | Unavailable) -> str | Unavailable:
    if isinstance(fields, Unavailable):
        return fields
    v = fields[RECOVERY_ACTION_FIELD]
    return v if isinstance(v, Unavailable) else RECOVERY_ACTIONS.get(int(v), f"action {int(v)}")


def _clock_event_reasons(handle: Any) -> int | Unavailable:
    mask = query("nvmlDeviceGetCurrentClocksEventReasons", handle)
    if isinstance(mask, Unavailable):  # drivers before 535 only know the old name
        older = query("nvmlDeviceGetCurrentClocksThrottleReasons", handle)
        return mask if isinstance(older, Unavailable) else older
    return mask


def probe_device(nv: Any, index: int) -> dict[str, Any]:
    handle = query("nvmlDeviceGetHandleByIndex", index)
    if isinstance(handle, Unavailable):
        return {"index": index, "unavailable": f"no handle for GPU {index}: {handle.reason}"}
    h = handle
    c = nv
    ecc_mode = query("nvmlDeviceGetEccMode", h)
    mig_mode = query("nvmlDeviceGetMigMode", h)
    remap = query("nvmlDeviceGetRemappedRows", h)
    cc = query("nvmlDeviceGetCudaComputeCapability", h)
    util = query("nvmlDeviceGetUtilizationRates", h)
    reasons = _clock_event_reasons(h)
    pstate = query("nvmlDeviceGetPerformanceState", h)
    retired_dbe = query("nvmlDeviceGetRetiredPages", h, c.NVML_PAGE_RETIREMENT_CAUSE_DOUBLE_BIT_ECC_ERROR)
    retired_sbe = query(
        "nvmlDeviceGetRetiredPages", h, c.NVML_PAGE_RETIREMENT_CAUSE_MULTIPLE_SINGLE_BIT_ECC_ERRORS
    )
    nvlink = _nvlink(nv, h)
    fields = field_values(h, [*CLOCK_EVENT_COUNTER_FIELDS.values(), RECOVERY_ACTION_FIELD])
    app_clock, app_default = "nvmlDeviceGetApplicationsClock", "nvmlDeviceGetDefaultApplicationsClock"
    return {
        "index": index,
        "name": query("nvmlDeviceGetName", h),
        "uuid": query("nvmlDeviceGetUUID", h),
        "serial": query("nvmlDeviceGetSerial", h),
        "pci_bus_id": _attr(query("nvmlDeviceGetPciInfo", h), "busId"),
        "vbios_version": query("nvmlDeviceGetVbiosVersion", h),
        "memory_total_bytes": _attr(query("nvmlDeviceGetMemoryInfo", h), "total"),
        "ecc_mode_current": _map(_item(ecc_mode, 0), bool),
        "ecc_mode_pending": _map(_item(ecc_mode, 1), bool),
        "ecc_volatile_uncorrected": query(
            "nvmlDeviceGetTotalEccErrors", h, c.NVML_MEMORY_ERROR_TYPE_UNCORRECTED, c.NVML_VOLATILE_ECC
        ),
        "ecc_aggregate_uncorrected": query(
            "nvmlDeviceGetTotalEccErrors", h, c.NVML_MEMORY_ERROR_TYPE_UNCORRECTED, c.NVML_AGGREGATE_ECC
        ),
        "remapped_rows_correctable": _item(remap, 0),
        "remapped_rows_uncorrectable": _item(remap, 1),
        "remapped_rows_pending": _map(_item(remap, 2), bool),
        "remapped_rows_failure": _map(_item(remap, 3), bool),
        "retired_pages_dbe_count": _map(retired_dbe, len),
        "retired_pages_sbe_count": _map(retired_sbe, len),
        "retired_pages_pending": _map(query("nvmlDeviceGetRetiredPagesPendingStatus", h), bool),
        "temperature_c": query("nvmlDeviceGetTemperature", h, c.NVML_TEMPERATURE_GPU),
        "power_usage_mw": query("nvmlDeviceGetPowerUsage", h),
        "power_limit_mw": query("nvmlDeviceGetEnforcedPowerLimit", h),
        "power_default_limit_mw": query("nvmlDeviceGetPowerManagementDefaultLimit", h),
        "clock_sm_mhz": query("nvmlDeviceGetClockInfo", h, c.NVML_CLOCK_SM),
        "clock_sm_max_mhz": query("nvmlDeviceGetMaxClockInfo", h, c.NVML_CLOCK_SM),
        "clock_mem_mhz": query("nvmlDeviceGetClockInfo", h, c.NVML_CLOCK_MEM),
        "clock_mem_max_mhz": query("nvmlDeviceGetMaxClockInfo", h, c.NVML_CLOCK_MEM),
        "clocks_event_reasons_mask": reasons,
        "clocks_event_reasons": _map(reasons, decode_clock_event_reasons),
        "clocks_event_counters_ns": _clock_event_counters(fields),
        "app_clock_graphics_mhz": query(app_clock, h, c.NVML_CLOCK_GRAPHICS),
        "app_clock_graphics_default_mhz": query(app_default, h, c.NVML_CLOCK_GRAPHICS),
        "app_clock_mem_mhz": query(app_clock, h, c.NVML_CLOCK_MEM),
        "app_clock_mem_default_mhz": query(app_default, h, c.NVML_CLOCK_MEM),
        "recovery_action": _recovery_action(fields),
        "unrepairable_memory": _map(query("nvmlDeviceGetUnrepairableMemoryFlag_v1", h), bool),
        "persistence_mode": _map(query("nvmlDeviceGetPersistenceMode", h), bool),
        "compute_mode": _map(query("nvmlDeviceGetComputeMode", h), lambda m: COMPUTE_MODES.get(m, str(m))),
        "mig_mode_current": _map(_item(mig_mode, 0), bool),
        "mig_mode_pending": _map(_item(mig_mode, 1), bool),
        "compute_capability": _map(cc, lambda v: f"{v[0]}.{v[1]}"),
        "pcie_gen_current": query("nvmlDeviceGetCurrPcieLinkGeneration", h),
        "pcie_gen_max": query("nvmlDeviceGetMaxPcieLinkGeneration", h),  # this GPU in this slot
        "pcie_gen_gpu_max": query("nvmlDeviceGetGpuMaxPcieLinkGeneration", h),  # the GPU alone
        "pcie_width_current": query("nvmlDeviceGetCurrPcieLinkWidth", h),
        "pcie_width_max": query("nvmlDeviceGetMaxPcieLinkWidth", h),
        "pcie_replay_count": query("nvmlDeviceGetPcieReplayCounter", h),
        "nvlink": nvlink,
        "nvlink_errors": _nvlink_errors(h, nvlink),
        "fabric": _fabric(nv, h),
        "perf_state": _map(pstate, lambda p: f"P{p}"),
        "utilization_gpu_pct": _attr(util, "gpu"),
        "utilization_memory_pct": _attr(util, "memory"),
    }


def probe_nvml() -> dict[str, Any] | Unavailable:
    """All GPUs NVML sees, or an :class:`Unavailable` saying why NVML could not start."""
    try:
        with session() as nv:
            count = query("nvmlDeviceGetCount")
            if isinstance(count, Unavailable):
                return Unavailable(f"NVML started but could not count GPUs: {count.reason}")
            return {
                "driver_version": query("nvmlSystemGetDriverVersion"),
                "nvml_version": query("nvmlSystemGetNVMLVersion"),
                "cuda_driver_version": cuda_version_string(query("nvmlSystemGetCudaDriverVersion")),
                "gpu_count": count,
                "gpus": [probe_device(nv, i) for i in range(count)],
            }
    except NvmlInitError as exc:
        return Unavailable(str(exc))


__all__ = [
    "CLOCK_EVENT_REASONS",
    "FABRIC_STATES",
    "NO_FABRIC",
    "NO_NVLINK",
    "decode_clock_event_reasons",
    "is_unavailable",
    "probe_device",
    "probe_nvml",
]
