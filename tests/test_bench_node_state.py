"""Issue 12: the node's error counters and XIDs before and after a bench run. Anything that moves under load
fails (or warns) the GPU it moved on, by name; nothing that stayed still is blamed.

The readings come from the real probes: the NVML replay of the recorded H100 (counters as its nvidia-smi
recorded them) and the kernel-log XID parser fed real NVRM lines.
"""

from __future__ import annotations

import copy
from typing import Any

import nvml_replay
from conftest import one
from test_bench_judge import REFS, _record, _worker

from dlverify.benchmarks import node_state
from dlverify.benchmarks.judge import judge
from dlverify.probes.host import parse_xid
from dlverify.results import Status

XID_BEFORE = "[  12.3] NVRM: Xid (PCI:0000:3b:00): 13, Graphics Exception: ESR 0x50cc30=0x0\n"


def _xid(lines: str):
    return lambda: {"source": "dmesg", "events": parse_xid(lines)}


def _h100_state(monkeypatch) -> dict[str, Any]:
    nvml_replay.install(monkeypatch, nvml_replay.load_recording())
    return node_state.take(probe_xid=_xid(XID_BEFORE))


def _fleet_of(state: dict[str, Any], n: int) -> dict[str, Any]:
    """The one recorded GPU as n GPUs (uuid GPU-<i>, PCI bus 0x19 + i) of one node."""
    (only,) = state["gpus"].values()
    gpus = {}
    for i in range(n):
        g = copy.deepcopy(only)
        g["pci_bus_id"] = f"00000000:{0x19 + i:02X}:00.0"
        gpus[f"GPU-{i}"] = g
    return {"gpus": gpus, "xid": list(state["xid"])}


def _workers(n: int) -> list[dict[str, Any]]:
    ws = [_worker(i) for i in range(n)]
    for i, w in enumerate(ws):
        w["uuid"] = f"GPU-{i}"
    return ws


def test_take_reads_the_real_probes(monkeypatch) -> None:
    state = _h100_state(monkeypatch)
    ((uuid, gpu),) = state["gpus"].items()
    assert uuid.startswith("GPU-")
    assert gpu["ecc_volatile_uncorrected"] == 0 and gpu["pcie_replay_count"] == 0  # as recorded
    assert gpu["pci_bus_id"]
    assert state["xid"] == [
        {"pci": "PCI:0000:3b:00", "xid": 13, "text": "Graphics Exception: ESR 0x50cc30=0x0"}
    ]


def test_what_moved_during_the_run_is_named_on_its_gpu_only(monkeypatch) -> None:
    before = _fleet_of(_h100_state(monkeypatch), 4)
    after = copy.deepcopy(before)
    after["gpus"]["GPU-1"]["ecc_volatile_uncorrected"] += 2  # an uncorrectable ECC error under load
    after["gpus"]["GPU-2"]["pcie_replay_count"] += 40  # a marginal link: replays
    after["gpus"]["GPU-3"]["remapped_rows_pending"] = True
    # an XID on GPU 0's bus during the run (the kernel writes 0000:19:00, NVML 00000000:19:00.0)
    after["xid"] += parse_xid(
        "[ 901.2] NVRM: Xid (PCI:0000:19:00): 79, pid=1234, GPU has fallen off the bus.\n"
    )
    record = _record(_workers(4))
    record["node_state"] = {"before": before, "after": after}
    res = judge(record, references=REFS)
    got = {g: one(res, "bench.node_state", g) for g in ("gpu0", "gpu1", "gpu2", "gpu3")}
    assert got["gpu0"].status is Status.FAIL and "XID 79" in got["gpu0"].detail
    assert got["gpu1"].status is Status.FAIL and "uncorrectable ECC errors 0 -> 2" in got["gpu1"].detail
    assert got["gpu2"].status is Status.WARN and "PCIe replays 0 -> 40" in got["gpu2"].detail
    assert got["gpu3"].status is Status.FAIL and "row remap is pending" in got["gpu3"].detail
    # the XID logged before the run (bus 3b, no GPU of this node) is nobody's fault
    assert "XID 13" not in " ".join(r.detail for r in got.values())


def test_a_quiet_run_passes_and_old_or_cpu_records_skip_with_the_reason(monkeypatch) -> None:
    before = _fleet_of(_h100_state(monkeypatch), 2)
    record = _record(_workers(2))
    record["node_state"] = {"before": before, "after": copy.deepcopy(before)}
    assert {one(judge(record, references=REFS), "bench.node_state", g).status for g in ("gpu0", "gpu1")} == {
        Status.PASS
    }
    del record["node_state"]
    assert "not recorded" in one(judge(record, references=REFS), "bench.node_state", "gpu0").detail
    record["node_state"] = {"unavailable": "CPU run: no GPU counters"}
    r = one(judge(record, references=REFS), "bench.node_state", "gpu0")
    assert r.status is Status.SKIP and "CPU run" in r.detail


def test_a_gpu_lost_during_the_run_is_said(monkeypatch) -> None:
    before = _fleet_of(_h100_state(monkeypatch), 2)
    after = copy.deepcopy(before)
    del after["gpus"]["GPU-1"]
    got = node_state.moved(before, after, "GPU-1")
    assert isinstance(got, str) and "lost during the run" in got


def test_a_gpu_busy_before_the_run_is_named(monkeypatch) -> None:
    """Issue 12: another process holding a GPU makes its numbers not its own: said, by PID and memory."""
    before = _fleet_of(_h100_state(monkeypatch), 2)
    before["processes"] = {
        "GPU-0": [],
        "GPU-1": [{"pid": 4242, "name": "python3", "used_mib": 30 * 1024}],
    }
    record = _record(_workers(2))
    record["node_state"] = {"before": before, "after": copy.deepcopy(before)}
    res = judge(record, references=REFS)
    assert one(res, "bench.gpu_free", "gpu0").status is Status.PASS
    busy = one(res, "bench.gpu_free", "gpu1")
    assert busy.status is Status.WARN and "pid 4242 (python3) holding 30.0 GiB" in busy.detail
    before["processes"] = {"unavailable": "NVML library (libnvidia-ml.so.1) not found"}
    r = one(judge(record, references=REFS), "bench.gpu_free", "gpu0")
    assert r.status is Status.SKIP and "libnvidia-ml" in r.detail


def test_processes_come_from_nvml_through_the_query_layer(monkeypatch) -> None:
    """The real compute_processes() on the replayed H100: NVML's answer, or the reason it has none."""
    nvml_replay.install(monkeypatch, nvml_replay.load_recording())
    got = node_state.compute_processes()
    assert isinstance(got, dict) and len(got) == 1
    (procs,) = got.values()
    assert procs == [] or "unavailable" in procs  # the recording holds no processes
