"""The report renders any result list faithfully: JSON for scripts, JUnit for CI, a table for people."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET

import pytest

from dlverify.report import JSON_SCHEMA_ID, render
from dlverify.results import EXIT_FAIL, EXIT_OK, CheckResult, Status, exit_code, summarize

RESULTS = [
    CheckResult("host.os", "host", "OS", Status.PASS, "Ubuntu 22.04", "Ubuntu 22.04"),
    CheckResult(
        "gpu.ecc.volatile_uncorrected",
        "gpu0",
        "ECC uncorrected",
        Status.FAIL,
        "3",
        "0",
        "3 volatile uncorrectable ECC errors since the driver loaded",
    ),
    CheckResult("gpu.nvlink", "gpu0", "NVLink", Status.SKIP, detail="NVLink not supported on this card"),
    CheckResult("gpu.temperature", "gpu0", "temperature", Status.WARN, "82 C", "< 80 C", "running hot"),
]


def test_a_non_pass_result_must_say_why() -> None:
    with pytest.raises(ValueError, match="needs a detail"):
        CheckResult("x", "host", "x", Status.SKIP)


def test_markup_like_text_is_shown_verbatim() -> None:
    r = CheckResult(
        "gpu.x", "gpu0", "reasons", Status.FAIL, "[hw_slowdown]", "[]", "reasons [hw_slowdown] active"
    )
    out = render([r], "table", command="check", title="t", color=False)
    assert "[hw_slowdown]" in out


def test_exit_code_follows_failures_only() -> None:
    assert exit_code(RESULTS) == EXIT_FAIL
    assert exit_code([r for r in RESULTS if r.status is not Status.FAIL]) == EXIT_OK
    assert summarize(RESULTS) == {"pass": 1, "warn": 1, "fail": 1, "skip": 1}


def test_json_document_is_versioned_and_complete() -> None:
    doc = json.loads(render(RESULTS, "json", command="check", title="t", meta={"spec": "x.yaml"}))
    assert doc["schema"] == JSON_SCHEMA_ID
    assert doc["exit_code"] == EXIT_FAIL
    assert doc["summary"]["fail"] == 1
    assert doc["meta"] == {"spec": "x.yaml"}
    assert [r["id"] for r in doc["results"]] == [r.id for r in RESULTS]
    assert doc["results"][1]["status"] == "fail"
    assert doc["results"][2]["detail"] == "NVLink not supported on this card"


def test_junit_has_a_suite_per_group_with_failures_and_skips() -> None:
    root = ET.fromstring(render(RESULTS, "junit", command="check", title="t").split("?>", 1)[1])
    suites = {s.get("name"): s for s in root.iter("testsuite")}
    assert set(suites) == {"host", "gpu0"}
    assert suites["gpu0"].get("failures") == "1" and suites["gpu0"].get("skipped") == "1"
    failure = root.find(".//testcase[@name='gpu.ecc.volatile_uncorrected']/failure")
    assert failure is not None and "3 volatile" in failure.get("message", "")


def test_table_shows_every_check_and_a_summary() -> None:
    out = render(RESULTS, "table", command="check", title="dlverify check", color=False)
    for word in ("PASS", "FAIL", "SKIP", "WARN", "NVLink not supported on this card", "gpu0", "host"):
        assert word in out
    assert "FAILED: 1 passed, 1 warnings, 1 failed, 1 skipped" in out


def test_unknown_format_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown format"):
        render(RESULTS, "xml", command="check", title="t")


def test_table_folds_long_paths_instead_of_cutting_them() -> None:
    from dlverify.report import render_table
    from dlverify.results import CheckResult, Status

    path = "/usr/local/cuda-12.1/targets/x86_64-linux/lib/stubs/libcuda.so.1-and-a-long-tail"
    r = [CheckResult("software.cuda", "software", "CUDA", Status.FAIL, path, "12.1", "see " + path)]
    text = render_table(r, title="t", width=80, color=False)
    assert "…" not in text
    assert "".join(line.strip("│ ") for line in text.splitlines()).count("long-tail") == 2


def test_table_width_follows_the_terminal(monkeypatch) -> None:
    import os
    import sys

    from dlverify import report

    monkeypatch.setattr(sys.stdout, "isatty", lambda: True, raising=False)
    monkeypatch.setattr(report.shutil, "get_terminal_size", lambda fallback: os.terminal_size((200, 50)))
    assert report.table_width() == 200
    monkeypatch.setattr(report.shutil, "get_terminal_size", lambda fallback: os.terminal_size((40, 50)))
    assert report.table_width() == 80
    monkeypatch.setattr(sys.stdout, "isatty", lambda: False, raising=False)
    assert report.table_width() == report.DEFAULT_WIDTH
