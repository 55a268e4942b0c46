"""RAM judges (group ``host``): size, DDR type, ECC and DIMM population. Pure.

Where the firmware's DIMM list (SMBIOS, probes/smbios.py) is readable it is the measure: the installed size is
exact (a missing DIMM is a failure, not something a tolerance hides), the type and ECC width are the modules'
own. Without it (not root, a VM without tables) the kernel's usable total and EDAC are judged, and what only
the DIMMs can say is skipped with the reason.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from dlverify.checks.common import Json, get, gib, missing
from dlverify.hwspec.model import RamSpec, Spec
from dlverify.results import Recorder

# what virtual machines' firmware reports for the memory type: no DDR generation to judge
_GENERIC_TYPES = {"Other", "Unknown", "RAM", "DRAM"}
# installed DIMMs are whole binary sizes: they must add up to the spec, give or take rounding
_INSTALLED_TOLERANCE = 0.01


def _dimms(host: Json) -> tuple[list[Json] | None, Json | None, str]:
    """(populated DIMMs, the SMBIOS record, why they are missing)."""
    smbios = get(host, "ram", "smbios")
    why = missing(smbios)
    if why is not None or not isinstance(smbios, dict):
        return None, None, why or "not in the snapshot"
    dimms = [d for d in smbios.get("dimms") or [] if isinstance(d, dict)]
    return (dimms or None), smbios, "no DIMM listed"


def _slot(d: Json) -> str:
    """Where a DIMM sits, as the board labels it: locator and bank ("P0 CHANNEL C / BANK 1")."""
    return " / ".join(str(x) for x in (d.get("locator"), d.get("bank")) if x) or "?"


def _gib_whole(n: int) -> str:
    return f"{n / 2**30:g} GiB"


def _size(want: RamSpec, host: Json, dimms: list[Json] | None, tol: float, j: Recorder) -> None:
    total = get(host, "ram", "total_bytes")
    exp = f"{want.size_gib:g} GiB"
    sizes = [d.get("size_bytes") for d in dimms or []]
    if dimms and all(isinstance(s, int) for s in sizes):
        installed = sum(sizes)
        seen = f"{_gib_whole(installed)} in {len(dimms)} DIMMs"
        if isinstance(total, int):
            seen += f" ({gib(total)} usable)"
        have = installed / 2**30
        if have < want.size_gib * (1 - _INSTALLED_TOLERANCE):
            j.check("host.ram", "RAM").fail(
                seen,
                exp,
                f"{want.size_gib - have:g} GiB short: a DIMM is missing, failed or was disabled at boot "
                "(see host.ram.dimms and the BMC's event log)",
            )
        elif have > want.size_gib * (1 + _INSTALLED_TOLERANCE):
            j.check("host.ram", "RAM").warn(seen, exp, "more RAM installed than the spec")
        else:
            j.check("host.ram", "RAM").ok(seen, exp)
        return
    if missing(total):
        j.check("host.ram", "RAM").fail(None, exp, f"unreadable: {missing(total)}")
        return
    # no DIMM list: the kernel's usable total, which is a few percent under what is installed
    have = total / 2**30
    if have < want.size_gib * (1 - tol):
        j.check("host.ram", "RAM").fail(
            gib(total), exp, f"below {want.size_gib * (1 - tol):.0f} GiB (tolerance {tol:.0%})"
        )
    elif have > want.size_gib * (1 + tol):
        j.check("host.ram", "RAM").warn(gib(total), exp, "more RAM than the spec")
    else:
        j.check("host.ram", "RAM").ok(gib(total), exp)


def _type(want: RamSpec, dimms: list[Json] | None, why: str, j: Recorder) -> None:
    if not want.type:
        return
    if dimms is None:
        j.check("host.ram.type", "RAM type").skip(f"cannot see the DIMMs: {why}", expected=want.type)
        return
    types = sorted({str(d.get("type")) for d in dimms})
    seen = ", ".join(types)
    if set(types) <= _GENERIC_TYPES:
        j.check("host.ram.type", "RAM type").skip(
            f"the firmware reports the type only as {seen!r} (a virtual machine?): DDR generation unknown",
            seen,
            want.type,
        )
    elif all(t.upper() == want.type.upper() for t in types):
        j.check("host.ram.type", "RAM type").ok(seen, want.type)
    else:
        odd = [_slot(d) for d in dimms if str(d.get("type")).upper() != want.type.upper()]
        j.check("host.ram.type", "RAM type").fail(seen, want.type, f"DIMMs of another type: {', '.join(odd)}")


def _ecc(want: RamSpec, host: Json, dimms: list[Json] | None, smbios: Any, j: Recorder) -> None:
    if not want.ecc:
        return
    name = "RAM ECC"
    edac = get(host, "ram", "edac_controllers")
    hardware = None  # what the firmware says of the modules and arrays, when it says anything
    if dimms is not None:
        plain = [
            _slot(d)
            for d in dimms
            if isinstance(d.get("total_width_bits"), int)
            and isinstance(d.get("data_width_bits"), int)
            and d["total_width_bits"] <= d["data_width_bits"]
        ]
        if plain:
            j.check("host.ram.ecc", name).fail(
                f"{len(plain)} DIMM(s) without ECC bits",
                "ECC",
                f"total width = data width on {', '.join(plain)}: non-ECC modules",
            )
            return
        kinds = sorted({str(a.get("error_correction")) for a in (smbios or {}).get("arrays") or []})
        if "None" in kinds:
            j.check("host.ram.ecc", name).fail(
                "error correction: None (SMBIOS)",
                "ECC",
                "the firmware reports no error correction on the memory array: ECC disabled in the BIOS?",
            )
            return
        known = [k for k in kinds if k not in ("Other", "Unknown")]
        # only real modules (widths given) make the array's word worth repeating: VMs claim ECC too
        if known and any(isinstance(d.get("total_width_bits"), int) for d in dimms):
            hardware = f"{', '.join(known)} (SMBIOS)"
    if isinstance(edac, int) and edac > 0:
        j.check("host.ram.ecc", name).ok(
            ", ".join(filter(None, [hardware, f"{edac} EDAC memory controller(s)"])), "ECC"
        )
    elif isinstance(edac, int):
        why = (
            "the modules have ECC, but no EDAC driver is loaded: corrected errors go uncounted"
            if hardware
            else "ECC is off, or the kernel's EDAC driver is not loaded (check the BIOS and `edac-util`)"
        )
        j.check("host.ram.ecc", name).warn(hardware or "no EDAC memory controller", "ECC", why)
    else:
        j.check("host.ram.ecc", name).skip("not in the snapshot")


def _population(dimms: list[Json] | None, smbios: Any, why: str, j: Recorder) -> None:
    name = "DIMMs"
    if dimms is None:
        j.check("host.ram.dimms", name).skip(f"cannot see the DIMMs: {why}")
        return

    def size(d: Json) -> str:
        s = d.get("size_bytes")
        return _gib_whole(s) if isinstance(s, int) else "? GiB"

    kinds = Counter(f"{size(d)} {d.get('type')}" for d in dimms)
    seen = ", ".join(f"{n}x {k}" for k, n in kinds.most_common())
    rated = {d.get("speed_mts") for d in dimms} - {None}
    running = Counter(d.get("configured_speed_mts") for d in dimms if d.get("configured_speed_mts"))
    if rated:
        seen += f", rated {min(rated)} MT/s"
    if running:
        seen += ", running " + "/".join(f"{s}" for s in sorted(running)) + " MT/s"
    empty = (smbios or {}).get("empty_slots") or 0
    notes = [f"{empty} empty slot(s)"] if empty else []
    if len(kinds) > 1:
        j.check("host.ram.dimms", name).warn(
            seen, "one DIMM kind", "mixed DIMM sizes or types: channels are uneven and memory bandwidth drops"
        )
    elif len(running) > 1:
        slow = min(running)
        where = [_slot(d) for d in dimms if d.get("configured_speed_mts") == slow]
        j.check("host.ram.dimms", name).warn(seen, "one speed", f"DIMMs at {slow} MT/s: {', '.join(where)}")
    else:
        if running and rated and max(running) < min(rated):
            notes.append("running below their rated speed (BIOS setting, or two DIMMs per channel)")
        j.check("host.ram.dimms", name).ok(seen, why="; ".join(notes))


def check_ram(spec: Spec, host: Json, j: Recorder) -> None:
    want = spec.hardware.ram
    total = get(host, "ram", "total_bytes")
    if want is None:
        j.check("host.ram", "RAM").skip(
            "the spec does not give a RAM size", gib(total) if isinstance(total, int) else None
        )
        return
    dimms, smbios, why = _dimms(host)
    _size(want, host, dimms, spec.checks.ram_tolerance, j)
    _type(want, dimms, why, j)
    _ecc(want, host, dimms, smbios, j)
    _population(dimms, smbios, why, j)
