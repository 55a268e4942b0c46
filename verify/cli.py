"""`dlverify` command line: only wiring. Each command lives in its own module with
``register(subparsers)``, which adds its parser and sets ``func(args) -> int`` (the exit code).
"""

from __future__ import annotations

import argparse
import contextlib
import signal
import sys
from collections.abc import Sequence

from dlverify import __version__
from dlverify.results import EXIT_USAGE


class _Parser(argparse.ArgumentParser):
    """argparse exits 2 on usage errors already; keep its message but never a traceback."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.print_usage(sys.stderr)
        print(f"dlverify: error: {message}", file=sys.stderr)
        raise SystemExit(EXIT_USAGE)


def build_parser() -> argparse.ArgumentParser:
    from dlverify import cmd_bench, cmd_check, cmd_fleet, cmd_spec

    parser = _Parser(
        prog="dlverify",
        description="Check a deep-learning GPU server against its spec, and benchmark it.",
    )
    parser.add_argument("--version", action="version", version=f"dlverify {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True
    cmd_spec.register(sub)
    cmd_check.register(sub)
    cmd_bench.register(sub)
    cmd_fleet.register(sub)
    return parser


class Terminated(KeyboardInterrupt):
    """SIGTERM or SIGHUP, raised where the main thread is, like Ctrl-C's KeyboardInterrupt.

    The default action of both signals ends the process on the spot, skipping every ``finally``: bench
    workers (in process groups of their own) and probe subprocesses would be left running. Raised as an
    exception, the same clean-up runs as for Ctrl-C.
    """

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


def _raise_terminated(signum: int, _frame: object) -> None:
    raise Terminated(signum)


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    for sig in (signal.SIGTERM, signal.SIGHUP):
        with contextlib.suppress(ValueError):  # ValueError: not the main thread (embedded use)
            signal.signal(sig, _raise_terminated)
    try:
        return int(args.func(args))
    except Terminated as exc:
        print(f"dlverify: interrupted by {signal.Signals(exc.signum).name}", file=sys.stderr)
        return 128 + exc.signum
    except KeyboardInterrupt:
        print("dlverify: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
