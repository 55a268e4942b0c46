"""The monitoring role's static content: the Grafana dashboards load and every query names a metric that
exists (dcgm-exporter's counters file or dlverify's own metrics), so do the alert rules; the datasource uid
agrees."""

from __future__ import annotations

import csv
import json
import re
from pathlib import Path

import pytest

from dlverify.metrics import render_prometheus
from dlverify.results import CheckResult, Status

ROLE = Path(__file__).resolve().parents[1] / "roles" / "monitoring"
DASHBOARDS = sorted((ROLE / "files" / "dashboards").glob("*.json"))
METRIC = re.compile(r"\b(DCGM_FI_[A-Z0-9_]+|dlverify_[a-z0-9_]+)\b")


def _dcgm_metrics() -> set[str]:
    rows = (ROLE / "files" / "dcgm-counters.csv").read_text().splitlines()
    return {r[0].strip() for r in csv.reader(rows) if r and r[0].strip() and not r[0].startswith("#")}


def _dlverify_metrics() -> set[str]:
    text = render_prometheus(
        [CheckResult("gpu.ecc", "gpu0", "ECC", Status.PASS)], command="check", meta={"elapsed_seconds": 1.0}
    )
    return {line.split()[2] for line in text.splitlines() if line.startswith("# TYPE ")}


def test_the_counters_file_turns_on_what_the_default_leaves_off() -> None:
    on = _dcgm_metrics()
    for name in (
        "DCGM_FI_DEV_ECC_DBE_VOL_TOTAL",
        "DCGM_FI_DEV_RETIRED_DBE",
        "DCGM_FI_DEV_ROW_REMAP_FAILURE",
        "DCGM_FI_DEV_XID_ERRORS",
        "DCGM_FI_DEV_NVLINK_CRC_FLIT_ERROR_COUNT_TOTAL",
        "DCGM_FI_DEV_CLOCKS_EVENT_REASONS",
    ):
        assert name in on


def test_there_are_two_dashboards() -> None:
    assert [p.name for p in DASHBOARDS] == ["dlverify-checks.json", "dlverify-gpus.json"]


@pytest.mark.parametrize("path", DASHBOARDS, ids=lambda p: p.name)
def test_every_panel_queries_metrics_that_exist(path: Path) -> None:
    dash = json.loads(path.read_text())
    known = _dcgm_metrics() | _dlverify_metrics()
    datasource = (ROLE / "templates" / "grafana-datasource.yml.j2").read_text()
    uid = re.search(r"uid: (\S+)", datasource).group(1)
    assert dash["uid"] and dash["title"] and dash["panels"]
    for panel in dash["panels"]:
        assert panel["datasource"]["uid"] == uid, panel["title"]
        assert panel["targets"], panel["title"]
        for target in panel["targets"]:
            names = METRIC.findall(target["expr"])
            assert names, f"{path.name}: {panel['title']}: no metric in {target['expr']!r}"
            missing = set(names) - known
            assert not missing, f"{path.name}: {panel['title']}: unknown metric(s) {sorted(missing)}"


def test_the_alert_rules_name_metrics_that_exist() -> None:
    rules = (ROLE / "templates" / "dlverify.rules.yml.j2").read_text()
    names = set(METRIC.findall(rules))
    assert {"dlverify_check_status", "DCGM_FI_DEV_XID_ERRORS", "DCGM_FI_DEV_ECC_DBE_VOL_TOTAL"} <= names
    assert not names - (_dcgm_metrics() | _dlverify_metrics())
