"""RAM judgement from the real host probe on a fake tree: the notes' "512GB DDR4 ECC" against DIMM faults."""

from __future__ import annotations

import dataclasses
import shutil
from pathlib import Path

import pytest
import smbios_tables as t
from test_check_host import _runner, _spec, make_host

from dlverify.checks.host import check_host
from dlverify.hwspec.model import RamSpec
from dlverify.probes.host import probe_host
from dlverify.results import CheckResult, Status
from dlverify.snapshot import to_jsonable

NOTES_RAM = RamSpec(size_gib=512, type="DDR4", ecc=True)
DMI = "sys/firmware/dmi/tables/DMI"


def _host(tmp_path: Path, table: bytes | None = None, edac: bool = True) -> dict:
    root = make_host(tmp_path)
    if table is None:
        (root / DMI).unlink()
    else:
        (root / DMI).write_bytes(table)
    if not edac:
        shutil.rmtree(root / "sys/devices/system/edac")
    return to_jsonable(probe_host(root, runner=_runner()))


def _ram(host: dict, ram: RamSpec = NOTES_RAM) -> dict[str, CheckResult]:
    results = check_host(_spec(ram=ram), {"host": host})
    return {r.id: r for r in results if r.id.startswith("host.ram")}


def _status(ids: dict[str, CheckResult]) -> dict[str, str]:
    return {k: r.status.value for k, r in ids.items()}


def test_the_notes_server_passes(tmp_path: Path) -> None:
    ids = _ram(_host(tmp_path, t.server(t.epyc_7543_16x32g())))
    assert _status(ids) == {
        "host.ram": "pass",
        "host.ram.type": "pass",
        "host.ram.ecc": "pass",
        "host.ram.dimms": "pass",
    }
    assert ids["host.ram"].observed == "512 GiB in 16 DIMMs (503.8 GiB usable)"
    assert ids["host.ram.ecc"].observed == "Multi-bit ECC (SMBIOS), 2 EDAC memory controller(s)"
    assert ids["host.ram.dimms"].observed == "16x 32 GiB DDR4, rated 3200 MT/s, running 2933 MT/s"
    assert "below their rated speed" in ids["host.ram.dimms"].detail


def _one(changed: dict, index: int = 5) -> list[t.Dimm]:
    dimms = t.epyc_7543_16x32g()
    dimms[index] = dataclasses.replace(dimms[index], **changed)
    return dimms


@pytest.mark.parametrize(
    ("label", "dimms", "ecc", "edac", "want"),
    [
        # a DIMM that failed training at boot: 480 GiB is 6.25% short, the kernel-total tolerance would
        # have hidden part of that; the DIMM sum does not
        ("a DIMM missing", _one({"size_mib": 0}), t.ECC_MULTI_BIT, True, {"host.ram": "fail"}),
        ("DDR5 modules", t.epyc_7543_16x32g(kind=t.DDR5), t.ECC_MULTI_BIT, True, {"host.ram.type": "fail"}),
        ("non-ECC modules", t.epyc_7543_16x32g(total_width=64), t.ECC_MULTI_BIT, True,
         {"host.ram.ecc": "fail"}),
        ("ECC off in the BIOS", t.epyc_7543_16x32g(), t.ECC_NONE, True, {"host.ram.ecc": "fail"}),
        ("no EDAC driver", t.epyc_7543_16x32g(), t.ECC_MULTI_BIT, False, {"host.ram.ecc": "warn"}),
        ("a 16 GiB DIMM among 32s", _one({"size_mib": 16384}), t.ECC_MULTI_BIT, True,
         {"host.ram": "fail", "host.ram.dimms": "warn"}),
        ("one DIMM slower", _one({"configured": 2666}), t.ECC_MULTI_BIT, True, {"host.ram.dimms": "warn"}),
    ],
)  # fmt: skip
def test_dimm_faults_fail_or_warn_their_check(tmp_path: Path, label, dimms, ecc, edac, want) -> None:
    ids = _ram(_host(tmp_path, t.server(dimms, ecc), edac=edac))
    expected = {k: "pass" for k in ("host.ram", "host.ram.type", "host.ram.ecc", "host.ram.dimms")} | want
    assert _status(ids) == expected, (label, {k: r.detail for k, r in ids.items()})


def test_messages_name_the_dimm(tmp_path: Path) -> None:
    ids = _ram(_host(tmp_path, t.server(_one({"configured": 2666}))))
    assert "P0 CHANNEL C / BANK 1" in ids["host.ram.dimms"].detail and "2666" in ids["host.ram.dimms"].detail
    ids = _ram(_host(tmp_path / "b", t.server(_one({"size_mib": 0}))))
    assert ids["host.ram"].observed.startswith("480 GiB in 15 DIMMs")
    assert "32 GiB short" in ids["host.ram"].detail
    assert "1 empty slot" in ids["host.ram.dimms"].detail


def test_without_smbios_the_kernel_total_is_judged_and_the_rest_skipped(tmp_path: Path) -> None:
    ids = _ram(_host(tmp_path, None))
    assert _status(ids) == {
        "host.ram": "pass",
        "host.ram.type": "skip",
        "host.ram.ecc": "pass",
        "host.ram.dimms": "skip",
    }
    assert ids["host.ram"].observed == "503.8 GiB"
    assert "cannot see the DIMMs: no SMBIOS tables" in ids["host.ram.type"].detail


def test_a_vm_does_not_claim_a_ddr_generation(tmp_path: Path) -> None:
    ids = _ram(_host(tmp_path, t.qemu_vm(512 * 1024), edac=False))
    assert _status(ids) == {
        "host.ram": "pass",
        "host.ram.type": "skip",
        "host.ram.ecc": "warn",
        "host.ram.dimms": "pass",
    }
    assert "virtual machine" in ids["host.ram.type"].detail
    # the VM's firmware claims ECC for its array; without real modules that is not repeated as a fact
    assert ids["host.ram.ecc"].observed == "no EDAC memory controller"


def test_an_old_snapshot_without_dimms_still_judges(tmp_path: Path) -> None:
    host = _host(tmp_path, t.server(t.epyc_7543_16x32g()))
    del host["ram"]["smbios"]
    ids = _ram(host)
    assert ids["host.ram"].status is Status.PASS and ids["host.ram"].observed == "503.8 GiB"
    assert ids["host.ram.type"].detail == "cannot see the DIMMs: not recorded in the snapshot"
