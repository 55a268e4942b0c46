"""`dlverify fleet report DIR`: one report over a folder of per-host results (see dlverify.fleet)."""

from __future__ import annotations

import argparse
import dataclasses
import sys
from typing import TYPE_CHECKING

from dlverify.output import load_spec_or_report, write_output
from dlverify.results import EXIT_USAGE

if TYPE_CHECKING:
    from dlverify.fleet.analyze import Thresholds


def _positive(text: str) -> float:
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not 0 < v < 1e6:
        raise argparse.ArgumentTypeError(f"must be > 0, got {text}")
    return v


def _share(text: str) -> float:
    v = _positive(text)
    if v >= 1:
        raise argparse.ArgumentTypeError(f"a share below 1 (0.05 = 5%), got {text}")
    return v


def register(sub: argparse._SubParsersAction) -> None:
    from dlverify.fleet.render import FORMATS

    p = sub.add_parser(
        "fleet",
        help="judge a whole fleet from its per-host results",
        description="Fleet-wide reports over the per-host results the fleet playbooks fetch.",
    )
    fs = p.add_subparsers(dest="fleet_command", metavar="SUBCOMMAND")
    fs.required = True
    r = fs.add_parser(
        "report",
        help="failing hosts, drift, throughput outliers, XID/ECC, unreachable hosts",
        description="Read DIR/<host>/{snapshot.json,check.json,bench.json,unreachable} (or the newest "
        "dated run under DIR) and name what an operator must act on. Exit 0: nothing failed; 1: a host "
        "failed, drifted, is slow, unreachable or without a result; 2: DIR unusable or bad usage.",
    )
    r.add_argument("dir", metavar="DIR", help="the results folder (playbooks/fleet-check.yml writes one)")
    r.add_argument("--format", choices=FORMATS, default="table", help="output format (default: table)")
    r.add_argument("-o", "--output", metavar="FILE", help="write the report to FILE instead of stdout")
    r.add_argument(
        "--spec",
        metavar="SPEC",
        help="hwspec.yaml whose fleet: section (and checks.allowed_clock_event_reasons) set the outlier "
        "rules; the options below override it",
    )
    r.add_argument(
        "--mad-threshold",
        type=_positive,
        metavar="Z",
        help="robust z-score (median, MAD) beyond which a GPU is slow (fleet.mad_threshold, default 3.5)",
    )
    r.add_argument(
        "--min-gap",
        type=_share,
        metavar="SHARE",
        help="and at least this share below its model's median (fleet.min_gap, default 0.05)",
    )
    r.add_argument(
        "--min-peers",
        type=_peers,
        metavar="N",
        help="judge only populations of at least N GPUs (or hosts) (fleet.min_peers, default 3)",
    )
    r.set_defaults(func=run_report)


def _peers(text: str) -> int:
    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if not 2 <= v <= 100000:
        raise argparse.ArgumentTypeError(f"must be from 2 to 100000, got {text}")
    return v


def thresholds(args: argparse.Namespace) -> Thresholds | None:
    """The spec's rules (or the defaults), each overridden by its option; None: the spec is unusable (the
    errors, each ``file:line:column: key: message``, are on stderr)."""
    from dlverify.fleet.analyze import Thresholds

    th = Thresholds()
    if args.spec:
        spec = load_spec_or_report(args.spec)
        if spec is None:
            return None
        th = Thresholds.from_spec(spec)
    options = (
        ("mad", "--mad-threshold", args.mad_threshold),
        ("min_gap", "--min-gap", args.min_gap),
        ("min_peers", "--min-peers", args.min_peers),
    )
    given = [(name, flag, value) for name, flag, value in options if value is not None]
    if given:
        flags = ", ".join(flag for _, flag, _ in given)
        values = {name: value for name, _, value in given}
        th = dataclasses.replace(th, **values, source=f"{flags}; otherwise {th.source}")
    return th


def run_report(args: argparse.Namespace) -> int:
    from dlverify.fleet.analyze import analyze, exit_code
    from dlverify.fleet.reader import FleetDirError, read_fleet
    from dlverify.fleet.render import render_json, render_junit, render_table

    th = thresholds(args)
    if th is None:
        return EXIT_USAGE
    try:
        fleet = read_fleet(args.dir)
    except FleetDirError as exc:
        print(f"dlverify: {exc}", file=sys.stderr)
        return EXIT_USAGE
    report = analyze(fleet, th)
    for problem in report.problems:
        print(f"dlverify: {problem}", file=sys.stderr)
    if args.format == "html":
        from dlverify.fleet.html import render_html

        text = render_html(report)
    elif args.format == "json":
        text = render_json(report)
    elif args.format == "junit":
        text = render_junit(report)
    else:
        text = render_table(report, color=False if args.output else None)
    if not write_output(text, args.output):
        return EXIT_USAGE
    return exit_code(report)
