"""`dlverify spec`: lint a spec's pins, print its JSON Schema, or write a spec from a snapshot.

Exit codes: 0 clean (warnings allowed), 1 incompatible pins, 2 unreadable/invalid spec or bad usage.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from dlverify import __version__
from dlverify.results import EXIT_USAGE, exit_code

SPEC_ERRORS_SCHEMA = "dlverify.spec-errors/1"


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "spec",
        help="lint a spec, print its JSON Schema, or write one from a snapshot",
        description="Work with hwspec.yaml files.",
    )
    p.set_defaults(func=lambda args: _usage(p))
    specsub = p.add_subparsers(dest="spec_command", metavar="SUBCOMMAND", parser_class=type(p))

    lint = specsub.add_parser(
        "lint",
        help="check that the spec's pins fit together (no machine needed)",
        description="Judge a spec's driver/CUDA/cuDNN/framework/GPU pins against the "
        "bundled compatibility data. Exit 0 clean (warnings allowed), "
        "1 incompatible, 2 unreadable or invalid spec.",
    )
    lint.add_argument("spec", metavar="SPEC", help="path to the spec (hwspec.yaml)")
    lint.add_argument(
        "--format", choices=("table", "json", "junit"), default="table", help="output format (default: table)"
    )
    lint.add_argument("-o", "--output", metavar="FILE", help="write the report to FILE instead of stdout")
    lint.set_defaults(func=_lint)

    schema = specsub.add_parser("schema", help="print the spec's JSON Schema (draft 2020-12)")
    schema.set_defaults(func=_schema)

    init = specsub.add_parser(
        "init",
        help="write a spec from a `dlverify snapshot` of a known-good machine",
        description="Write a spec that a recorded machine satisfies. Review it: it "
        "pins what was seen, exactly.",
    )
    init.add_argument(
        "--from-snapshot", required=True, metavar="FILE", help="snapshot JSON (dlverify snapshot)"
    )
    init.add_argument("-o", "--output", metavar="OUT", help="write here instead of stdout")
    init.add_argument("--force", action="store_true", help="overwrite OUT if it exists")
    init.set_defaults(func=_init)


def _usage(parser: argparse.ArgumentParser) -> int:
    parser.print_help(sys.stderr)
    return EXIT_USAGE


def _print_spec_errors(err: object, fmt: str = "table") -> None:
    from dlverify.hwspec import SpecError
    from dlverify.output import report_spec_errors

    assert isinstance(err, SpecError)
    report_spec_errors(err)
    if fmt == "json":
        doc = {
            "schema": SPEC_ERRORS_SCHEMA,
            "tool": f"dlverify {__version__}",
            "exit_code": EXIT_USAGE,
            "errors": [e.to_dict() for e in err.errors],
        }
        sys.stdout.write(json.dumps(doc, indent=2) + "\n")


def _lint(args: argparse.Namespace) -> int:
    from dlverify.hwspec import SpecError, load_spec
    from dlverify.hwspec.lint import lint
    from dlverify.report import render

    try:
        spec = load_spec(args.spec)
    except SpecError as err:
        _print_spec_errors(err, args.format)
        return EXIT_USAGE
    from dlverify.output import write_output

    results = lint(spec)
    text = render(
        results,
        args.format,
        command=f"spec lint {args.spec}",
        title=f"dlverify spec lint {args.spec}",
        meta={"spec": args.spec},
        color=False if args.output else None,
    )
    if not write_output(text, args.output):
        return EXIT_USAGE
    return exit_code(results)


def _schema(args: argparse.Namespace) -> int:
    from dlverify.hwspec.schema import schema_text

    sys.stdout.write(schema_text())
    return 0


def _init(args: argparse.Namespace) -> int:
    from dlverify.hwspec import SpecError, load_spec_text, spec_to_yaml

    out = Path(args.output) if args.output else None
    if out is not None and out.exists() and not args.force:
        print(f"dlverify: {out} exists; use --force to overwrite it", file=sys.stderr)
        return EXIT_USAGE
    from dlverify import snapshot as snapshots

    try:  # the same reader as `check --snapshot`: what one refuses, the other refuses too
        snapshot = snapshots.load(args.from_snapshot)
    except snapshots.SnapshotError as exc:
        print(f"dlverify: {exc}", file=sys.stderr)
        return EXIT_USAGE
    try:
        from dlverify.spec_init import spec_from_snapshot
    except ImportError as exc:
        print(f"dlverify: spec init is not available in this build ({exc})", file=sys.stderr)
        return EXIT_USAGE
    try:
        spec_dict = spec_from_snapshot(snapshot)
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        print(f"dlverify: {args.from_snapshot}: not a usable snapshot: {exc!r}", file=sys.stderr)
        return EXIT_USAGE
    header = (
        f"# Written by `dlverify spec init --from-snapshot {args.from_snapshot}`.\n"
        "# It pins what that machine showed; review it before using it for other hosts.\n"
    )
    text = spec_to_yaml(spec_dict, header=header)
    try:  # never write a spec that `dlverify check` would refuse
        load_spec_text(text, str(out) if out else "<generated spec>")
    except SpecError as err:
        print("dlverify: the spec generated from the snapshot does not validate:", file=sys.stderr)
        _print_spec_errors(err)
        return EXIT_USAGE
    from dlverify.output import write_output

    if not write_output(text, str(out) if out is not None else None):
        return EXIT_USAGE
    if out is not None:
        print(f"wrote {out}", file=sys.stderr)
    return 0
