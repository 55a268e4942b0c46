"""`dlverify bench`: placeholder wired into the CLI; its owner replaces this module."""

from __future__ import annotations

import argparse

from dlverify.results import EXIT_USAGE


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("bench", help="(not yet implemented)")
    p.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    print("dlverify bench: not implemented yet")
    return EXIT_USAGE
