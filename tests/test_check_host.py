"""Host probe on a fake /proc + /sys tree (NVMe, SATA SSD, HDD, a 100G NIC, a RoCE device), and its judges."""

from __future__ import annotations

import dataclasses
import json
import subprocess
from pathlib import Path

import pytest
import smbios_tables
from conftest import by_id

from dlverify.checks.host import check_host, cpu_model_matches
from dlverify.hwspec.model import (
    CpuSpec,
    HardwareSpec,
    NetworkSpec,
    OsSpec,
    RamSpec,
    SoftwareSpec,
    Spec,
    StorageSpec,
)
from dlverify.probes.host import parse_xid, probe_host, probe_xid
from dlverify.results import Status
from dlverify.snapshot import to_jsonable

CPU_BLOCK = """processor\t: {n}
vendor_id\t: AuthenticAMD
model name\t: AMD EPYC 7543 32-Core Processor
physical id\t: {sock}
core id\t\t: {core}
"""
XID_LOG = """Nov 28 03:00:01 gpu1 kernel: nvidia 0000:41:00.0: enabling device
Nov 28 03:12:44 g1 kernel: NVRM: Xid (PCI:0000:41:00): 79, pid=1234, name=python, GPU has fallen off the bus.
Nov 28 03:12:45 g1 kernel: NVRM: Xid (PCI:0000:81:00): 48, pid=12, name=py, An uncorrectable double bit error
"""


def _w(root: Path, rel: str, text: str) -> None:
    p = root / rel
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text(text)


def _disk(root: Path, name: str, gb: float, rotational: int, model: str, parts: tuple[str, ...] = ()) -> None:
    _w(root, f"sys/block/{name}/size", str(int(gb * 1e9 / 512)))
    _w(root, f"sys/block/{name}/queue/rotational", f"{rotational}\n")
    _w(root, f"sys/block/{name}/device/model", model + "   \n")
    for p in parts:
        _w(root, f"sys/block/{name}/{p}/partition", "1")


def make_host(root: Path) -> Path:
    # 2 sockets x 2 cores x 2 threads
    blocks = [CPU_BLOCK.format(n=i, sock=i // 4, core=(i // 2) % 2) for i in range(8)]
    _w(root, "proc/cpuinfo", "\n".join(blocks))
    _w(root, "proc/meminfo", "MemTotal:       528280000 kB\nMemFree:        1000 kB\n")
    _w(root, "proc/sys/kernel/osrelease", "5.15.0-91-generic\n")
    # the notes' server: 16 x 32 GiB DDR4-3200 RDIMMs at two per channel (tests/smbios_tables.py)
    (root / "sys/firmware/dmi/tables").mkdir(parents=True)
    (root / "sys/firmware/dmi/tables/DMI").write_bytes(smbios_tables.server(smbios_tables.epyc_7543_16x32g()))
    (root / "sys/devices/system/edac/mc/mc0").mkdir(parents=True)
    (root / "sys/devices/system/edac/mc/mc1").mkdir(parents=True)
    _w(
        root,
        "etc/os-release",
        'NAME="Ubuntu"\nVERSION_ID="22.04"\nID=ubuntu\nPRETTY_NAME="Ubuntu 22.04.3 LTS"\n',
    )
    _w(
        root,
        "proc/driver/nvidia/version",
        "NVRM version: NVIDIA UNIX x86_64 Kernel Module  535.54.03  Tue Jun  6 22:20:39 UTC 2023\n",
    )
    _disk(root, "nvme0n1", 2000.4, 0, "SAMSUNG MZQL21T9HCJR-00A07", ("nvme0n1p1", "nvme0n1p2"))
    _disk(root, "sda", 7681.5, 0, "SAMSUNG MZ7L37T6", ("sda1",))
    _disk(root, "sdb", 16000.9, 1, "ST16000NM001G", ("sdb1",))
    _disk(root, "loop0", 0.1, 0, "")
    _w(root, "sys/block/zram0/size", "100")
    _w(root, "sys/block/dm-0/size", str(int(16000e9 / 512)))
    (root / "sys/block/dm-0/slaves/sdb1").mkdir(parents=True)
    _w(
        root,
        "proc/self/mounts",
        "\n".join(
            [
                "/dev/nvme0n1p2 / ext4 rw,relatime 0 0",
                "proc /proc proc rw 0 0",
                "/dev/sda1 /data xfs rw 0 0",
                "/dev/dm-0 /archive ext4 rw 0 0",
                "tmpfs /run tmpfs rw 0 0",
            ]
        )
        + "\n",
    )
    for name, speed, state, physical in (
        ("lo", "", "unknown", False),
        ("eno1", "1000", "up", True),
        ("ens1f0np0", "100000", "up", True),
        ("ens1f1np1", "-1", "down", True),
        ("docker0", "", "down", False),
    ):
        _w(root, f"sys/class/net/{name}/operstate", state + "\n")
        if speed:
            _w(root, f"sys/class/net/{name}/speed", speed + "\n")
        if physical:
            (root / f"sys/class/net/{name}/device").mkdir(parents=True)
    ib = "sys/class/infiniband/mlx5_0/ports/1"
    _w(root, f"{ib}/link_layer", "Ethernet\n")
    _w(root, f"{ib}/state", "4: ACTIVE\n")
    _w(root, f"{ib}/rate", "100 Gb/sec (4X EDR)\n")
    return root


def _runner(journal: str = XID_LOG, dmesg_rc: int = 0):
    def run(cmd: list[str]) -> subprocess.CompletedProcess[str]:
        if cmd[0] == "journalctl":
            if "-g" in cmd:
                hits = "".join(line + "\n" for line in journal.splitlines() if "NVRM: Xid" in line)
                return subprocess.CompletedProcess(cmd, 0 if hits else 1, hits, "")
            return subprocess.CompletedProcess(cmd, 0, journal.splitlines()[0] + "\n" if journal else "", "")
        return subprocess.CompletedProcess(
            cmd, dmesg_rc, "", "dmesg: read kernel buffer failed: Operation not permitted\n"
        )

    return run


@pytest.fixture
def host(tmp_path: Path) -> dict:
    return to_jsonable(probe_host(make_host(tmp_path), runner=_runner()))


def test_probe_reads_the_fake_tree(host: dict) -> None:
    assert host["os"]["name"] == "Ubuntu" and host["os"]["version_id"] == "22.04"
    assert host["kernel"] == "5.15.0-91-generic"
    assert host["cpu"] == {"model": "AMD EPYC 7543 32-Core Processor", "sockets": 2, "cores": 4, "threads": 8}
    ram = host["ram"]
    assert (ram["total_bytes"], ram["edac_controllers"]) == (528280000 * 1024, 2)
    assert ram["smbios"]["source"] == "/sys/firmware/dmi/tables/DMI"
    assert [d["size_bytes"] for d in ram["smbios"]["dimms"]] == [32 * 2**30] * 16
    assert ram["smbios"]["arrays"][0]["error_correction"] == "Multi-bit ECC"
    disks = {d["name"]: d for d in host["disks"]}
    assert set(disks) == {"nvme0n1", "sda", "sdb"}  # loop, zram and dm skipped
    assert (disks["nvme0n1"]["class"], disks["sda"]["class"], disks["sdb"]["class"]) == ("nvme", "ssd", "hdd")
    assert disks["sda"]["model"] == "SAMSUNG MZ7L37T6"
    assert disks["sdb"]["size_bytes"] == int(16000.9e9 / 512) * 512
    mounts = {m["mountpoint"]: m for m in host["mounts"]}
    assert set(mounts) == {"/", "/data", "/archive"}
    assert mounts["/"]["classes"] == ["nvme"]
    assert mounts["/archive"]["disks"] == ["sdb"]  # through the device-mapper's slaves
    nics = {n["name"]: n for n in host["nics"]}
    assert set(nics) == {"eno1", "ens1f0np0", "ens1f1np1"}  # lo and virtual docker0 skipped
    assert nics["ens1f0np0"]["speed_mbps"] == 100000
    assert "unavailable" in nics["ens1f1np1"]["speed_mbps"]
    assert host["rdma"] == [
        {
            "name": "mlx5_0",
            "ports": [
                {"port": "1", "link_layer": "Ethernet", "state": "ACTIVE", "rate": "100 Gb/sec (4X EDR)"}
            ],
        }
    ]
    assert host["nvidia_kernel_module"] == "535.54.03"
    assert [e["xid"] for e in host["xid"]["events"]] == [79, 48]
    json.dumps(host)


def _spec(**hw) -> Spec:
    base = HardwareSpec(
        cpu=CpuSpec(model="AMD EPYC 7543", cores=4, threads=8, sockets=2),
        ram=RamSpec(size_gib=512, ecc=True),
        storage=(
            StorageSpec("nvme", 2000, mount="/"),
            StorageSpec("ssd", 8000, mount="/data"),
            StorageSpec("hdd", 16000),
        ),
        network=(NetworkSpec(speed_gbps=100, rdma="roce"),),
    )
    return Spec(hardware=dataclasses.replace(base, **hw), software=SoftwareSpec(os=OsSpec("Ubuntu", "22.04")))


def _ids(spec: Spec, host: dict) -> dict:
    return {r.id: r for r in check_host(spec, {"host": host})}


def test_matching_spec_passes_every_host_check(host: dict) -> None:
    ids = _ids(_spec(), host)
    bad = {k: (r.status, r.detail) for k, r in ids.items() if r.status not in (Status.PASS, Status.SKIP)}
    assert not bad
    for cid in (
        "host.os",
        "host.cpu.model",
        "host.cpu.cores",
        "host.cpu.threads",
        "host.ram",
        "host.ram.ecc",
        "host.storage[0]",
        "host.storage[0].mount",
        "host.storage[1]",
        "host.storage[1].mount",
        "host.storage[2]",
        "host.network[0]",
        "host.network[0].rdma",
    ):
        assert ids[cid].status is Status.PASS, cid
    assert ids["host.kernel"].status is Status.SKIP and ids["host.kernel"].observed == "5.15.0-91-generic"


@pytest.mark.parametrize(
    ("label", "hw", "failing"),
    [
        ("two 100G links", {"network": (NetworkSpec(100, count=2),)}, "host.network[0]"),
        ("200G", {"network": (NetworkSpec(200),)}, "host.network[0]"),
        (
            "InfiniBand asked, RoCE present",
            {"network": (NetworkSpec(100, rdma="infiniband"),)},
            "host.network[0].rdma",
        ),
        (
            "a second NVMe",
            {"storage": (StorageSpec("nvme", 2000), StorageSpec("nvme", 2000))},
            "host.storage[1]",
        ),
        ("bigger SSD", {"storage": (StorageSpec("ssd", 15360),)}, "host.storage[0]"),
        ("/data on NVMe", {"storage": (StorageSpec("nvme", 1000, mount="/data"),)}, "host.storage[0].mount"),
        (
            "/scratch missing",
            {"storage": (StorageSpec("hdd", 1000, mount="/scratch"),)},
            "host.storage[0].mount",
        ),
        ("1 TB RAM", {"ram": RamSpec(size_gib=1024)}, "host.ram"),
        ("Intel CPU", {"cpu": CpuSpec(model="Intel Xeon Gold 6338")}, "host.cpu.model"),
        ("SMT off vs spec", {"cpu": CpuSpec(threads=16)}, "host.cpu.threads"),
    ],
)
def test_host_faults_fail_their_check(host: dict, label, hw, failing) -> None:
    ids = _ids(_spec(**hw), host)
    assert ids[failing].status is Status.FAIL, (label, ids[failing])


def test_other_os_fails(host: dict) -> None:
    spec = dataclasses.replace(_spec(), software=SoftwareSpec(os=OsSpec("Ubuntu", "24.04")))
    r = _ids(spec, host)["host.os"]
    assert r.status is Status.FAIL and r.observed == "Ubuntu 22.04"


def test_cpu_model_matching() -> None:
    assert cpu_model_matches("AMD EPYC 7543", "AMD EPYC 7543 32-Core Processor")
    assert cpu_model_matches("Intel Xeon Gold 6338", "Intel(R) Xeon(R) Gold 6338 CPU @ 2.00GHz")
    assert not cpu_model_matches("AMD EPYC 7543", "AMD EPYC 7443 24-Core Processor")


def test_xid_parse_and_sources() -> None:
    ev = parse_xid(XID_LOG)
    assert ev[0] == {
        "pci": "PCI:0000:41:00",
        "xid": 79,
        "text": "pid=1234, name=python, GPU has fallen off the bus.",
    }
    assert probe_xid(_runner(journal=""))  # empty journal -> dmesg, which is refused here
    assert probe_xid(_runner(journal="", dmesg_rc=1)).reason == "kernel log not readable without root"
    assert probe_xid(_runner(journal="kernel: hello\n"))["events"] == []

    def missing(cmd):
        raise FileNotFoundError(cmd[0])

    assert "journalctl not installed" in probe_xid(missing).reason


def test_xid_events_fail_per_policy(host: dict) -> None:
    from dlverify.checks.gpu import check_gpus
    from dlverify.hwspec.model import ChecksSpec, GpuSpec

    spec = dataclasses.replace(_spec(gpus=(GpuSpec("NVIDIA A100 80GB", 1),)))
    snap = {"host": host, "nvml": {"unavailable": "no driver"}}
    r = by_id(check_gpus(spec, snap))["gpu.xid"]
    assert r.status is Status.FAIL and r.observed == "2 event(s): XID 48, 79"
    assert r.detail.startswith("XID 79 (GPU has fallen off the bus) on PCI:0000:41:00")
    app = {
        **snap,
        "host": {
            **host,
            "xid": {
                "source": "dmesg",
                "events": [{"pci": "PCI:0000:41:00", "xid": 13, "text": "Graphics Exception"}] * 2,
            },
        },
    }
    r = by_id(check_gpus(spec, app))["gpu.xid"]
    assert r.status is Status.WARN and r.observed == "2 event(s): XID 13 ×2"
    assert "application-level" in r.detail
    warn = dataclasses.replace(spec, checks=ChecksSpec(xid="warn"))
    assert by_id(check_gpus(warn, snap))["gpu.xid"].status is Status.WARN
    # and the NVML failure mentions the loaded kernel module
    nvml = by_id(check_gpus(spec, snap))["gpu.nvml"]
    assert "535.54.03" in nvml.detail


def test_live_host_probe_runs_here() -> None:
    host = to_jsonable(probe_host())
    json.dumps(host)
    assert isinstance(host["cpu"]["threads"], int) and host["cpu"]["threads"] >= 1
    assert host["ram"]["total_bytes"] > 2**28


def test_a_virtio_disk_is_not_called_hdd() -> None:
    from dlverify.probes.host import disk_class

    # virtio-blk reports rotational=1 whatever the host's media is: the guest cannot tell
    assert disk_class("vda", 1) == "virtio"
    assert disk_class("vdb", 0) == "virtio"
    assert disk_class("sda", 1) == "hdd"


def test_a_virtio_disk_of_the_size_warns_instead_of_failing_an_ssd_spec() -> None:
    spec = _spec(storage=(StorageSpec("ssd", 500),))
    disks = [{"name": "vda", "class": "virtio", "size_bytes": 600 * 10**9}]
    ids = _ids(spec, {"disks": disks, "mounts": []})
    assert ids["host.storage[0]"].status is Status.WARN, ids["host.storage[0]"]
    assert "virtio" in ids["host.storage[0]"].detail
