"""The SMBIOS memory decoder agrees with dmidecode on the same tables, never raises, says why it is empty."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import smbios_tables as t
from hypothesis import given, settings
from hypothesis import strategies as st

from dlverify.probes.nvml import Unavailable
from dlverify.probes.smbios import decode, probe_smbios, structures

TABLES = {
    "epyc 16x32G 2DPC": t.server(t.epyc_7543_16x32g()),
    "qemu vm": t.qemu_vm(16384),
    "edge encodings": t.server(
        [
            t.Dimm("A", size_mib=None),  # size unknown
            t.Dimm("B", size_kib=512),  # KiB granularity
            t.Dimm("C", size_mib=0),  # empty slot
            t.Dimm("D", size_mib=256 * 1024, kind=t.DDR5, speed=70000, configured=69000),  # extended fields
            t.Dimm("E", size_mib=16384, total_width=64, data_width=64, part=""),  # non-ECC, no strings
        ]
    ),
    "smbios 3.2 (84-byte devices)": t.table(
        t.array16(0x1000, 2, t.ECC_NONE),
        *(t.device17(0x1100 + i, 0x1000, t.Dimm(f"DIMM{i}", kind=t.DDR5), length=0x54) for i in range(2)),
    ),
}


def _dmidecode_size(text: str) -> int | None:
    m = re.fullmatch(r"(\d+) (kB|MB|GB|TB)", text)
    if not m:
        return None
    return int(m.group(1)) * 2 ** {"kB": 10, "MB": 20, "GB": 30, "TB": 40}[m.group(2)]


def _field(value: str, unit: str) -> int | None:
    m = re.fullmatch(rf"(\d+) {unit}", value)
    return int(m.group(1)) if m else None


def dmidecode_memory(dump: Path) -> dict[str, Any]:
    """What dmidecode 3.x prints for types 16 and 17, in the decoder's field names."""
    out = subprocess.run(
        ["dmidecode", "--from-dump", str(dump), "-t", "16", "-t", "17"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    arrays, dimms, empty = [], [], 0
    for block in out.split("\n\n"):
        pairs = (line.partition(":") for line in block.splitlines()[1:])
        fields = {k.strip(): v.strip() for k, sep, v in pairs if sep}
        if "Physical Memory Array" in block:
            arrays.append(
                {
                    "use": fields["Use"],
                    "error_correction": fields["Error Correction Type"],
                    "slots": int(fields["Number Of Devices"]),
                }
            )
        elif "Memory Device" in block:
            if fields["Size"] == "No Module Installed":
                empty += 1
                continue
            named = {k: None if v == "Not Specified" else v for k, v in fields.items()}
            dimms.append(
                {
                    "locator": named.get("Locator"),
                    "bank": named.get("Bank Locator"),
                    "size_bytes": _dmidecode_size(fields["Size"]),
                    "type": fields["Type"],
                    "speed_mts": _field(fields["Speed"], "MT/s"),
                    "configured_speed_mts": _field(fields.get("Configured Memory Speed", ""), "MT/s"),
                    "total_width_bits": _field(fields["Total Width"], "bits"),
                    "data_width_bits": _field(fields["Data Width"], "bits"),
                    "part_number": named.get("Part Number"),
                }
            )
    return {"arrays": arrays, "dimms": dimms, "empty_slots": empty}


@pytest.mark.parametrize("name", sorted(TABLES))
def test_decoder_agrees_with_dmidecode(name: str, tmp_path: Path) -> None:
    if shutil.which("dmidecode") is None:
        if os.environ.get("DLV_REQUIRE_DMIDECODE") == "1":
            pytest.fail("dmidecode is not installed, and DLV_REQUIRE_DMIDECODE=1 (make test installs it)")
        pytest.skip("dmidecode not installed (apt-get install dmidecode; `make test` does)")
    dump = tmp_path / "dmi.bin"
    dump.write_bytes(t.dump_bin(TABLES[name]))
    ours = decode(TABLES[name])
    for a in ours["arrays"]:
        del a["handle"]
    assert ours == dmidecode_memory(dump)


def test_sizes_types_and_speeds_of_each_encoding() -> None:
    m = decode(TABLES["edge encodings"])
    by = {d["locator"]: d for d in m["dimms"]}
    assert set(by) == {"A", "B", "D", "E"} and m["empty_slots"] == 1
    assert by["A"]["size_bytes"] is None
    assert by["B"]["size_bytes"] == 512 * 2**10
    assert (by["D"]["size_bytes"], by["D"]["type"], by["D"]["speed_mts"]) == (256 * 2**30, "DDR5", 70000)
    assert (by["E"]["total_width_bits"], by["E"]["part_number"]) == (64, None)
    old = decode(TABLES["smbios 3.2 (84-byte devices)"])
    assert [d["configured_speed_mts"] for d in old["dimms"]] == [3200, 3200]
    assert old["arrays"][0]["error_correction"] == "None"


def test_only_system_memory_arrays_count_as_ram() -> None:
    table = t.table(
        t.array16(0x1000, 1),
        t.device17(0x1100, 0x1000, t.Dimm("DIMM A1")),
        t.array16(0x2000, 1, use=t.USE_FLASH),
        t.device17(0x2100, 0x2000, t.Dimm("SPI flash", size_mib=64)),
    )
    m = decode(table)
    assert [d["locator"] for d in m["dimms"]] == ["DIMM A1"]
    assert [a["use"] for a in m["arrays"]] == ["System Memory"]


@settings(max_examples=400, deadline=None)
@given(st.binary(max_size=400), st.integers(min_value=0, max_value=len(TABLES["epyc 16x32G 2DPC"])))
def test_garbage_and_truncated_tables_never_raise(noise: bytes, cut: int) -> None:
    for blob in (noise, TABLES["epyc 16x32G 2DPC"][:cut], TABLES["epyc 16x32G 2DPC"][:cut] + noise):
        m = decode(blob)
        assert set(m) == {"arrays", "dimms", "empty_slots"}
        list(structures(blob))


def test_probe_says_why_it_has_no_dimms(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    r = probe_smbios(tmp_path)
    assert isinstance(r, Unavailable) and "absent" in r.reason
    dmi = tmp_path / "sys/firmware/dmi/tables/DMI"
    dmi.parent.mkdir(parents=True)
    dmi.write_bytes(t.table(t.array16(0x1000, 2), t.device17(0x1100, 0x1000, t.Dimm("A1", size_mib=0))))
    r = probe_smbios(tmp_path)
    assert isinstance(r, Unavailable) and "no installed memory device" in r.reason

    def denied(self: Path) -> bytes:
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(Path, "read_bytes", denied)
    r = probe_smbios(tmp_path)
    assert isinstance(r, Unavailable) and "only by root" in r.reason


def test_probe_reads_the_table(tmp_path: Path) -> None:
    dmi = tmp_path / "sys/firmware/dmi/tables/DMI"
    dmi.parent.mkdir(parents=True)
    dmi.write_bytes(TABLES["epyc 16x32G 2DPC"])
    r = probe_smbios(tmp_path)
    assert not isinstance(r, Unavailable)
    assert r["source"] == "/sys/firmware/dmi/tables/DMI"
    assert len(r["dimms"]) == 16 and {d["configured_speed_mts"] for d in r["dimms"]} == {2933}
