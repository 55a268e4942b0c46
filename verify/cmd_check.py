"""`dlverify check SPEC` and `dlverify snapshot`: probe (or load a recorded snapshot), judge, report.

Live and offline share everything after the snapshot: the live snapshot goes through the same JSON round
trip a recorded one did, so `check --snapshot FILE` judges exactly what a live run would have.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import tempfile
import time
from typing import Any

from dlverify import snapshot as snapshots
from dlverify.checks import AREAS, run_checks
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


def _load_spec(path: str) -> Any:
    """The spec, or None after printing every error on stderr (the caller exits 2)."""
    try:
        from dlverify.hwspec.loader import SpecError, load_spec
    except ImportError as exc:  # the loader ships with the spec work; say so instead of a traceback
        print(f"dlverify: cannot load specs: the spec loader is not installed ({exc})", file=sys.stderr)
        return None
    try:
        return load_spec(path)
    except SpecError as exc:
        errors = getattr(exc, "errors", None) or [exc]
        for err in errors:
            line = err.one_line() if hasattr(err, "one_line") else str(err)
            print(f"dlverify: {line}", file=sys.stderr)
        return None
    except Exception as exc:  # a loader bug must still not become a traceback
        print(f"dlverify: {path}: cannot load spec: {type(exc).__name__}: {exc}", file=sys.stderr)
        return None


def _write(text: str, output: str | None) -> bool:
    """stdout, or FILE written atomically: a temp file in FILE's directory, fsynced, renamed over FILE.

    A reader (node_exporter's textfile collector, a script) sees the old file or the new one, never half of
    one; on any error the temp file is removed and FILE is left as it was.
    """
    if not output:
        sys.stdout.write(text)
        return True
    directory = os.path.dirname(os.path.abspath(output))
    tmp = None
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{os.path.basename(output)}.", suffix=".tmp", dir=directory)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, output)
        tmp = None
    except OSError as exc:
        print(f"dlverify: {output}: cannot write: {exc.strerror or exc}", file=sys.stderr)
        return False
    finally:
        if tmp is not None:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
    return True


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
    spec = _load_spec(args.spec)
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
    if not _write(text, args.output):
        return EXIT_USAGE
    return exit_code(results)


def run_snapshot(args: argparse.Namespace) -> int:
    spec = None
    if args.spec:
        spec = _load_spec(args.spec)
        if spec is None:
            return EXIT_USAGE
    snap = snapshots.take(spec, only=args.only, env=not args.no_env)
    return EXIT_OK if _write(snapshots.dumps(snap), args.output) else EXIT_USAGE
