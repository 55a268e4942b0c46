"""Synthetic fleets for `dlverify fleet report`, derived from the real recordings in tests/fixtures.

Nothing here is a new measurement. Each host type is made by the REAL probe and judge code:

- snapshot: the recorded card's NVML replay (tests/nvml_replay.py) with its GPU repeated ``gpus`` times
  (index, UUID and PCI bus id made distinct: an 8-GPU board of that card), the recorded software, and the
  fake host tree of tests/test_check_host.py (with an empty kernel log: no XID);
- check.json: ``run_checks`` against the spec ``spec init --from-snapshot`` writes for that snapshot (a
  spec the machine passes), rendered by ``dlverify.report.to_json_doc`` exactly as `check --format json`;
- bench.json: the real H200 `dlverify bench --format json` record
  (benchmarks/results/2026-11-28-h200-run1/bench_warm.json), its one worker repeated per GPU with a small
  deterministic spread (±0.8%: no two real GPUs time the same). For the H100, whose dlverify bench run
  was never recorded, the throughput is scaled by the H100/H200 ratio of the packaged references and
  the card name and power limit are the recorded H100's: LABELLED DERIVED, not a measurement.

Faults are injected into copies (a slow GPU with thermal telemetry, a drifted driver, an XID 79) and the
check.json of a faulted host is judged again by the real checks, so it fails where a real one would.
"""

from __future__ import annotations

import copy
import json
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import nvml_replay
import replay_host
import yaml
from test_check_host import _runner, make_host

REPO = Path(__file__).resolve().parents[1]
H200_BENCH = REPO / "benchmarks/results/2026-11-28-h200-run1/bench_warm.json"
REFERENCES = REPO / "benchmarks/references"
SYNTH_NCCL = "2.27.3"  # NOT recorded (the recordings have no NCCL): set so multi-GPU specs judge it


@dataclass
class HostType:
    """One kind of host: its snapshot, the spec it passes (as text) and its bench record."""

    card: str
    gpus: int
    snapshot: dict[str, Any]
    spec_text: str
    bench: dict[str, Any]
    spec_name: str = ""


@dataclass
class Host:
    name: str
    type: HostType
    snapshot: dict[str, Any] | None = None  # None: the type's, untouched
    bench: dict[str, Any] | None = None
    unreachable: str | None = None
    files: dict[str, str] = field(default_factory=dict)  # extra/override files (bad input)


def _multi_gpu_recording(card: nvml_replay.Card, gpus: int) -> dict[str, Any]:
    rec = nvml_replay.load_recording(card)
    one = rec["gpus"][0]
    rec["gpus"] = []
    for i in range(gpus):
        g = copy.deepcopy(one)
        g["index"] = i
        g["uuid"] = f"GPU-{card.id[:4]}{i:04d}-0000-0000-0000-000000000000"
        if isinstance(g.get("pci"), dict) and "busId" in g["pci"]:
            g["pci"]["busId"] = f"00000000:{0x18 + 0x10 * i:02X}:00.0"
        rec["gpus"].append(g)
    return rec


def host_type(monkeypatch: Any, tmp_path: Path, card_id: str, gpus: int) -> HostType:
    from dlverify import snapshot as snapshots
    from dlverify.probes.host import probe_host
    from dlverify.spec_init import spec_from_snapshot

    card = nvml_replay.CARDS[card_id]
    env = replay_host.env_record_for(card)
    env.update(device_count=gpus, device_names=[card.nvml_name()] * gpus, nccl=SYNTH_NCCL)
    work = tmp_path / f"type-{card_id}-{gpus}"
    work.mkdir()
    snap = replay_host.take_snapshot(
        monkeypatch, work, card, recording=_multi_gpu_recording(card, gpus), env_record=env
    )
    snap["host"] = snapshots.to_jsonable(probe_host(make_host(work / "host"), runner=_runner(journal="k\n")))
    snap = json.loads(snapshots.dumps(snap))
    spec_text = yaml.safe_dump(spec_from_snapshot(snap), sort_keys=False)
    return HostType(card_id, gpus, snap, spec_text, _bench_for(card, gpus), f"{card_id}-x{gpus}.yaml")


def _ref(name: str, mode: str) -> float:
    doc = json.loads((REFERENCES / name).read_text())
    return next(e["img_s"] for e in doc["entries"] if e["mode"] == mode and e["precision"] == "mixed")


def _bench_for(card: nvml_replay.Card, gpus: int) -> dict[str, Any]:
    doc = json.loads(H200_BENCH.read_text())
    rec = doc["meta"]["bench"]
    worker = rec["workers"][0]
    scale = {"train": 1.0, "infer": 1.0}
    if card.id != "h200":  # DERIVED: see the module docstring
        scale = {m: _ref("h100-sxm-80gb.json", m) / _ref("h200.json", m) for m in scale}
    workers = []
    for i in range(gpus):
        w = copy.deepcopy(worker)
        w.update(slot=i, index=i, label=f"gpu{i}", name=card.nvml_name(), uuid=f"GPU-{card.id[:4]}{i:04d}")
        w["result"]["name"] = card.nvml_name()
        w["result"]["device"] = f"cuda:{i}"
        for m, r in w["result"]["modes"].items():
            r["img_s"] *= scale[m]
        workers.append(w)
    rec["workers"] = workers
    return rejudge(doc)


def rejudge(doc: dict[str, Any]) -> dict[str, Any]:
    """The report's results made again by the real bench judge from its (changed) run record."""
    from dlverify.benchmarks.judge import judge, load_references
    from dlverify.hwspec.model import ChecksSpec
    from dlverify.results import exit_code, summarize

    results = judge(
        doc["meta"]["bench"],
        references=load_references(),
        bench_spec=None,
        allowed_reasons=ChecksSpec().allowed_clock_event_reasons,
    )
    doc["results"] = [r.to_dict() for r in results]
    doc["summary"], doc["exit_code"] = summarize(results), exit_code(results)
    return doc


def jitter(bench: dict[str, Any], host: str) -> dict[str, Any]:
    """A per-host copy with every GPU's throughput moved by a deterministic ±0.8%."""
    doc = copy.deepcopy(bench)
    doc["host"] = host
    for w in doc["meta"]["bench"]["workers"]:
        for m, r in w["result"]["modes"].items():
            h = zlib.crc32(f"{host}/{w['label']}/{m}".encode()) / 0xFFFFFFFF
            r["img_s"] *= 1 + 0.016 * (h - 0.5)
    return doc


# --- faults ------------------------------------------------------------------------------------------------
def slow_gpu(bench: dict[str, Any], gpu: int, factor: float = 0.78) -> dict[str, Any]:
    """One GPU slower by ``factor`` with the telemetry of a thermally throttled card."""
    doc = copy.deepcopy(bench)
    w = doc["meta"]["bench"]["workers"][gpu]
    for r in w["result"]["modes"].values():
        r["img_s"] *= factor
    for t in w["telemetry"].values():
        t["sm_clock_mhz"]["median"] = round(t["sm_clock_mhz"]["median"] * factor)
        t["temperature_c"]["max"] = 91.0
        t["reasons"] = {**t.get("reasons", {}), "hw_thermal_slowdown": 0.62}
    return doc


def drifted_driver(snap: dict[str, Any], version: str = "580.126.09") -> dict[str, Any]:
    s = copy.deepcopy(snap)
    s["nvml"]["driver_version"] = version
    return s


def with_xid(snap: dict[str, Any], xid: int = 79) -> dict[str, Any]:
    s = copy.deepcopy(snap)
    pci = s["nvml"]["gpus"][0].get("pci_bus_id") or "0000:18:00.0"
    s["host"]["xid"] = {
        "source": "journalctl -k -b",
        "events": [{"pci": pci, "xid": xid, "text": "pid=1234, GPU has fallen off the bus."}],
    }
    return s


# --- writing a fleet folder --------------------------------------------------------------------------------
def check_doc(snap: dict[str, Any], t: HostType, host: str) -> dict[str, Any]:
    from dlverify.checks import run_checks
    from dlverify.hwspec.loader import load_spec_text
    from dlverify.report import to_json_doc

    results = run_checks(load_spec_text(t.spec_text, t.spec_name), snap)
    doc = to_json_doc(results, command=f"check {t.spec_name}", meta={"spec": t.spec_name, "snapshot": "live"})
    doc["host"] = host
    return doc


def write_fleet(root: Path, hosts: list[Host]) -> Path:
    """DIR/<host>/{snapshot.json, check.json, bench.json} or DIR/<host>/unreachable; the JSON text of an
    untouched host type is made once and written as is (fast enough for 1,000 hosts)."""
    root.mkdir(parents=True, exist_ok=True)
    texts: dict[int, tuple[str, str]] = {}
    for h in hosts:
        d = root / h.name
        d.mkdir()
        if h.unreachable is not None:
            (d / "unreachable").write_text(h.unreachable + "\n")
            continue
        if h.snapshot is None:
            key = id(h.type)
            if key not in texts:
                texts[key] = (
                    json.dumps(h.type.snapshot, indent=1),
                    json.dumps(check_doc(h.type.snapshot, h.type, "x"), indent=1),
                )
            snap_text, check_text = texts[key]
        else:
            snap_text = json.dumps(h.snapshot, indent=1)
            check_text = json.dumps(check_doc(h.snapshot, h.type, h.name), indent=1)
        (d / "snapshot.json").write_text(snap_text)
        (d / "check.json").write_text(check_text)
        bench = h.bench if h.bench is not None else jitter(h.type.bench, h.name)
        (d / "bench.json").write_text(json.dumps(bench))
        for name, text in h.files.items():
            (d / name).write_text(text)
    return root
