"""The spec loader: both forms, every example, and every kind of bad input with file:line:key."""

from __future__ import annotations

import dataclasses
import textwrap
from pathlib import Path

import pytest
from conftest import ROOT

from dlverify.hwspec import SpecError, load_spec, load_spec_text
from dlverify.hwspec.keys import BENCH, CHECKS
from dlverify.hwspec.model import (
    BenchSpec,
    ChecksSpec,
    CpuSpec,
    GpuSpec,
    NetworkSpec,
    OsSpec,
    PythonEnvSpec,
    RamSpec,
    StorageSpec,
)

EXAMPLES = [*sorted((ROOT / "hwspec" / "examples").glob("*.yaml")), ROOT / "hwspec.yaml"]


def _load(text: str, path: str = "hwspec.yaml"):
    return load_spec_text(textwrap.dedent(text).lstrip("\n"), path)


def _err(text: str, path: str = "hwspec.yaml") -> SpecError:
    with pytest.raises(SpecError) as info:
        _load(text, path)
    return info.value


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_every_example_loads(path: Path) -> None:
    spec = load_spec(path)
    assert spec.path == str(path)
    assert spec.hardware.gpus and spec.software.nvidia_driver


def test_notes_human_form_exactly_as_written() -> None:
    spec = load_spec(ROOT / "hwspec" / "examples" / "seed-notes.yaml")
    hw, sw = spec.hardware, spec.software
    assert hw.cpu == CpuSpec("AMD EPYC 7543", 32, 64, None)
    assert hw.gpus == (GpuSpec("NVIDIA A100 80GB", 4, 80, architecture="Ampere"),)
    assert hw.gpu_count == 4
    assert hw.ram == RamSpec(512.0, "DDR4", True)
    assert [(s.type, s.size_gb) for s in hw.storage] == [("nvme", 2000.0), ("ssd", 8000.0)]
    assert hw.network == (NetworkSpec(100, 1, "roce", "100GbE RoCE"),)
    assert sw.os == OsSpec("Ubuntu", "22.04")
    assert (sw.nvidia_driver, sw.cuda, sw.cudnn) == ("535.54.03", "12.1", "8.9.2")
    assert sw.frameworks == {"pytorch": "2.0.0+cu121", "tensorflow": "2.12.0"}
    assert sw.containers["nvidia_container_toolkit"] == "1.13.1"
    assert sw.monitoring == {"prometheus": "2.42.0", "grafana": "9.4.7"}
    assert spec.checks == ChecksSpec() and spec.bench == BenchSpec()


def test_structured_form() -> None:
    spec = _load("""
        hardware:
          cpu: {model: "Intel Xeon Gold 6338", cores: 64, threads: 128, sockets: 2}
          gpu:
            - {model: "H100 80GB HBM3", count: 8, memory_gb: 80, nvlink: true, pcie_gen: 5, pcie_width: 16}
          ram: {size: "1TB", type: DDR5, ecc: true}
          storage:
            - {type: "NVMe SSD", size: "3.84TB", mount: /}
            - {type: HDD, size_gb: 16000, mount: /archive}
          network:
            - {speed_gbps: 400, count: 8, rdma: infiniband}
            - "2x 25GbE"
        software:
          os: {name: Ubuntu, version: "22.04"}
          nvidia_driver: "550.54.15"
          cuda: "12.4"
          python_env: {name: train, python: "3.11", installer: venv, prefix: /opt/venvs/train}
        checks: {gpu_temp_max_c: 85, ecc: warn, allowed_clock_event_reasons: [gpu_idle]}
        bench: {min_train_img_s: 1000}
    """)
    hw = spec.hardware
    assert hw.cpu == CpuSpec("Intel Xeon Gold 6338", 64, 128, 2)
    assert hw.gpus == (GpuSpec("NVIDIA H100 80GB HBM3", 8, 80, "Hopper", True, 5, 16),)
    assert hw.ram == RamSpec(1024.0, "DDR5", True)  # "1TB" of RAM is 1 TiB
    assert hw.storage == (
        StorageSpec("nvme", 3840.0, "/", "NVMe SSD 3.84TB"),
        StorageSpec("hdd", 16000.0, "/archive", "HDD 16TB"),
    )
    assert hw.network[0] == NetworkSpec(400, 8, "infiniband", None)
    assert hw.network[1].count == 2
    assert spec.software.python_env == PythonEnvSpec("train", "3.11", "venv", "/opt/venvs/train")
    assert spec.software.python_env.interpreter == "/opt/venvs/train/bin/python3"
    assert spec.checks.gpu_temp_max_c == 85 and spec.checks.ecc == "warn"
    assert spec.checks.allowed_clock_event_reasons == ("gpu_idle",)
    assert spec.bench.min_train_img_s == 1000


def test_python_env_defaults_follow_installer() -> None:
    env = _load("software:\n  python_env: {installer: system}\n").software.python_env
    assert env.prefix == "/usr" and env.interpreter == "/usr/bin/python3"
    env = _load("software:\n  python_env: {python: '3.10'}\n").software.python_env
    assert env == PythonEnvSpec()


def test_locations_point_at_keys() -> None:
    spec = _load("""
        hardware:
          gpu:
            - "A100 80GB x4"
        software:
          cuda: "12.1"
    """)
    assert spec.where("software.cuda") == "hwspec.yaml:5"
    assert spec.locations["software.cuda"].column == 3
    assert spec.where("hardware.gpu[0]") == "hwspec.yaml:3"
    assert spec.where("software.cudnn") == "hwspec.yaml:4"  # falls back to the written parent


def test_key_tables_cover_the_model() -> None:
    """checks:/bench: accept exactly the model's fields: adding one to the model without the table fails."""
    keys = {f.name for f in dataclasses.fields(ChecksSpec) if f.metadata.get("spec_key", True)}
    assert set(CHECKS.fields) == keys
    assert set(BENCH.fields) == {f.name for f in dataclasses.fields(BenchSpec)}


# --- bad input ---------------------------------------------------------------------------------------


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(SpecError) as info:
        load_spec(tmp_path / "nope.yaml")
    assert str(info.value) == f"{tmp_path / 'nope.yaml'}: no such file"
    assert info.value.line is None


def test_unreadable_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    p = tmp_path / "spec.yaml"
    p.write_text("software: {}\n")

    import os

    def deny(*_a: object, **_k: object) -> int:
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(os, "open", deny)  # root ignores chmod, so stand in for EACCES
    with pytest.raises(SpecError, match="not readable: permission denied"):
        load_spec(p)


def test_directory_and_binary(tmp_path: Path) -> None:
    with pytest.raises(SpecError, match="is a directory"):
        load_spec(tmp_path)
    p = tmp_path / "bin.yaml"
    p.write_bytes(b"software:\n  cuda: \xff\xfe\n")
    with pytest.raises(SpecError, match="not UTF-8"):
        load_spec(p)


def test_malformed_yaml_has_the_line() -> None:
    e = _err("""
        software:
          cuda: "12.1"
          cudnn: [8.9
        hardware: {}
    """)
    assert e.line == 4 and "malformed YAML" in e.message
    assert str(e).startswith("hwspec.yaml:4:")


def test_empty_and_comment_only() -> None:
    for text in ("", "# nothing here\n"):
        e = _err(text)
        assert "empty" in e.message and e.line is None


def test_top_level_not_a_mapping() -> None:
    e = _err("- hardware\n- software\n")
    assert e.line == 1 and "top level must be a mapping" in e.message and "a list" in e.message


def test_unknown_key_suggests() -> None:
    e = _err("""
        hardware:
          gpu: "H100"
        sofware:
          cuda: "12.1"
    """)
    assert (e.line, e.column, e.key) == (3, 1, "sofware")
    assert "did you mean 'software'?" in e.message
    e = _err("software:\n  cuda_version: '12.1'\n")
    assert (e.key, e.line) == ("software.cuda_version", 2)
    assert (
        "unknown key 'cuda_version' in software" in e.message
        and "(known: os, nvidia_driver, cuda," in e.message
    )


def test_float_version_says_quote_it() -> None:
    e = _err("""
        software:
          os: "Ubuntu 22.04 LTS"
          cuda: 12.1
    """)
    assert (
        str(e) == 'hwspec.yaml:3:9: software.cuda: expected a version string like "12.1", got float 12.1 '
        '— quote it: "12.1"'
    )
    e = _err("software:\n  python_env:\n    python: 3.10\n")
    assert e.key == "software.python_env.python" and e.line == 3
    assert "got float 3.1 (written 3.10)" in e.message and '"3.10"' in e.message
    e = _err("software:\n  nvidia_driver: 535\n")
    assert "integer 535" in e.message and e.line == 2


def test_wrong_types() -> None:
    e = _err("hardware:\n  gpu:\n    - model: A100\n      count: four\n")
    assert (e.line, e.key) == (4, "hardware.gpu[0].count") and "expected an integer" in e.message
    e = _err("software:\n  frameworks: [pytorch]\n")
    assert (e.line, e.key) == (2, "software.frameworks") and "expected a mapping, got a list" in e.message
    e = _err("hardware:\n  ram: 512\n")
    assert e.line == 2 and "got integer 512" in e.message
    e = _err("checks:\n  gpu_temp_max_c: true\n")
    assert "got boolean true" in e.message


def test_unparseable_strings_name_the_key() -> None:
    e = _err("hardware:\n  storage:\n    - type: NVMe SSD\n      size: 2 terabytes\n")
    assert (e.line, e.key) == (4, "hardware.storage[0].size") and '"2TB"' in e.message
    e = _err('hardware:\n  gpu: ["lots of GPUs"]\n')
    assert (e.line, e.key) == (2, "hardware.gpu[0]") and "expected a GPU like" in e.message
    e = _err("hardware:\n  storage:\n    - {type: tape, size: 2TB}\n")
    assert e.key == "hardware.storage[0]" and "tape" in e.message


def test_duplicate_keys() -> None:
    e = _err("""
        software:
          cuda: "12.1"
          cuda: "12.4"
    """)
    assert (e.line, e.key) == (
        3,
        "software.cuda",
    ) and "duplicate key 'cuda' (first given on line 2)" in e.message


def test_enum_out_of_range() -> None:
    e = _err("checks:\n  ecc: sometimes\n")
    assert (e.line, e.key) == (2, "checks.ecc") and "'fail', 'warn', 'ignore'" in e.message
    e = _err("checks:\n  allowed_clock_event_reasons: [gpu_idle, sw_thermal]\n")
    assert (
        e.key == "checks.allowed_clock_event_reasons[1]" and "did you mean 'sw_thermal_slowdown'" in e.message
    )
    e = _err("software:\n  python_env: {installer: pipx}\n")
    assert e.key == "software.python_env.installer"


def test_counts_must_be_positive() -> None:
    e = _err("hardware:\n  gpu:\n    - {model: H100, count: 0}\n")
    assert e.key == "hardware.gpu[0].count" and "from 1 to 4096, got 0" in e.message and e.line == 3
    e = _err("hardware:\n  network:\n    - {speed_gbps: -25}\n")
    assert e.key == "hardware.network[0].speed_gbps" and "greater than 0" in e.message
    e = _err("hardware:\n  gpu: 'H100 x 0'\n")
    assert "from 1 to 4096" in e.message


def test_cross_field_rules() -> None:
    e = _err("checks: {gpu_temp_warn_c: 90, gpu_temp_max_c: 85}\n")
    assert e.key == "checks" and "above gpu_temp_max_c" in e.message
    e = _err("hardware:\n  ram: {size: 512GB, size_gb: 512}\n")
    assert "not both" in e.message
    e = _err("software:\n  python_env: {installer: venv}\n")
    assert "needs 'prefix'" in e.message


def test_null_values_are_refused() -> None:
    e = _err("software:\n  cuda:\n")
    assert e.key == "software.cuda" and "got nothing" in e.message


def test_all_errors_are_collected_in_file_order() -> None:
    e = _err("""
        hardware:
          gpu: ["lots"]
          ram: "a lot"
        software:
          cuda: 12.1
          cudnn: 8.9
        checks:
          ecc: maybe
        extra: 1
    """)
    assert [x.line for x in e.errors] == [2, 3, 5, 6, 8, 9]
    assert e.errors[0] is e
    assert len(str(e).splitlines()) == 6
    assert all(line.startswith("hwspec.yaml:") for line in str(e).splitlines())


def test_required_keys() -> None:
    e = _err("hardware:\n  gpu:\n    - {count: 2}\n")
    assert e.key == "hardware.gpu[0].model" and "required key 'model' is missing" in e.message


def test_multi_document_and_tags() -> None:
    e = _err("software: {}\n---\nhardware: {}\n")
    assert e.line == 2 and "malformed YAML" in e.message
    e = _err("software:\n  cuda: !!binary aGVsbG8=\n")
    assert "unsupported YAML tag" in e.message and e.line == 2


def test_alias_bomb_is_refused_quickly() -> None:
    """9**8 values if constructed; the loader walks only the node tree and its tables, so it stays fast."""
    bomb = "a0: &a0 [1, 1, 1, 1, 1, 1, 1, 1, 1]\n" + "\n".join(
        f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 9)}]" for i in range(1, 9)
    )
    e = _err("hardware:\n  x:\n    " + bomb.replace("\n", "\n    ") + "\n  gpu: *a8\n")
    assert e.key == "hardware.x" and len(e.errors) == 10  # x is unknown (not walked); 9 gpu items are lists
    assert all(x.key.startswith("hardware.gpu[") and "got a list" in x.message for x in e.errors[1:])
    top = "- &a0 [1, 1, 1, 1, 1, 1, 1, 1, 1]\n" + "\n".join(
        f"- &a{i} [{', '.join([f'*a{i - 1}'] * 9)}]" for i in range(1, 9)
    )
    assert "got a list" in _err(top).message


def test_budget_stops_huge_specs() -> None:
    gpus = "\n".join(f"    - {{model: A100, count: {i + 1}}}" for i in range(12_000))
    e = _err(f"hardware:\n  gpu:\n{gpus}\n")
    assert "too many values" in e.errors[-1].message
