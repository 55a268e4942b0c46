"""The snapshot document, its guards, and the spec written from it (spec init)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import replay_host
import yaml
from test_check_host import _runner, make_host

from dlverify import snapshot
from dlverify.checks import run_checks
from dlverify.probes.nvml import Unavailable
from dlverify.results import Status
from dlverify.spec_init import spec_from_snapshot


def test_unavailable_serialises_everywhere() -> None:
    doc = snapshot.to_jsonable({"a": Unavailable("why"), "b": [Unavailable("x"), (1, b"y")], "c": None})
    assert doc == {"a": {"unavailable": "why"}, "b": [{"unavailable": "x"}, [1, "y"]], "c": None}


def test_a_probe_that_raises_becomes_unavailable(monkeypatch) -> None:
    import dlverify.probes.host as host

    def boom(*_a, **_k):
        raise RuntimeError("sysfs exploded")

    monkeypatch.setattr(host, "probe_host", boom)
    snap = snapshot.take(only=("host",))
    assert snap["host"] == {"unavailable": "host probe failed unexpectedly: RuntimeError: sysfs exploded"}
    assert snap["nvml"] == {"unavailable": "not probed (--only)"}
    assert set(snap["probe_seconds"]) == {"host"}
    results = run_checks(replay_host.h100_spec(), snap, only=("host",))
    assert [(r.id, r.status) for r in results] == [("host", Status.SKIP)]
    assert "sysfs exploded" in results[0].detail


def test_live_snapshot_is_plain_json_with_the_schema_id() -> None:
    snap = snapshot.take(only=("host", "gpu"))
    assert snap["schema"] == snapshot.SCHEMA_ID == "dlverify.snapshot/1"
    assert json.loads(snapshot.dumps(snap)) == snap
    assert snapshot.validate(snap) is snap


def test_load_errors_name_the_file(tmp_path: Path) -> None:
    with pytest.raises(snapshot.SnapshotError, match=r"nope\.json: cannot read"):
        snapshot.load(str(tmp_path / "nope.json"))


def _full_snapshot(monkeypatch, tmp_path: Path) -> dict:
    """The replayed H100 (GPU + software) on the fake host tree (host): a whole machine, recorded."""
    from dlverify.probes.host import probe_host

    snap = replay_host.h100_snapshot(monkeypatch, tmp_path)
    snap["host"] = snapshot.to_jsonable(
        probe_host(make_host(tmp_path / "host"), runner=_runner(journal="k\n"))
    )
    return snap


def test_spec_from_snapshot_is_a_spec_the_machine_passes(monkeypatch, tmp_path: Path) -> None:
    from dlverify.hwspec.loader import load_spec_text

    snap = _full_snapshot(monkeypatch, tmp_path)
    written = spec_from_snapshot(snap)
    hw, sw = written["hardware"], written["software"]
    assert hw["gpu"] == [{"model": "NVIDIA H100 80GB HBM3", "count": 1, "memory_gb": 80, "nvlink": False}]
    assert hw["cpu"] == {"model": "AMD EPYC 7543 32-Core Processor", "cores": 4, "threads": 8, "sockets": 2}
    assert hw["ram"] == {"size_gb": 512, "type": "DDR4", "ecc": True}  # from the DIMMs, not MemTotal
    assert [s["type"] for s in hw["storage"]] == ["NVMe SSD", "SATA SSD", "HDD"]
    assert hw["storage"][0]["mount"] == "/"
    assert hw["network"][0] == {"speed_gbps": 100, "count": 1, "rdma": "roce"}
    assert sw["nvidia_driver"] == "580.159.04" and sw["cuda"] == "13.0"
    assert sw["frameworks"]["pytorch"] == "2.11.0+cu130"
    assert sw["python_env"]["python"] == "3.12" and sw["python_env"]["installer"] == "venv"

    spec = load_spec_text(yaml.safe_dump(written, sort_keys=False), "written.yaml")
    results = run_checks(spec, snap)
    bad = [(r.id, r.detail) for r in results if r.status is Status.FAIL]
    # NCCL is not in the H100 recording, and one GPU asks for no NCCL: skipped, not failed (issue 10)
    assert bad == []
    assert next(r for r in results if r.id == "software.nccl").status is Status.SKIP
    assert not [r for r in results if r.status is Status.WARN]


def test_written_spec_catches_drift(monkeypatch, tmp_path: Path) -> None:
    from dlverify.hwspec.loader import load_spec_text

    snap = _full_snapshot(monkeypatch, tmp_path)
    spec = load_spec_text(yaml.safe_dump(spec_from_snapshot(snap)), "written.yaml")
    snap["nvml"]["gpus"] = []
    snap["nvml"]["gpu_count"] = 0
    snap["host"]["disks"] = snap["host"]["disks"][:1]
    failed = {r.id for r in run_checks(spec, snap) if r.status is Status.FAIL}
    assert {"gpu.count", "host.storage[1]", "host.storage[2]", "software.torch_device_count"} <= failed


def test_spec_init_on_this_machine_round_trips(tmp_path: Path) -> None:
    from dlverify.hwspec.loader import load_spec_text

    snap = json.loads(snapshot.dumps(snapshot.take(env=False)))
    written = spec_from_snapshot(snap)
    spec = load_spec_text(yaml.safe_dump(written), "this-machine.yaml")
    results = run_checks(spec, snap)
    assert not [(r.id, r.detail) for r in results if r.status is Status.FAIL]
