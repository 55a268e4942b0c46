"""SMBIOS memory tables: the installed DIMMs (type 17) and their arrays' error correction (type 16).

The kernel's view of RAM (MemTotal) cannot tell DDR4 from DDR5, ECC modules from plain ones, or that one DIMM
of sixteen failed training at boot and is missing; the firmware's SMBIOS tables can. They are read the way
dmidecode reads them, from the kernel's copy of the structure table (``/sys/firmware/dmi/tables/DMI``, root
only), and decoded per DMTF DSP0134 (SMBIOS 2.x-3.8). Names are dmidecode's, so its output is a witness.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

from dlverify.unavailable import Unavailable

DMI_TABLE = "sys/firmware/dmi/tables/DMI"

# DSP0134 7.18.2 "Memory Device - Type" (dmidecode's spelling)
MEMORY_TYPES = {
    0x01: "Other", 0x02: "Unknown", 0x03: "DRAM", 0x04: "EDRAM", 0x05: "VRAM", 0x06: "SRAM", 0x07: "RAM",
    0x08: "ROM", 0x09: "Flash", 0x0A: "EEPROM", 0x0B: "FEPROM", 0x0C: "EPROM", 0x0D: "CDRAM", 0x0E: "3DRAM",
    0x0F: "SDRAM", 0x10: "SGRAM", 0x11: "RDRAM", 0x12: "DDR", 0x13: "DDR2", 0x14: "DDR2 FB-DIMM",
    0x18: "DDR3", 0x19: "FBD2", 0x1A: "DDR4", 0x1B: "LPDDR", 0x1C: "LPDDR2", 0x1D: "LPDDR3", 0x1E: "LPDDR4",
    0x1F: "Logical non-volatile device", 0x20: "HBM", 0x21: "HBM2", 0x22: "DDR5", 0x23: "LPDDR5",
    0x24: "HBM3",
}  # fmt: skip
# the memory types a spec may pin (``ram: "512GB DDR4"``)
DDR_TYPES = frozenset(v for v in MEMORY_TYPES.values() if "DDR" in v and " " not in v)
# DSP0134 7.17.3 "Memory Array - Error Correction Types"
ERROR_CORRECTION = {
    0x01: "Other", 0x02: "Unknown", 0x03: "None", 0x04: "Parity", 0x05: "Single-bit ECC",
    0x06: "Multi-bit ECC", 0x07: "CRC",
}  # fmt: skip
# DSP0134 7.17.2 "Memory Array - Use"
ARRAY_USE = {
    0x01: "Other", 0x02: "Unknown", 0x03: "System Memory", 0x04: "Video Memory", 0x05: "Flash Memory",
    0x06: "Non-volatile RAM", 0x07: "Cache Memory",
}  # fmt: skip
_END_OF_TABLE = 127


def structures(table: bytes) -> Iterator[tuple[int, int, bytes, list[str]]]:
    """(type, handle, formatted area, strings) of each structure; stops quietly at a truncated one."""
    i = 0
    while i + 4 <= len(table):
        kind, length = table[i], table[i + 1]
        if length < 4 or i + length > len(table):
            return
        handle = int.from_bytes(table[i + 2 : i + 4], "little")
        end = table.find(b"\0\0", i + length)
        if end < 0:
            return
        blob = table[i + length : end]
        strings = [s.decode("ascii", "replace").strip() for s in blob.split(b"\0")] if blob else []
        yield kind, handle, table[i : i + length], strings
        if kind == _END_OF_TABLE:
            return
        i = end + 2


def _u(area: bytes, offset: int, size: int) -> int | None:
    """Little-endian field at ``offset``; None where the structure is too short for it (older SMBIOS)."""
    if offset + size > len(area):
        return None
    return int.from_bytes(area[offset : offset + size], "little")


def _string(area: bytes, offset: int, strings: list[str]) -> str | None:
    index = _u(area, offset, 1)
    if not index or index > len(strings):
        return None
    return strings[index - 1] or None


def _width(value: int | None) -> int | None:
    return None if value in (None, 0, 0xFFFF) else value


def _speed(area: bytes, offset: int, extended_offset: int) -> int | None:
    """MT/s; 0xFFFF means "see the 32-bit extended field" (SMBIOS 3.3+); 0 means unknown."""
    value = _u(area, offset, 2)
    if value == 0xFFFF:
        value = _u(area, extended_offset, 4)
        value = value & 0x7FFFFFFF if value is not None else None
    return value or None


def _size_bytes(area: bytes) -> int | None:
    """Installed size in bytes; 0 when the slot is empty, None when the firmware does not know."""
    raw = _u(area, 0x0C, 2)
    if raw is None or raw == 0xFFFF:
        return None
    if raw == 0x7FFF:  # extended size (SMBIOS 2.7+): MiB in bits 30:0 of the dword at 0x1C
        ext = _u(area, 0x1C, 4)
        return (ext & 0x7FFFFFFF) * 2**20 if ext is not None else None
    if raw & 0x8000:
        return (raw & 0x7FFF) * 2**10
    return raw * 2**20


def decode(table: bytes) -> dict[str, Any]:
    """The memory arrays and the *populated* memory devices of a raw SMBIOS structure table."""
    arrays: dict[int, dict[str, Any]] = {}
    devices: list[tuple[int | None, dict[str, Any]]] = []
    empty: dict[int | None, int] = {}
    for kind, handle, area, strings in structures(table):
        if kind == 16:
            arrays[handle] = {
                "handle": handle,
                "use": ARRAY_USE.get(_u(area, 0x05, 1) or 0, "Unknown"),
                "error_correction": ERROR_CORRECTION.get(_u(area, 0x06, 1) or 0, "Unknown"),
                "slots": _u(area, 0x0D, 2),
            }
        elif kind == 17:
            array = _u(area, 0x04, 2)
            size = _size_bytes(area)
            if size == 0:
                empty[array] = empty.get(array, 0) + 1
                continue
            devices.append(
                (
                    array,
                    {
                        "locator": _string(area, 0x10, strings),
                        "bank": _string(area, 0x11, strings),
                        "size_bytes": size,
                        "type": MEMORY_TYPES.get(_u(area, 0x12, 1) or 0, "Unknown"),
                        "speed_mts": _speed(area, 0x15, 0x54),
                        "configured_speed_mts": _speed(area, 0x20, 0x58),
                        "total_width_bits": _width(_u(area, 0x08, 2)),
                        "data_width_bits": _width(_u(area, 0x0A, 2)),
                        "part_number": _string(area, 0x1A, strings),
                    },
                )
            )
    # RAM is what sits in the "System Memory" arrays (not flash, video or cache arrays); a device whose
    # array is not described is kept, since some firmware omits type 16
    system = {h for h, a in arrays.items() if a["use"] == "System Memory"}
    keep = [d for a, d in devices if a in system or a not in arrays]
    return {
        "arrays": [a for h, a in arrays.items() if h in system],
        "dimms": keep,
        "empty_slots": sum(n for a, n in empty.items() if a in system or a not in arrays),
    }


def probe_smbios(root: Path) -> dict[str, Any] | Unavailable:
    path = root / DMI_TABLE
    shown = "/" + DMI_TABLE
    try:
        table = path.read_bytes()
    except FileNotFoundError:
        return Unavailable(f"no SMBIOS tables ({shown} absent)")
    except PermissionError:
        return Unavailable(f"SMBIOS tables are readable only by root ({shown}): run as root to see the DIMMs")
    except OSError as exc:
        return Unavailable(f"{shown}: {exc.strerror or exc}")
    memory = decode(table)
    if not memory["dimms"]:
        return Unavailable(f"SMBIOS ({shown}) lists no installed memory device (type 17)")
    memory["source"] = shown
    return memory
