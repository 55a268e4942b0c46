"""The fleet report for people (rich table), machines (JSON, schema ``dlverify.fleet/1``) and CI (JUnit).
Fields are only ever added within a major version of the schema."""

from __future__ import annotations

import datetime as _dt
import io
import json
import xml.etree.ElementTree as ET
from collections import Counter
from typing import Any

from dlverify import __version__
from dlverify.fleet.analyze import SECTIONS, FleetReport, exit_code
from dlverify.results import Status

SCHEMA_ID = "dlverify.fleet/1"
FORMATS = ("table", "json", "junit", "html")
_STYLE = {Status.PASS: "green", Status.WARN: "yellow", Status.FAIL: "bold red", Status.SKIP: "dim"}


def summary(report: FleetReport) -> dict[str, int]:
    states = Counter(report.state.values())
    return {
        "hosts": len(report.state),
        **{s: states.get(s, 0) for s in ("ok", "failing", "unreachable", "no_result")},
        "findings": len(report.findings),
    }


def to_doc(report: FleetReport) -> dict[str, Any]:
    by_host = {f.name: f for f in report.hosts}
    return {
        "schema": SCHEMA_ID,
        "tool": f"dlverify {__version__}",
        "command": f"fleet report {report.root}",
        "generated_at": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "thresholds": {
            "mad": report.thresholds.mad,
            "min_gap": report.thresholds.min_gap,
            "min_peers": report.thresholds.min_peers,
            "source": report.thresholds.source,
        },
        "summary": summary(report),
        "exit_code": exit_code(report),
        "groups": [{"key": k, "hosts": v} for k, v in report.groups.items()],
        "hosts": [
            {
                "name": h,
                "state": s,
                "gpu_model": by_host[h].gpu_model,
                "gpu_count": by_host[h].gpu_count,
                "spec": by_host[h].spec,
                "versions": by_host[h].versions,
            }
            for h, s in report.state.items()
        ],
        "findings": [{"section": x.section, "host": x.host, **x.result.to_dict()} for x in report.findings],
        "throughput": [
            {
                "model": p.model,
                "mode": p.mode,
                "precision": p.config[0],
                "batch_size": p.config[1],
                "image_size": p.config[2],
                "gpus": len(p.runs),
                "median": round(p.median, 1),
                "mad": round(p.mad, 1),
                "cutoff": None if p.cutoff is None else round(p.cutoff, 1),
                "outliers": [{"host": r.host, "gpu": r.gpu, "img_s": round(r.img_s, 1)} for r in p.slow],
            }
            for p in report.populations
        ],
        "problems": report.problems,
    }


def render_json(report: FleetReport) -> str:
    return json.dumps(to_doc(report), indent=1) + "\n"


def render_junit(report: FleetReport) -> str:
    """One <testsuite> per section with a testcase per finding, and a `hosts` suite: one case per host."""
    suites = ET.Element("testsuites", name=f"dlverify fleet report {report.root}")
    hosts = ET.SubElement(
        suites,
        "testsuite",
        name="hosts",
        tests=str(len(report.state)),
        errors="0",
        failures=str(sum(s != "ok" for s in report.state.values())),
        skipped="0",
    )
    for h, s in report.state.items():
        case = ET.SubElement(hosts, "testcase", classname="dlverify.fleet.hosts", name=h)
        if s != "ok":
            why = [x.result for x in report.findings if x.host == h and x.result.status is Status.FAIL]
            ET.SubElement(case, "failure", message=s).text = "\n".join(f"{r.id}: {r.detail}" for r in why)
    for section in SECTIONS:
        items = [x for x in report.findings if x.section == section]
        if not items:
            continue
        suite = ET.SubElement(
            suites,
            "testsuite",
            name=section,
            tests=str(len(items)),
            errors="0",
            failures=str(sum(x.result.status is Status.FAIL for x in items)),
            skipped="0",
        )
        for x in items:
            r = x.result
            case = ET.SubElement(
                suite, "testcase", classname=f"dlverify.fleet.{section}", name=f"{x.host} {r.id}"
            )
            text = f"{r.name}: observed={r.observed!s} expected={r.expected!s} {r.detail}"
            if r.status is Status.FAIL:
                ET.SubElement(case, "failure", message=r.detail[:200]).text = text
            else:
                ET.SubElement(case, "system-out").text = f"WARNING: {text}"
    ET.indent(suites)
    return ET.tostring(suites, encoding="unicode", xml_declaration=True) + "\n"


def render_table(report: FleetReport, *, width: int | None = None, color: bool | None = None) -> str:
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    buf = io.StringIO()
    console = Console(
        file=buf, width=width or 140, force_terminal=color, no_color=color is False, highlight=False
    )
    groups = Table(title=f"dlverify fleet report {escape(report.root)}")
    for col in ("group (GPU model, spec)", "hosts", "ok", "not ok"):
        groups.add_column(col)
    for key, members in report.groups.items():
        ok = sum(report.state[h] == "ok" for h in members)
        groups.add_row(escape(key), str(len(members)), str(ok), str(len(members) - ok))
    console.print(groups)
    for section, title in SECTIONS.items():
        items = [x for x in report.findings if x.section == section]
        if not items:
            continue
        t = Table(title=f"{title} ({len({x.host for x in items})} hosts)", title_justify="left")
        for col in ("status", "host", "check", "observed", "expected", "detail"):
            t.add_column(col)
        for x in items:
            r = x.result
            t.add_row(
                f"[{_STYLE[r.status]}]{r.status.value.upper()}[/]",
                escape(x.host),
                escape(r.name),
                escape(r.observed or ""),
                escape(r.expected or ""),
                escape(r.detail),
            )
        console.print(t)
    s = summary(report)
    verdict = "FAILED" if exit_code(report) else "OK"
    console.print(
        f"{verdict}: {s['hosts']} hosts: {s['ok']} ok, {s['failing']} failing, "
        f"{s['unreachable']} unreachable, {s['no_result']} without a result"
    )
    th = report.thresholds
    console.print(
        f"outlier rules: {th.mad:g} scaled MADs and {th.min_gap:.0%} below the median, "
        f"at least {th.min_peers} peers ({escape(th.source)})"
    )
    return buf.getvalue()
