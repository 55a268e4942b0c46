"""molecule/fleet, prepare step: the documents each test host's STAND-IN `dlverify` hands back, made on the
controller from the real recordings by tests/fleet_synth.py (nothing here is a measurement).

    python molecule/fleet/fleet_docs.py OUT HEALTHY FAULTY

Both hosts are the same type: the recorded H200 as an 8-GPU board (16 GPUs of one model in the fleet, over
fleet.min_peers), with the type's spec. OUT/<host>/ gets snapshot.json, check.json and bench.json and, per
subcommand, <subcommand>.rc, the exit code the real dlverify gives for that document.

- HEALTHY: the type's snapshot and check report, its bench record with the per-host ±0.8% spread;
- FAULTY: three faults (fleet_synth's injectors), the check and bench reports judged again by the real code:
  gpu5 slow (0.78x, thermal telemetry), the driver drifted to 580.126.09, an XID 79 in the kernel log.

The scenario's verify.yml holds the findings `dlverify fleet report` must name for exactly these faults.
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "tests"))

import fleet_synth as fs  # noqa: E402 - tests/ is not a package
import pytest  # noqa: E402

CARD, GPUS, SLOW_GPU = "h200", 8, 5


def host_docs(t: fs.HostType, name: str, *, faulty: bool) -> dict[str, dict[str, Any]]:
    """snapshot, check and bench documents of one host of type ``t``."""
    snap = t.snapshot
    bench = fs.jitter(t.bench, name)
    if faulty:
        snap = fs.with_xid(fs.drifted_driver(snap))
        bench = fs.rejudge(fs.slow_gpu(bench, gpu=SLOW_GPU))
    return {"snapshot": snap, "check": fs.check_doc(snap, t, name), "bench": bench}


def write_host(out: Path, name: str, docs: dict[str, dict[str, Any]]) -> None:
    d = out / name
    d.mkdir(parents=True, exist_ok=True)
    for cmd, doc in docs.items():
        (d / f"{cmd}.json").write_text(json.dumps(doc, indent=1))
        (d / f"{cmd}.rc").write_text(f"{doc.get('exit_code', 0) if cmd != 'snapshot' else 0}\n")


def main(argv: list[str]) -> int:
    if len(argv) != 3:
        print(__doc__, file=sys.stderr)
        return 2
    out, healthy, faulty = Path(argv[0]), argv[1], argv[2]
    with pytest.MonkeyPatch.context() as mp, tempfile.TemporaryDirectory() as tmp:
        t = fs.host_type(mp, Path(tmp), CARD, GPUS)
    write_host(out, healthy, host_docs(t, healthy, faulty=False))
    write_host(out, faulty, host_docs(t, faulty, faulty=True))
    for name in (healthy, faulty):
        rcs = {c: (out / name / f"{c}.rc").read_text().strip() for c in ("snapshot", "check", "bench")}
        print(f"{name}: exit codes {rcs}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
