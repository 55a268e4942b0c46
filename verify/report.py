"""Render a list of :class:`CheckResult` for people (rich table), machines (JSON), CI (JUnit XML) and
Prometheus (node_exporter textfile format, :mod:`dlverify.metrics`).

Knows nothing about GPUs: groups are shown in the order they first appear.
The JSON document is versioned (``schema``); fields are only ever added within a major version.
"""

from __future__ import annotations

import datetime as _dt
import io
import json
import shutil
import socket
import sys
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from typing import Any

from dlverify import __version__
from dlverify.results import CheckResult, Status, exit_code, summarize

JSON_SCHEMA_ID = "dlverify.report/1"
FORMATS = ("table", "json", "junit", "line", "prometheus")

_STYLE = {Status.PASS: "green", Status.WARN: "yellow", Status.FAIL: "bold red", Status.SKIP: "dim"}


def _groups(results: Sequence[CheckResult]) -> dict[str, list[CheckResult]]:
    groups: dict[str, list[CheckResult]] = {}
    for r in results:
        groups.setdefault(r.group, []).append(r)
    return groups


def to_json_doc(results: Sequence[CheckResult], *, command: str, meta: dict[str, Any] | None = None) -> dict:
    return {
        "schema": JSON_SCHEMA_ID,
        "tool": f"dlverify {__version__}",
        "command": command,
        "host": socket.gethostname(),
        "generated_at": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "meta": meta or {},
        "summary": summarize(results),
        "exit_code": exit_code(results),
        "results": [r.to_dict() for r in results],
    }


def render_json(results: Sequence[CheckResult], *, command: str, meta: dict[str, Any] | None = None) -> str:
    return json.dumps(to_json_doc(results, command=command, meta=meta), indent=2) + "\n"


def render_junit(results: Sequence[CheckResult], *, command: str) -> str:
    """One <testsuite> per group; fail -> <failure>, skip -> <skipped>, warn -> passes with system-out."""
    suites = ET.Element("testsuites", name=f"dlverify {command}")
    for group, items in _groups(results).items():
        counts = summarize(items)
        suite = ET.SubElement(
            suites,
            "testsuite",
            name=group,
            tests=str(len(items)),
            failures=str(counts["fail"]),
            skipped=str(counts["skip"]),
            errors="0",
        )
        for r in items:
            case = ET.SubElement(suite, "testcase", classname=f"dlverify.{group}", name=r.id)
            text = f"observed={r.observed!s} expected={r.expected!s} {r.detail}".strip()
            if r.status is Status.FAIL:
                ET.SubElement(case, "failure", message=r.detail).text = text
            elif r.status is Status.SKIP:
                ET.SubElement(case, "skipped", message=r.detail)
            elif r.status is Status.WARN:
                ET.SubElement(case, "system-out").text = f"WARNING: {text}"
    ET.indent(suites)
    return ET.tostring(suites, encoding="unicode", xml_declaration=True) + "\n"


DEFAULT_WIDTH = 120  # a file, a pipe, CI logs


def table_width() -> int:
    """The terminal's width when stdout is one (at least 80 columns), else DEFAULT_WIDTH."""
    if sys.stdout.isatty():
        return max(80, shutil.get_terminal_size((DEFAULT_WIDTH, 24)).columns)
    return DEFAULT_WIDTH


def render_table(
    results: Sequence[CheckResult], *, title: str, width: int | None = None, color: bool | None = None
) -> str:
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    buf = io.StringIO()
    console = Console(
        file=buf, width=width or table_width(), force_terminal=color, no_color=color is False, highlight=False
    )
    table = Table(title=title, show_lines=False, expand=False)
    table.add_column("status", no_wrap=True)
    # long paths and ids fold onto the next line instead of being cut with an ellipsis
    table.add_column("check", overflow="fold")
    table.add_column("observed", overflow="fold")
    table.add_column("expected", overflow="fold")
    table.add_column("detail", overflow="fold")
    for group, items in _groups(results).items():
        table.add_section()
        table.add_row(f"[bold]{group}[/bold]", "", "", "", "")
        for r in items:
            table.add_row(
                f"[{_STYLE[r.status]}]{r.status.value.upper()}[/]",
                escape(r.name),
                escape(r.observed or ""),
                escape(r.expected or ""),
                escape(r.detail),
            )
    console.print(table)
    c = summarize(results)
    verdict = "FAILED" if c["fail"] else "OK"
    console.print(
        f"{verdict}: {c['pass']} passed, {c['warn']} warnings, {c['fail']} failed, {c['skip']} skipped"
    )
    return buf.getvalue()


def render_line(results: Sequence[CheckResult]) -> str:
    """One line, for health-check programs (Slurm, NHC): OK with the counts, or the first failure and how
    many more there are. Newlines in a detail are folded: the line is always one."""
    c = summarize(results)
    failed = [r for r in results if r.status is Status.FAIL]
    if not failed:
        return f"OK: {c['pass']} passed, {c['warn']} warnings, {c['skip']} skipped\n"
    first = failed[0]
    where = f" ({first.group})" if first.group.startswith("gpu") and first.group != "gpu" else ""
    more = f" [+{len(failed) - 1} more: {', '.join(r.id for r in failed[1:4])}]" if len(failed) > 1 else ""
    text = " ".join(f"FAIL {first.id}{where}: {first.detail}{more}".split())
    return (text[:497] + "...\n") if len(text) > 500 else text + "\n"


def render(
    results: Sequence[CheckResult],
    fmt: str,
    *,
    command: str,
    title: str,
    meta: dict[str, Any] | None = None,
    color: bool | None = None,
) -> str:
    if fmt == "json":
        return render_json(results, command=command, meta=meta)
    if fmt == "junit":
        return render_junit(results, command=command)
    if fmt == "line":
        return render_line(results)
    if fmt == "table":
        return render_table(results, title=title, color=color)
    if fmt == "prometheus":
        from dlverify.metrics import render_prometheus

        return render_prometheus(results, command=command, meta=meta)
    raise ValueError(f"unknown format {fmt!r}; choose one of {', '.join(FORMATS)}")
