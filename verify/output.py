"""What every command shares at its edges: loading the spec or saying why, and writing its output.

One place so that `check`, `spec lint`, `spec init`, `bench` and `fleet report` say a bad spec the same way
(one `dlverify: FILE:LINE:COL KEY: problem` line per error on stderr, then the count) and write `-o FILE` the
same way (atomically: a reader such as node_exporter's textfile collector never sees half a file).
"""

from __future__ import annotations

import contextlib
import os
import sys
import tempfile
from typing import Any


def load_spec_or_report(path: str) -> Any:
    """The loaded spec, or None after printing every problem on stderr (the caller exits 2).

    Never raises: a loader bug is reported as one line naming the file, not a traceback.
    """
    from dlverify.hwspec.errors import SpecError
    from dlverify.hwspec.loader import load_spec

    try:
        return load_spec(path)
    except SpecError as exc:
        report_spec_errors(exc)
        return None
    except Exception as exc:
        print(f"dlverify: {path}: cannot load spec: {type(exc).__name__}: {exc}", file=sys.stderr)
        return None


def report_spec_errors(exc: Exception) -> None:
    """Each problem of a SpecError on its own `dlverify: FILE:LINE:COL KEY: problem` line, then the count."""
    errors = getattr(exc, "errors", None) or [exc]
    for err in errors:
        line = err.one_line() if hasattr(err, "one_line") else str(err)
        print(f"dlverify: {line}", file=sys.stderr)
    n = len(errors)
    print(f"dlverify: {n} problem{'s' if n != 1 else ''} in the spec", file=sys.stderr)


def write_output(text: str, output: str | None) -> bool:
    """stdout, or FILE written atomically: a temp file in FILE's directory, fsynced, renamed over FILE.

    A reader (node_exporter's textfile collector, a script) sees the old file or the new one, never half of
    one; on any error the temp file is removed, FILE is left as it was, and the reason is printed.
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
