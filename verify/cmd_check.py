"""`dlverify check SPEC` and `dlverify snapshot`: probe (or load a recorded snapshot), judge, report.

Live and offline share everything after the snapshot: the live snapshot goes through the same JSON round
trip a recorded one did, so `check --snapshot FILE` judges exactly what a live run would have.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from typing import Any

from dlverify import snapshot as snapshots
from dlverify.checks import AREAS, run_checks
from dlverify.output import load_spec_or_report, write_output
from dlverify.report import FORMATS, render
from dlverify.results import EXIT_OK, EXIT_USAGE, exit_code


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "check",
        help="verify this machine (or a recorded snapshot) against a spec",
        description="Probe host, GPUs (NVML) and software, judge them against SPEC. "
        "Exit 0: no failed check; 1: a check failed; 2: bad spec, snapshot or usage.",
    )
    p.add_argument("spec", metavar="SPEC", help="the hwspec.yaml to check against")
    p.add_argument(
        "--format",
        choices=FORMATS,
        default="table",
        help="output format (default: table; prometheus: node_exporter textfile format)",
    )
    p.add_argument(
        "-o",
        "--output",
        metavar="FILE",
        help="write the report to FILE instead of stdout (atomically: a temp file renamed over FILE)",
    )
    p.add_argument("--snapshot", metavar="FILE", help="judge a recorded snapshot instead of this machine")
    p.add_argument(
        "--only",
        metavar="AREAS",
        type=_areas,
        default=AREAS,
        help="comma-separated subset of host,gpu,software (default: all)",
    )
    p.add_argument(
        "--no-env", action="store_true", help="do not run the Python env's interpreter (torch probe)"
    )
    p.set_defaults(func=run_check)

    s = sub.add_parser(
        "snapshot",
        help="record everything the probes see as one JSON document",
        description="Probe this machine and write a versioned JSON snapshot (schema dlverify.snapshot/1), "
        "for `dlverify check SPEC --snapshot FILE` and `dlverify spec init --from-snapshot FILE`.",
    )
    s.add_argument("-o", "--output", metavar="FILE", help="write to FILE instead of stdout")
    s.add_argument(
        "--spec",
        metavar="SPEC",
        help="a spec naming the Python env and tools to probe (without it the system python3 is probed)",
    )
    s.add_argument(
        "--only",
        metavar="AREAS",
        type=_areas,
        default=AREAS,
        help="comma-separated subset of host,gpu,software (default: all)",
    )
    s.add_argument("--no-env", action="store_true", help="do not run the Python env's interpreter")
    s.set_defaults(func=run_snapshot)


def _areas(text: str) -> tuple[str, ...]:
    got = tuple(dict.fromkeys(a.strip() for a in text.split(",") if a.strip()))
    bad = [a for a in got if a not in AREAS]
    if bad or not got:
        raise argparse.ArgumentTypeError(
            f"unknown area {', '.join(bad) or '(none)'}; choose from {','.join(AREAS)}"
        )
    return got


def _gpu_meta(snap: dict[str, Any]) -> dict[str, Any]:
    """GPU index -> UUID and the driver's versions from the snapshot, for the prometheus labels."""
    nvml = snap.get("nvml")
    if not isinstance(nvml, dict):
        return {}
    gpus = {
        str(g["index"]): g["uuid"]
        for g in nvml.get("gpus") or []
        if isinstance(g, dict) and isinstance(g.get("index"), int) and isinstance(g.get("uuid"), str)
    }
    out: dict[str, Any] = {"gpus": gpus} if gpus else {}
    for key in ("driver_version", "cuda_driver_version"):
        if isinstance(nvml.get(key), str):
            out[key] = nvml[key]
    return out


def run_check(args: argparse.Namespace) -> int:
    spec = load_spec_or_report(args.spec)
    if spec is None:
        return EXIT_USAGE
    start = time.perf_counter()
    if args.snapshot:
        try:
            snap = snapshots.mismatched_env(snapshots.load(args.snapshot), spec)
        except snapshots.SnapshotError as exc:
            print(f"dlverify: {exc}", file=sys.stderr)
            return EXIT_USAGE
        source = args.snapshot
    else:
        snap = json.loads(snapshots.dumps(snapshots.take(spec, only=args.only, env=not args.no_env)))
        source = "live"
    results = run_checks(spec, snap, args.only)
    elapsed = time.perf_counter() - start
    meta = {
        "spec": args.spec,
        "snapshot": source,
        "snapshot_schema": snap.get("schema"),
        "snapshot_host": snap.get("hostname"),
        "snapshot_taken_at": snap.get("taken_at"),
        "areas": list(args.only),
        "probe_seconds": snap.get("probe_seconds"),
        "elapsed_seconds": round(elapsed, 3),
    }
    if args.format == "prometheus":
        meta.update(_gpu_meta(snap))
    where = snap.get("hostname") or "?"
    title = f"dlverify check {args.spec} — {where}" + ("" if source == "live" else f" (snapshot {source})")
    text = render(
        results,
        args.format,
        command=f"check {args.spec}",
        title=title,
        meta=meta,
        color=False if args.output else None,
    )
    if not write_output(text, args.output):
        return EXIT_USAGE
    return exit_code(results)


def run_snapshot(args: argparse.Namespace) -> int:
    spec = None
    if args.spec:
        spec = load_spec_or_report(args.spec)
        if spec is None:
            return EXIT_USAGE
    snap = snapshots.take(spec, only=args.only, env=not args.no_env)
    return EXIT_OK if write_output(snapshots.dumps(snap), args.output) else EXIT_USAGE
