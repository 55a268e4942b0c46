"""Test stand-in: raw SMBIOS memory tables built byte by byte per DMTF DSP0134 (types 16, 17, 127).

No machine of this project's CI exposes SMBIOS tables (its VMs have none), so the tests build the tables a
server's firmware would hand the kernel in /sys/firmware/dmi/tables/DMI. They are not a recording: the field
values follow real servers (an AMD EPYC 7543 board with 16 DDR4-3200 RDIMMs at two DIMMs per channel, and
QEMU's own tables), and `dump_bin` wraps them the way `dmidecode --dump-bin` does, so dmidecode, an
independent decoder, can be asked what they say (tests/test_probe_smbios.py).
"""

from __future__ import annotations

from dataclasses import dataclass

DDR4, DDR5, RAM = 0x1A, 0x22, 0x07
ECC_NONE, ECC_MULTI_BIT = 0x03, 0x06
USE_SYSTEM, USE_FLASH = 0x03, 0x05


def _put(buf: bytearray, offset: int, size: int, value: int) -> None:
    if offset + size <= len(buf):
        buf[offset : offset + size] = value.to_bytes(size, "little")


def structure(kind: int, handle: int, area: bytearray, strings: list[str]) -> bytes:
    """Header + formatted area + string set (each NUL-terminated, the set ended by one more NUL)."""
    area[0], area[1] = kind, len(area)
    _put(area, 2, 2, handle)
    tail = b"".join(s.encode("ascii") + b"\0" for s in strings) + b"\0" if strings else b"\0\0"
    return bytes(area) + tail


def array16(handle: int, slots: int, ecc: int = ECC_MULTI_BIT, use: int = USE_SYSTEM) -> bytes:
    a = bytearray(0x17)  # SMBIOS 2.7+: 23 bytes
    a[0x04], a[0x05], a[0x06] = 0x03, use, ecc  # on the system board
    _put(a, 0x07, 4, 0x80000000)  # maximum capacity: see the extended field
    _put(a, 0x0B, 2, 0xFFFE)  # no error information structure
    _put(a, 0x0D, 2, slots)
    _put(a, 0x0F, 8, 4 * 2**40)
    return structure(16, handle, a, [])


@dataclass
class Dimm:
    locator: str
    size_mib: int | None = 32768  # 0: empty slot; None: unknown
    kind: int = DDR4
    speed: int | None = 3200
    configured: int | None = 3200
    total_width: int | None = 72
    data_width: int | None = 64
    part: str = "M393A4K40DB3-CWE"
    bank: str = ""
    size_kib: int | None = None  # a size given in KiB (bit 15 of the size word)


def device17(handle: int, array: int, d: Dimm, length: int = 0x5C) -> bytes:
    """A memory device structure; 0x5C bytes is SMBIOS 3.3 (extended speeds), 0x28 is 2.8 (QEMU)."""
    a = bytearray(length)
    strings = [d.locator] + ([d.bank] if d.bank else [])
    _put(a, 0x04, 2, array)
    _put(a, 0x06, 2, 0xFFFE)
    _put(a, 0x08, 2, 0xFFFF if d.total_width is None else d.total_width)
    _put(a, 0x0A, 2, 0xFFFF if d.data_width is None else d.data_width)
    if d.size_kib is not None:
        size_word, ext = 0x8000 | d.size_kib, 0
    elif d.size_mib is None:
        size_word, ext = 0xFFFF, 0
    elif d.size_mib >= 0x7FFF:
        size_word, ext = 0x7FFF, d.size_mib
    else:
        size_word, ext = d.size_mib, 0
    _put(a, 0x0C, 2, size_word)
    a[0x0E] = 0x09  # DIMM
    a[0x10] = 1
    a[0x11] = 2 if d.bank else 0
    installed = bool(d.size_mib or d.size_kib)
    a[0x12] = d.kind if installed else 0x02
    _put(a, 0x13, 2, 0x2080 if installed else 0x0004)  # synchronous, registered / unknown
    for offset, extended, value in ((0x15, 0x54, d.speed), (0x20, 0x58, d.configured)):
        if value is not None and installed and value > 0xFFFE:
            _put(a, offset, 2, 0xFFFF)
            _put(a, extended, 4, value)
        else:
            _put(a, offset, 2, value if value is not None and installed else 0)
    if installed and d.part:
        strings += ["Samsung", "0000A1B2", "Not Specified", d.part]
        base = len(strings) - 4 + 1
        a[0x17], a[0x18], a[0x19], a[0x1A] = base, base + 1, base + 2, base + 3
        a[0x1B] = 0x02  # rank 2
    _put(a, 0x1C, 4, ext)
    if installed:
        for off in (0x22, 0x24, 0x26):
            _put(a, off, 2, 1200)  # mV
        _put(a, 0x28, 1, 0x03)  # DRAM
        _put(a, 0x29, 2, 0x0008)  # volatile memory
        _put(a, 0x3C, 8, d.size_kib * 2**10 if d.size_kib is not None else (d.size_mib or 0) * 2**20)
    return structure(17, handle, a, strings)


def end_of_table(handle: int = 0xFEFF) -> bytes:
    return structure(127, handle, bytearray(4), [])


def table(*structures: bytes) -> bytes:
    return b"".join(structures) + end_of_table()


def server(dimms: list[Dimm], ecc: int = ECC_MULTI_BIT) -> bytes:
    """One system-memory array holding ``dimms`` (empty slots: ``Dimm(size_mib=0)``)."""
    return table(
        array16(0x1000, len(dimms), ecc),
        *(device17(0x1100 + i, 0x1000, d) for i, d in enumerate(dimms)),
    )


def epyc_7543_16x32g(**changes: object) -> list[Dimm]:
    """The seed notes' server: one EPYC 7543, 8 channels x 2 DIMMs of 32 GiB DDR4-3200 RDIMM = 512 GiB.
    At two DIMMs per channel these boards run the memory at 2933 MT/s."""
    return [
        Dimm(f"P0 CHANNEL {ch}", bank=f"BANK {slot}", configured=2933, **changes)  # type: ignore[arg-type]
        for ch in "ABCDEFGH"
        for slot in (0, 1)
    ]


def qemu_vm(mib: int) -> bytes:
    """What QEMU's firmware tables say of a VM's RAM: type "RAM", widths and speed unknown, SMBIOS 2.8."""
    vm = Dimm("DIMM 0", size_mib=mib, kind=RAM, speed=None, configured=None, part="")
    vm.total_width = vm.data_width = None
    return table(array16(0x1000, 1, ECC_MULTI_BIT), device17(0x1100, 0x1000, vm, length=0x28))


def dump_bin(structure_table: bytes) -> bytes:
    """The file `dmidecode --dump-bin` writes (and `--from-dump` reads): an SMBIOS 3.0 entry point at 0,
    the structure table at offset 32."""
    ep = bytearray(0x18)
    ep[0:5] = b"_SM3_"
    ep[6], ep[7], ep[8], ep[10] = 0x18, 3, 3, 1  # length, SMBIOS 3.3, entry point revision 1
    _put(ep, 0x0C, 4, len(structure_table))
    _put(ep, 0x10, 8, 32)
    ep[5] = -sum(ep) & 0xFF
    return bytes(ep) + bytes(32 - len(ep)) + structure_table
