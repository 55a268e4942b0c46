"""The compatibility tables: sourced, dated, complete where the issue asks, and the lookups over them."""

from __future__ import annotations

import datetime as dt

import pytest

from dlverify.hwspec import compat


@pytest.mark.parametrize("name", compat.TABLES)
def test_every_table_names_sources_and_date(name: str) -> None:
    t = compat.table(name)
    assert t["sources"] and all(isinstance(s, str) and len(s) > 10 for s in t["sources"])
    dt.date.fromisoformat(compat.as_of(name))


def test_cuda_driver_facts() -> None:
    assert compat.cuda_driver_entry("12.1")["ga"] == "530.30.02"
    assert compat.cuda_driver_entry("12.2")["ga"] == "535.54.03"
    assert compat.cuda_driver_entry("13.0")["ga"] == "580.65.06"
    toolkits = compat.table("cuda_driver")["toolkits"]
    for v in ("11.0", "11.8", "12.0", "12.4", "12.8", "13.0"):
        assert v in toolkits
    # minimum drivers rise with the toolkit
    ordered = sorted(toolkits, key=compat.vkey)
    assert [compat.vkey(toolkits[v]["ga"]) for v in ordered] == sorted(
        compat.vkey(toolkits[v]["ga"]) for v in ordered
    )
    assert all(compat.vkey(e["latest_update"]) >= compat.vkey(e["ga"]) for e in toolkits.values())
    assert compat.branch_max_cuda("535.183.01") == "12.2" and compat.branch_max_cuda("580") == "13.0"
    assert compat.minor_compat_driver("12") == "525.60.13"


def test_cudnn_apt_builds() -> None:
    assert compat.cudnn_apt_build("8.9.7", "12.1") == "12.2"
    assert compat.cudnn_apt_build("8.9.7.29", "12.4") == "12.2"
    assert compat.cudnn_apt_build("8.9.3", "12.1") == "12.1"
    assert compat.cudnn_apt_build("8.9.2", "11.8") == "11.8"
    assert compat.cudnn_apt_build("8.6.0", "12.1") is None
    assert compat.cudnn_apt_build("8.4.1", "11.8") is None and not compat.cudnn_apt_known("8.4.1")


def test_cudnn_facts() -> None:
    assert compat.cudnn_entry("8.9.2")["cuda_majors"] == ["11", "12"]
    assert "12" not in compat.cudnn_entry("8.6.0")["cuda_majors"]
    assert "13" in compat.cudnn_entry("9.19.0")["cuda_majors"]
    assert compat.cudnn_entry("9.1.0.70")["cuda_majors"] == ["11", "12"]
    assert compat.cudnn_entry("7.6.5") is None


def test_pytorch_facts() -> None:
    r = compat.torch_release("2.0.0+cu121")
    assert r is not None and r.cuda == ("11.7", "11.8")
    assert compat.first_torch_with_cuda("12.1") == "2.1"
    r = compat.torch_release("2.1.2")
    assert r.patch == {"torchvision": "0.16.2", "torchaudio": "2.1.2"} and "3.10" in r.python
    assert r.cudnn["12.1"] == "8.9.2"
    for series in ("1.13", "2.0", "2.1", "2.2", "2.3", "2.4", "2.5", "2.11"):
        assert compat.torch_release(series + ".0") is not None, series
    assert compat.torch_release("2.11.0+cu130").patch["torchvision"] == "0.26.0"  # recorded on the H100
    assert compat.torch_release("2.1.5") is not None and compat.torch_release("2.1.5").patch is None


def test_tensorflow_facts() -> None:
    assert compat.tf_release("2.12.0") == {
        "cuda": "11.8",
        "cudnn": "8.6",
        "python": ["3.8", "3.9", "3.10", "3.11"],
    }
    assert (compat.tf_release("2.15.1")["cuda"], compat.tf_release("2.15.1")["cudnn"]) == ("12.2", "8.9")
    assert compat.tf_release("2.13.0")["cuda"] == "11.8"


REQUIRED_GPUS = {
    "NVIDIA H100 80GB HBM3": ("Hopper", True, 5),
    "NVIDIA H100 PCIe": ("Hopper", True, 5),
    "NVIDIA H100 NVL": ("Hopper", True, 5),
    "NVIDIA H200": ("Hopper", True, 5),
    "NVIDIA A100-SXM4-40GB": ("Ampere", True, 4),
    "NVIDIA A100-SXM4-80GB": ("Ampere", True, 4),
    "NVIDIA A100-PCIE-40GB": ("Ampere", True, 4),
    "NVIDIA A100 80GB PCIe": ("Ampere", True, 4),
    "NVIDIA L40": ("Ada Lovelace", False, 4),
    "NVIDIA L40S": ("Ada Lovelace", False, 4),
    "NVIDIA GeForce RTX 4090": ("Ada Lovelace", False, 4),
    "NVIDIA L4": ("Ada Lovelace", False, 4),
    "NVIDIA A10": ("Ampere", False, 4),
    "Tesla V100-SXM2-32GB": ("Volta", True, 3),
}


@pytest.mark.parametrize(("nvml_name", "facts"), REQUIRED_GPUS.items())
def test_gpu_info_by_nvml_name(nvml_name: str, facts: tuple[str, bool, int]) -> None:
    info = compat.gpu_info(nvml_name)
    assert info is not None
    assert (info.architecture, info.nvlink, info.pcie_gen) == facts
    assert info.pcie_width == 16


def test_gpu_matching() -> None:
    assert compat.gpu_model_matches("NVIDIA A100 80GB", "NVIDIA A100-SXM4-80GB")
    assert compat.gpu_model_matches("NVIDIA A100 80GB", "NVIDIA A100 80GB PCIe")
    assert not compat.gpu_model_matches("NVIDIA A100 80GB", "NVIDIA A100-SXM4-40GB")
    assert compat.gpu_model_matches("NVIDIA H100 80GB SXM", "NVIDIA H100 80GB HBM3")  # via aliases
    assert not compat.gpu_model_matches("NVIDIA H100 80GB SXM", "NVIDIA H100 PCIe")
    assert compat.gpu_model_matches("RTX 4090", "NVIDIA GeForce RTX 4090")
    assert {g.key for g in compat.find_gpus("NVIDIA A100 80GB")} == {"a100-sxm4-80gb", "a100-pcie-80gb"}
    assert compat.find_gpu("NVIDIA A100 80GB").architecture == "Ampere"
    assert compat.gpu_info("NVIDIA B999") is None


def test_version_helpers() -> None:
    assert compat.vkey("535.54.03") == (535, 54, 3)
    assert compat.vkey("2.1.2+cu121") == (2, 1, 2)
    assert compat.split_local("2.1.2+cu121") == ("2.1.2", "cu121")
    assert compat.cuda_from_tag("cu121") == "12.1" and compat.cuda_from_tag("cu130") == "13.0"
    assert compat.cuda_from_tag("cpu") is None
    assert compat.cuda_tag("11.8") == "cu118"


_URL = "https://"


@pytest.mark.parametrize("name", compat.TABLES)
def test_every_row_names_its_primary_source(name: str) -> None:
    """Issue 10: every data row names the NVIDIA (or framework) document it comes from."""
    t = compat.table(name)
    for section, rows in t.items():
        if section in ("sources", "as_of", "row_sources") or not isinstance(rows, dict):
            continue
        for key in rows:
            src = compat.row_source(name, section, key)
            srcs = src if isinstance(src, list) else [src]
            assert srcs and all(isinstance(s, str) and _URL in s for s in srcs), (name, section, key)


def test_unsourced_gpu_values_say_why() -> None:
    fields = {f for f in compat.GpuInfo.__dataclass_fields__}
    for g in compat.gpus():
        for field, why in g.unsourced:
            assert field in fields and len(why) > 15, (g.key, field)
    h200 = next(g for g in compat.gpus() if g.key == "h200-sxm")
    assert h200.min_cuda == "11.8" and h200.compute_capability == "9.0"
    assert h200.unsourced_reason("min_driver") and not h200.unsourced_reason("min_cuda")


@pytest.mark.parametrize(
    ("spec_model", "nvml_name", "ok"),
    [
        ("H200", "NVIDIA H200 NVL", False),
        ("NVIDIA H200", "NVIDIA H200 NVL", False),
        ("H200 SXM 141GB", "NVIDIA H200 NVL", False),
        ("H200 NVL", "NVIDIA H200", False),
        ("H200", "NVIDIA H200", True),
        ("H200 NVL", "NVIDIA H200 NVL", True),
        ("H100", "NVIDIA H100 NVL", True),  # the family name means any H100
        ("H100 SXM", "NVIDIA H100 NVL", False),
        ("A100 80GB", "NVIDIA A100 80GB PCIe", True),
        ("H20", "NVIDIA H200", False),
    ],
)
def test_models_match_exactly_where_nvidia_names_differ(spec_model: str, nvml_name: str, ok: bool) -> None:
    assert compat.gpu_model_matches(spec_model, nvml_name) is ok
