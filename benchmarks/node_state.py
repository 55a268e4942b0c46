"""The node's error counters before and after a bench run, and what moved: a GPU that logs an XID, counts an
ECC error or remaps a row under load has failed the acceptance test, however fast it was.

Taken in the runner's process with the verifier's own probes (``dlverify.probes``: NVML through the one
query wrapper, XIDs from the kernel log), so a counter means the same here as in ``dlverify check``.
Judging is pure: :func:`moved` compares two recorded states, so ``bench --replay`` judges a record again.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from dlverify.unavailable import Unavailable, is_unavailable, why_missing

# (path in a GPU's probe record, what it counts, severity when it grows during the run)
COUNTERS: tuple[tuple[str, str, str], ...] = (
    ("ecc_volatile_uncorrected", "uncorrectable ECC errors", "fail"),
    ("remapped_rows_uncorrectable", "rows remapped for uncorrectable errors", "fail"),
    ("retired_pages_dbe_count", "pages retired for double-bit errors", "fail"),
    ("remapped_rows_correctable", "rows remapped for correctable errors", "warn"),
    ("retired_pages_sbe_count", "pages retired for single-bit errors", "warn"),
    ("pcie_replay_count", "PCIe replays", "warn"),
    ("nvlink_errors.recovery", "NVLink recoveries", "fail"),
    ("nvlink_errors.replay", "NVLink replays", "warn"),
    ("nvlink_errors.crc_flit", "NVLink CRC (flit) errors", "warn"),
    ("nvlink_errors.crc_data", "NVLink CRC (data) errors", "warn"),
    ("clocks_event_counters_ns.hw_thermal_slowdown", "ns of hardware thermal slowdown", "warn"),
    ("clocks_event_counters_ns.hw_power_brake_slowdown", "ns of power-brake slowdown", "warn"),
)
FLAGS: tuple[tuple[str, str], ...] = (
    ("remapped_rows_pending", "a row remap is pending (needs a GPU reset)"),
    ("remapped_rows_failure", "a row remap failed"),
    ("retired_pages_pending", "a page retirement is pending"),
    ("unrepairable_memory", "the driver flags unrepairable memory"),
)


def _get(rec: dict[str, Any], path: str) -> Any:
    v: Any = rec
    for key in path.split("."):
        v = v.get(key) if isinstance(v, dict) else None
    return v


def _comm(pid: int) -> str | None:
    try:
        with open(f"/proc/{pid}/comm", encoding="utf-8") as fh:
            return fh.read().strip() or None
    except OSError:  # another PID namespace (a container), or gone
        return None


def compute_processes() -> dict[str, Any]:
    """Processes holding each GPU (by UUID) through NVML: a busy GPU's numbers are not its own."""
    from dlverify.probes import nvml

    out: dict[str, Any] = {}
    try:
        with nvml.session() as nv:
            count = nvml.query(nv.nvmlDeviceGetCount)
            for i in range(count if isinstance(count, int) else 0):
                h = nvml.query(nv.nvmlDeviceGetHandleByIndex, i)
                uuid = nvml.query(nv.nvmlDeviceGetUUID, h)
                procs = nvml.query("nvmlDeviceGetComputeRunningProcesses", h)
                if not isinstance(uuid, str):
                    continue
                if isinstance(procs, Unavailable):
                    out[uuid] = procs.to_json()
                    continue
                out[uuid] = [
                    {
                        "pid": int(p.pid),
                        "name": _comm(int(p.pid)),
                        "used_mib": (int(p.usedGpuMemory) >> 20)
                        if isinstance(p.usedGpuMemory, int)
                        else None,
                    }
                    for p in procs or []
                ]
    except nvml.NvmlInitError as exc:
        return Unavailable(str(exc)).to_json()
    return out


def busy(state: dict[str, Any], uuid: str, own_pids: Iterable[int] = ()) -> list[str] | str:
    """The other processes on this GPU before the run, as text; or why that is not known."""
    procs = state.get("processes")
    if procs is None:
        return "processes not recorded (a run from before they were)"
    if is_unavailable(procs):
        return f"NVML could not list processes: {why_missing(procs)}"
    mine = procs.get(uuid) if isinstance(procs, dict) else None
    if mine is None:
        return "processes not recorded for this GPU"
    if is_unavailable(mine):
        return f"NVML could not list processes: {why_missing(mine)}"
    skip = set(own_pids)
    return [
        f"pid {p.get('pid')}"
        + (f" ({p['name']})" if p.get("name") else "")
        + (f" holding {p['used_mib'] / 1024:.1f} GiB" if isinstance(p.get("used_mib"), int) else "")
        for p in mine
        if isinstance(p, dict) and p.get("pid") not in skip
    ]


def take(
    probe_nvml: Callable[[], Any] | None = None,
    probe_xid: Callable[[], Any] | None = None,
    probe_processes: Callable[[], Any] | None = None,
) -> dict[str, Any]:
    """The counters of every GPU (by UUID), the kernel log's XID events and the processes on each GPU."""
    from dlverify.probes.gpu import probe_nvml as nvml_default
    from dlverify.probes.host import probe_xid as xid_default

    nv = (probe_nvml or nvml_default)()
    gpus: dict[str, Any] = {}
    if isinstance(nv, dict):
        for g in nv.get("gpus") or []:
            if not isinstance(g, dict) or not isinstance(g.get("uuid"), str):
                continue
            state = {path: _json(_get(g, path)) for path, _, _ in COUNTERS}
            state.update({flag: _json(g.get(flag)) for flag, _ in FLAGS})
            state["pci_bus_id"] = g.get("pci_bus_id")
            gpus[g["uuid"]] = state
    xid = (probe_xid or xid_default)()
    return {
        "processes": (probe_processes or compute_processes)(),
        "gpus": gpus if isinstance(nv, dict) else _json(nv),
        "xid": _json(xid)
        if not isinstance(xid, dict)
        else [
            {"pci": e.get("pci"), "xid": e.get("xid"), "text": e.get("text")} for e in xid.get("events") or []
        ],
    }


def _json(v: Any) -> Any:
    return v.to_json() if isinstance(v, Unavailable) else v


def _same_pci(a: str | None, b: str | None) -> bool:
    """NVML says 00000000:19:00.0, the kernel log 0000:19:00 (domain and function digits differ)."""
    if not a or not b:
        return False

    def norm(s: str) -> str:
        parts = s.lower().split(":")
        bus, dev = (parts[-2], parts[-1].split(".")[0]) if len(parts) >= 2 else (s, "")
        return f"{int(bus, 16) if bus.isalnum() else bus}:{dev}"

    try:
        return norm(a) == norm(b)
    except ValueError:
        return a.lower() == b.lower()


def moved(before: dict[str, Any], after: dict[str, Any], uuid: str) -> tuple[str, list[str]] | str:
    """What moved on this GPU during the run: (worst severity, findings), or why it cannot be told."""
    b_gpus, a_gpus = before.get("gpus"), after.get("gpus")
    if is_unavailable(b_gpus) or is_unavailable(a_gpus) or not isinstance(b_gpus, dict):
        return f"NVML counters not read: {(b_gpus if is_unavailable(b_gpus) else a_gpus)}"
    b, a = b_gpus.get(uuid), (a_gpus or {}).get(uuid)
    if not isinstance(b, dict) or not isinstance(a, dict):
        return (
            "the GPU was not in both readings (lost during the run?)"
            if isinstance(b, dict)
            else "the GPU was not in the reading before the run"
        )
    findings: list[tuple[str, str]] = []
    for path, what, severity in COUNTERS:
        x, y = b.get(path), a.get(path)
        if isinstance(x, (int, float)) and isinstance(y, (int, float)) and y > x:
            findings.append((severity, f"{what} {x:g} -> {y:g}"))
    for flag, what in FLAGS:
        if a.get(flag) is True and b.get(flag) is not True:
            findings.append(("fail", what))
    bx, ax = before.get("xid"), after.get("xid")
    if isinstance(bx, list) and isinstance(ax, list) and len(ax) > len(bx):
        new = [e for e in ax[len(bx) :] if _same_pci(e.get("pci"), a.get("pci_bus_id"))]
        findings += [("fail", f"XID {e.get('xid')} ({(e.get('text') or '')[:60]})") for e in new]
    if not findings:
        return ("pass", [])
    worst = "fail" if any(s == "fail" for s, _ in findings) else "warn"
    return (worst, [f for _, f in findings])
