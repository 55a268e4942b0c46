"""Human forms -> typed values (hwspec/parse.py)."""

from __future__ import annotations

import pytest

from dlverify.hwspec import parse
from dlverify.hwspec.model import CpuSpec, GpuSpec, NetworkSpec, OsSpec, RamSpec


@pytest.mark.parametrize(
    ("text", "gb"),
    [
        ("2TB", 2000.0),
        ("512 GB", 512.0),
        ("1.92TB", 1920.0),
        ("480GiB", 515.396),
        ("8 TiB", 8796.093),
        ("500gb", 500.0),
        ("1PB", 1_000_000.0),
    ],
)
def test_sizes_are_decimal_gb(text: str, gb: float) -> None:
    assert parse.parse_size(text) == pytest.approx(gb)


@pytest.mark.parametrize("text", ["2T", "two TB", "", "TB", "-1TB", "1.2.3GB", "0GB", "2 TB SSD"])
def test_bad_sizes_raise_with_hint(text: str) -> None:
    with pytest.raises(ValueError, match=r"2TB|greater than zero"):
        parse.parse_size(text)


def test_ram() -> None:
    assert parse.parse_ram("512GB DDR4 ECC") == RamSpec(512.0, "DDR4", True)
    assert parse.parse_ram("256 GB DDR5-4800 non-ECC") == RamSpec(256.0, "DDR5", False)
    # RAM is binary whatever the label says: 1TB of DIMMs is 1024 GiB, "125GiB" is 125 GiB
    assert parse.parse_ram("1TB") == RamSpec(1024.0, None, None)
    assert parse.parse_ram("125GiB") == RamSpec(125.0, None, None)
    assert parse.parse_ram("1536 MB LPDDR5") == RamSpec(1.5, "LPDDR5", None)
    with pytest.raises(ValueError, match="don't know 'fast'"):
        parse.parse_ram("512GB fast")
    with pytest.raises(ValueError, match="512GB DDR4 ECC"):
        parse.parse_ram("lots")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("NVIDIA A100 80GB × 4", GpuSpec("NVIDIA A100 80GB", 4, 80)),
        ("A100 80GB x4", GpuSpec("NVIDIA A100 80GB", 4, 80)),
        ("4x H100 80GB SXM", GpuSpec("NVIDIA H100 80GB SXM", 4, 80)),
        ("NVIDIA H100 80GB HBM3", GpuSpec("NVIDIA H100 80GB HBM3", 1, 80)),
        ("RTX 4090", GpuSpec("NVIDIA RTX 4090", 1, None)),  # the x in RTX is not a count
        ("8 × NVIDIA L40S", GpuSpec("NVIDIA L40S", 8, None)),
    ],
)
def test_gpus(text: str, expected: GpuSpec) -> None:
    assert parse.parse_gpu(text) == expected


@pytest.mark.parametrize("text", ["", "GPU", "4x", "A100 x 0", "2x A100 x 4"])
def test_bad_gpus(text: str) -> None:
    with pytest.raises(ValueError):
        parse.parse_gpu(text)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("100GbE RoCE", NetworkSpec(100, 1, "roce", "100GbE RoCE")),
        ("2x 25GbE", NetworkSpec(25, 2, None, "2x 25GbE")),
        ("200Gb InfiniBand (HDR)", NetworkSpec(200, 1, "infiniband", "200Gb InfiniBand (HDR)")),
        ("10 Gbps", NetworkSpec(10, 1, None, "10 Gbps")),
    ],
)
def test_networks(text: str, expected: NetworkSpec) -> None:
    assert parse.parse_network(text) == expected


def test_bad_network_names_the_token() -> None:
    with pytest.raises(ValueError, match="don't know 'wifi'"):
        parse.parse_network("100GbE wifi")
    with pytest.raises(ValueError, match="100GbE RoCE"):
        parse.parse_network("fast")


def test_cpus() -> None:
    assert parse.parse_cpu("AMD EPYC 7543, 32C/64T") == CpuSpec("AMD EPYC 7543", 32, 64, None)
    # datasheet counts are per CPU; CpuSpec counts all sockets
    assert parse.parse_cpu("2x Intel Xeon Gold 6338, 32C/64T") == CpuSpec("Intel Xeon Gold 6338", 64, 128, 2)
    assert parse.parse_cpu("2x Intel Xeon Gold 6338") == CpuSpec("Intel Xeon Gold 6338", None, None, 2)
    assert parse.parse_cpu("Intel(R) Xeon(R) Processor").model == "Intel(R) Xeon(R) Processor"
    with pytest.raises(ValueError, match="fewer threads"):
        parse.parse_cpu("AMD EPYC 7543, 64C/32T")
    with pytest.raises(ValueError):
        parse.parse_cpu("32C/64T")


def test_os() -> None:
    assert parse.parse_os("Ubuntu 22.04 LTS") == OsSpec("Ubuntu", "22.04")
    assert parse.parse_os("Debian 12") == OsSpec("Debian", "12")
    assert parse.parse_os("Rocky Linux 9.3") == OsSpec("Rocky Linux", "9.3")
    with pytest.raises(ValueError, match=r"Ubuntu 22\.04 LTS"):
        parse.parse_os("Ubuntu")


def test_storage_class() -> None:
    assert parse.storage_class("NVMe SSD") == "nvme"
    assert parse.storage_class("SATA SSD") == "ssd"
    assert parse.storage_class("HDD") == "hdd"
    assert parse.parse_storage("8TB SATA SSD") == (8000.0, "ssd")
    with pytest.raises(ValueError, match="NVMe SSD"):
        parse.storage_class("tape")
