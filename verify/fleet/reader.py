"""Read a fleet results folder. Layout (what playbooks/fleet-check.yml writes)::

    DIR/<host>/snapshot.json   `dlverify snapshot`                     (schema dlverify.snapshot/1)
    DIR/<host>/check.json      `dlverify check SPEC --format json`     (schema dlverify.report/1)
    DIR/<host>/bench.json      `dlverify bench --format json`          (optional)
    DIR/<host>/status.json     the exit codes the playbook recorded   (optional)
    DIR/<host>/unreachable     marker: the host could not be reached (its text is the reason)

A bad file (truncated JSON, a foreign document, a FIFO) costs only that file: it becomes a problem naming
the file, and the rest is read. Only an unusable DIR itself (missing, empty, no host folders) is an error.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dlverify import snapshot as snapshots
from dlverify.hwspec.fileread import InputFileError, decode_text, read_bytes

REPORT_SCHEMA = "dlverify.report/1"
BENCH_RUN_SCHEMA = "dlverify.bench.run/1"
MAX_BYTES = 16 * 1024 * 1024
KNOWN = ("snapshot.json", "check.json", "bench.json", "status.json", "unreachable")
_DATED = re.compile(r"^\d{4}-\d{2}-\d{2}")
_STATUSES = ("pass", "warn", "fail", "skip")


class FleetDirError(ValueError):
    """DIR cannot be read as a fleet results folder (exit 2); the message names it."""


@dataclass
class HostData:
    name: str
    path: Path
    snapshot: dict[str, Any] | None = None
    check: dict[str, Any] | None = None
    bench: dict[str, Any] | None = None
    status: dict[str, Any] | None = None
    unreachable: str | None = None
    problems: list[str] = field(default_factory=list)  # each names its file


@dataclass
class FleetInput:
    root: Path
    hosts: list[Path]  # the host folders, read by dlverify.fleet.facts.load_hosts
    problems: list[str] = field(default_factory=list)  # entries of DIR that are no host folder


def _json(path: Path) -> Any:
    text = decode_text(read_bytes(path, MAX_BYTES, "JSON document"), str(path), "JSON document")
    try:
        return json.loads(text)
    except RecursionError:
        raise InputFileError(str(path), "nested too deeply") from None
    except ValueError as exc:
        raise InputFileError(str(path), f"not valid JSON (truncated?): {exc}") from None


def _report(path: Path, command: str) -> dict[str, Any]:
    doc = _json(path)
    what = f"a `dlverify {command} --format json` report"
    if not isinstance(doc, dict) or doc.get("schema") != REPORT_SCHEMA:
        schema = doc.get("schema") if isinstance(doc, dict) else type(doc).__name__
        raise InputFileError(str(path), f"not {what} (schema {schema!r}, want {REPORT_SCHEMA!r})")
    if not str(doc.get("command", "")).startswith(command):
        raise InputFileError(str(path), f"not {what} (command {doc.get('command')!r})")
    results = doc.get("results")
    if not isinstance(results, list) or not all(
        isinstance(r, dict) and isinstance(r.get("id"), str) and r.get("status") in _STATUSES for r in results
    ):
        raise InputFileError(str(path), f"{what} whose results are malformed (want id and status per result)")
    if command == "bench":
        rec = (doc.get("meta") or {}).get("bench") if isinstance(doc.get("meta"), dict) else None
        if not isinstance(rec, dict) or rec.get("schema") != BENCH_RUN_SCHEMA:
            raise InputFileError(str(path), f"{what} without its run record (meta.bench, {BENCH_RUN_SCHEMA})")
        if not isinstance(rec.get("workers"), list):
            raise InputFileError(str(path), "meta.bench.workers: expected a list")
    return doc


def _marker(path: Path) -> str:
    if path.is_dir():
        return "marked unreachable"
    try:
        text = decode_text(read_bytes(path, 64 * 1024, "marker"), str(path), "marker").strip()
    except InputFileError as exc:
        return f"marked unreachable ({exc.reason})"
    return " ".join(text.split())[:300] or "marked unreachable"


def read_host(path: Path) -> HostData:
    h = HostData(path.name, path)
    marker = path / "unreachable"
    if marker.exists() or marker.is_symlink():
        h.unreachable = _marker(marker)
    readers = {
        "snapshot.json": lambda p: snapshots.load(str(p)),
        "check.json": lambda p: _report(p, "check"),
        "bench.json": lambda p: _report(p, "bench"),
        "status.json": _json,
    }
    for name, read in readers.items():
        p = path / name
        if not (p.exists() or p.is_symlink()):
            continue
        try:
            doc = read(p)
        except (InputFileError, snapshots.SnapshotError) as exc:
            h.problems.append(str(exc))
            continue
        setattr(h, name.split(".")[0], doc if isinstance(doc, dict) else None)
    return h


def _newest_run(root: Path, dirs: list[os.DirEntry[str]]) -> Path | None:
    """DIR holding only dated run folders (the playbook's <dir>/<date>/<host>/): the newest of them."""
    if dirs and all(_DATED.match(d.name) for d in dirs):
        return root / max(d.name for d in dirs)
    return None


def read_fleet(root: str | os.PathLike[str]) -> FleetInput:
    base = Path(root)
    try:
        entries = sorted(os.scandir(base), key=lambda e: e.name)
    except FileNotFoundError:
        raise FleetDirError(f"{base}: no such folder") from None
    except NotADirectoryError:
        raise FleetDirError(f"{base}: not a folder (want DIR/<host>/check.json ...)") from None
    except OSError as exc:
        raise FleetDirError(f"{base}: cannot read: {exc.strerror or exc}") from None
    dirs = [e for e in entries if not e.name.startswith(".") and e.is_dir(follow_symlinks=False)]
    newest = _newest_run(base, dirs)
    if newest is not None and newest != base:
        return read_fleet(newest)
    problems = [
        f"{base / e.name}: not a host folder (a file at the top of DIR): ignored"
        for e in entries
        if not e.name.startswith(".") and not e.is_dir(follow_symlinks=False)
    ]
    if not dirs:
        extra = f"; found only: {', '.join(e.name for e in entries[:5])}" if entries else ""
        raise FleetDirError(
            f"{base}: no host folders (want DIR/<host>/check.json, snapshot.json, bench.json){extra}"
        )
    return FleetInput(base, [base / d.name for d in dirs], problems)
