"""`nvidia-smi -q -x`, parsed into the same field names and units as the NVML probe.

Not used by `dlverify check` (NVML is the source of truth and far faster); it is the independent witness
that tests and the GPU-machine run use to prove the probe reports what nvidia-smi reports.
"""

from __future__ import annotations

import re
import subprocess
import xml.etree.ElementTree as ET
from typing import Any

# nvidia-smi's XML tag -> NVML's constant name (nvmlClocksEventReasonDisplayClockSetting), which we use
_SMI_REASON_ALIASES = {"display_clocks_setting": "display_clock_setting"}
_NUM = re.compile(r"-?\d+(?:\.\d+)?")


def _text(node: ET.Element | None, path: str) -> str | None:
    if node is None:
        return None
    el = node.find(path)
    if el is None or el.text is None:
        return None
    t = el.text.strip()
    return None if t in ("N/A", "", "Unknown Error") else t


def _num(text: str | None) -> float | None:
    m = _NUM.search(text or "")
    return float(m.group()) if m else None


def _int(text: str | None) -> int | None:
    n = _num(text)
    return int(n) if n is not None else None


def _enabled(text: str | None) -> bool | None:
    if text is None:
        return None
    return text.lower() in ("enabled", "active", "yes")


def _watts_to_mw(text: str | None) -> int | None:
    n = _num(text)
    return round(n * 1000) if n is not None else None


def parse(xml_text: str) -> dict[str, Any]:
    root = ET.fromstring(xml_text)
    gpus = []
    for i, g in enumerate(root.findall("gpu")):
        reasons = g.find("clocks_event_reasons")
        if reasons is None:  # drivers before 535
            reasons = g.find("clocks_throttle_reasons")
        active = []
        for el in list(reasons) if reasons is not None else []:
            if (el.text or "").strip() == "Active":
                name = re.sub(r"^clocks_(event|throttle)_reason_", "", el.tag)
                active.append(_SMI_REASON_ALIASES.get(name, name))
        vol = g.find("ecc_errors/volatile")
        agg = g.find("ecc_errors/aggregate")
        mem_mib = _int(_text(g, "fb_memory_usage/total"))
        gpus.append(
            {
                "index": i,
                "name": _text(g, "product_name"),
                "uuid": _text(g, "uuid"),
                "pci_bus_id": _text(g, "pci/pci_bus_id"),
                "vbios_version": _text(g, "vbios_version"),
                "memory_total_mib": mem_mib,
                "persistence_mode": _enabled(_text(g, "persistence_mode")),
                "mig_mode_current": _enabled(_text(g, "mig_mode/current_mig")),
                "mig_mode_pending": _enabled(_text(g, "mig_mode/pending_mig")),
                "ecc_mode_current": _enabled(_text(g, "ecc_mode/current_ecc")),
                "ecc_mode_pending": _enabled(_text(g, "ecc_mode/pending_ecc")),
                # DRAM uncorrectable; SRAM counters are reported separately by newer drivers
                "ecc_volatile_uncorrected": _int(
                    _text(vol, "dram_uncorrectable") or _text(vol, "double_bit/total")
                ),
                "ecc_aggregate_uncorrected": _int(
                    _text(agg, "dram_uncorrectable") or _text(agg, "double_bit/total")
                ),
                "remapped_rows_pending": _enabled(_text(g, "remapped_rows/remapped_row_pending")),
                "remapped_rows_failure": _enabled(_text(g, "remapped_rows/remapped_row_failure")),
                "temperature_c": _int(_text(g, "temperature/gpu_temp")),
                "power_limit_mw": _watts_to_mw(
                    _text(g, "gpu_power_readings/current_power_limit")
                    or _text(g, "power_readings/power_limit")
                ),
                "power_default_limit_mw": _watts_to_mw(
                    _text(g, "gpu_power_readings/default_power_limit")
                    or _text(g, "power_readings/default_power_limit")
                ),
                "clock_sm_mhz": _int(_text(g, "clocks/sm_clock")),
                "clock_mem_mhz": _int(_text(g, "clocks/mem_clock")),
                "clock_sm_max_mhz": _int(_text(g, "max_clocks/sm_clock")),
                "clock_mem_max_mhz": _int(_text(g, "max_clocks/mem_clock")),
                "clocks_event_reasons": active,
                "compute_mode": (_text(g, "compute_mode") or "").lower().replace(" ", "_") or None,
                "perf_state": _text(g, "performance_state"),
                "pcie_gen_current": _int(_text(g, "pci/pci_gpu_link_info/pcie_gen/current_link_gen")),
                "pcie_gen_max": _int(_text(g, "pci/pci_gpu_link_info/pcie_gen/max_link_gen")),
                "pcie_gen_gpu_max": _int(_text(g, "pci/pci_gpu_link_info/pcie_gen/max_device_link_gen")),
                "pcie_width_current": _int(_text(g, "pci/pci_gpu_link_info/link_widths/current_link_width")),
                "pcie_width_max": _int(_text(g, "pci/pci_gpu_link_info/link_widths/max_link_width")),
                # "Completed", "In Progress", ...; N/A where the GPU has no NVSwitch fabric
                "fabric_state": (_text(g, "fabric/state") or "").lower().replace(" ", "_") or None,
            }
        )
    return {
        "driver_version": _text(root, "driver_version"),
        "cuda_driver_version": _text(root, "cuda_version"),
        "gpu_count": _int(_text(root, "attached_gpus")),
        "gpus": gpus,
    }


def run() -> dict[str, Any]:
    """Parse the live `nvidia-smi -q -x` (on the GPU machine)."""
    out = subprocess.run(["nvidia-smi", "-q", "-x"], capture_output=True, text=True, timeout=60, check=True)
    return parse(out.stdout)


# fields that can legitimately move between two reads (sampled live): compared loosely
VOLATILE_FIELDS = {
    "temperature_c": 3,
    "clock_sm_mhz": None,
    "clock_mem_mhz": None,
    "perf_state": None,
    "clocks_event_reasons": None,
}


def compare(nvml: dict[str, Any], smi: dict[str, Any], *, live: bool = False) -> list[dict[str, Any]]:
    """Field-by-field comparison of a snapshot's ``nvml`` section with parsed nvidia-smi.

    Returns one row per compared field: ``{"gpu", "field", "nvml", "smi", "agree"}``. A field nvidia-smi
    shows as N/A is not compared. ``live=True`` tolerates movement in temperature and clocks between reads.
    """
    rows: list[dict[str, Any]] = []

    def row(gpu: Any, field: str, a: Any, b: Any, agree: bool) -> None:
        rows.append({"gpu": gpu, "field": field, "nvml": a, "smi": b, "agree": agree})

    row(
        None,
        "driver_version",
        nvml.get("driver_version"),
        smi["driver_version"],
        nvml.get("driver_version") == smi["driver_version"],
    )
    row(
        None,
        "cuda_driver_version",
        nvml.get("cuda_driver_version"),
        smi["cuda_driver_version"],
        nvml.get("cuda_driver_version") == smi["cuda_driver_version"],
    )
    row(None, "gpu_count", nvml.get("gpu_count"), smi["gpu_count"], nvml.get("gpu_count") == smi["gpu_count"])
    for pg, sg in zip(nvml.get("gpus", []), smi["gpus"], strict=False):
        idx = pg.get("index")
        for field, want in sg.items():
            if want is None or field == "index":
                continue
            if field == "memory_total_mib":
                have = pg.get("memory_total_bytes")
                # nvidia-smi truncates to whole MiB
                agree = isinstance(have, int) and abs(have / 2**20 - want) < 1
                row(idx, field, have, want, agree)
                continue
            have = pg.get(field)
            if field == "fabric_state":  # ours is {"state", "status"} (or unavailable)
                fabric = pg.get("fabric")
                have = fabric.get("state", fabric) if isinstance(fabric, dict) else fabric
            if isinstance(have, dict):  # {"unavailable": ...} on our side while smi shows a value
                row(idx, field, have, want, False)
                continue
            if field == "pci_bus_id":
                agree = str(have).lower() == str(want).lower()
            elif field == "clocks_event_reasons":
                agree = live or sorted(have or []) == sorted(want)
            elif live and field in VOLATILE_FIELDS:
                tol = VOLATILE_FIELDS[field]
                agree = tol is None or (isinstance(have, (int, float)) and abs(have - want) <= tol)
            else:
                agree = have == want
            row(idx, field, have, want, agree)
    return rows


def main() -> int:
    """`python -m dlverify.probes.smi [OUT.json]`: probe NVML now, compare with live nvidia-smi, print rows.

    Exit 0 when every compared field agrees (temperature and clocks within live tolerance), 1 otherwise.
    """
    import json
    import sys

    from dlverify.probes.gpu import probe_nvml
    from dlverify.snapshot import to_jsonable

    nvml = to_jsonable(probe_nvml())
    if "unavailable" in nvml:
        print(f"NVML unavailable: {nvml['unavailable']}", file=sys.stderr)
        return 1
    rows = compare(nvml, run(), live=True)
    doc = {"nvml": nvml, "rows": rows, "all_agree": all(r["agree"] for r in rows)}
    text = json.dumps(doc, indent=2) + "\n"
    if len(sys.argv) > 1:
        with open(sys.argv[1], "w", encoding="utf-8") as fh:
            fh.write(text)
    for r in rows:
        mark = "ok " if r["agree"] else "DIFF"
        gpu = "-" if r["gpu"] is None else r["gpu"]
        print(f"{mark} gpu{gpu} {r['field']}: nvml={r['nvml']} smi={r['smi']}")
    return 0 if doc["all_agree"] else 1


if __name__ == "__main__":  # pragma: no cover - run on a GPU machine
    raise SystemExit(main())
