"""The spec's `monitoring:` (check timer, alert thresholds) and `fleet:` (outlier rules) sections: defaults
when absent, every bad value named as file:line:column: key with exit 2, lint judging how they fit."""

from __future__ import annotations

import dataclasses
import textwrap
from pathlib import Path

import pytest

from dlverify.cli import main
from dlverify.hwspec import SpecError, load_spec_text
from dlverify.hwspec.keys import FLEET, MONITORING
from dlverify.hwspec.lint import lint
from dlverify.hwspec.model import FleetSpec, MonitoringSpec
from dlverify.results import Status

BASE = """\
software:
  monitoring: {prometheus: "2.42.0"}
checks:
  gpu_temp_max_c: 87
"""


def _load(text: str):
    return load_spec_text(BASE + textwrap.dedent(text), "s.yaml")


def test_absent_sections_are_the_defaults() -> None:
    spec = load_spec_text("hardware: {gpu: NVIDIA H100 80GB}\n", "s.yaml")
    assert spec.monitoring == MonitoringSpec()
    assert (spec.monitoring.check_interval_min, spec.monitoring.gpu_temp_alert_c) == (5, 85)
    assert spec.fleet == FleetSpec(mad_threshold=3.5, min_gap=0.05, min_peers=3)


def test_written_values_load_and_the_rest_keep_their_defaults() -> None:
    spec = _load(
        """
        monitoring:
          check_interval_min: 10
          gpu_temp_alert_c: 80
          xid_window_min: 60
        fleet:
          mad_threshold: 5
          min_peers: 8
        """
    )
    assert spec.monitoring == MonitoringSpec(check_interval_min=10, gpu_temp_alert_c=80, xid_window_min=60)
    assert spec.fleet == FleetSpec(mad_threshold=5.0, min_gap=0.05, min_peers=8)
    assert spec.where("monitoring.gpu_temp_alert_c") == "s.yaml:8"


def test_key_tables_cover_the_model() -> None:
    assert set(MONITORING.fields) == {f.name for f in dataclasses.fields(MonitoringSpec)}
    assert set(FLEET.fields) == {f.name for f in dataclasses.fields(FleetSpec)}


@pytest.mark.parametrize(
    ("section", "line", "key", "message"),
    [
        ("monitoring:\n  check_interval_min: 0\n", 6, "monitoring.check_interval_min", "from 1 to 1440"),
        ("monitoring:\n  gpu_temp_alert_c: hot\n", 6, "monitoring.gpu_temp_alert_c", "an integer"),
        ("monitoring:\n  ecc_dbe_max: -1\n", 6, "monitoring.ecc_dbe_max", "from 0"),
        ("monitoring:\n  xid_window: 15\n", 6, "monitoring.xid_window", "unknown key"),
        ("monitoring: 5\n", 5, "monitoring", "a mapping"),
        ("fleet:\n  min_gap: 1.5\n", 6, "fleet.min_gap", "greater than 0, at most 0.99"),
        ("fleet:\n  mad_threshold: 0\n", 6, "fleet.mad_threshold", "greater than 0"),
        ("fleet:\n  min_peers: 1\n", 6, "fleet.min_peers", "from 2"),
    ],
)
def test_bad_values_name_file_line_and_key(section: str, line: int, key: str, message: str) -> None:
    with pytest.raises(SpecError) as exc:
        load_spec_text(BASE + section, "s.yaml")
    text = str(exc.value)
    assert text.startswith(f"s.yaml:{line}:") and f" {key}: " in text and message in text, text


def test_the_cli_refuses_a_bad_threshold_with_exit_2(tmp_path: Path, capsys) -> None:
    spec = tmp_path / "hwspec.yaml"
    spec.write_text(BASE + "monitoring:\n  check_interval_min: 0\n")
    assert main(["spec", "lint", str(spec)]) == 2
    err = capsys.readouterr().err
    assert f"{spec}:6:23: monitoring.check_interval_min:" in err and "Traceback" not in err


def test_lint_warns_when_the_temperature_alert_comes_after_the_check_fails() -> None:
    results = {r.id: r for r in lint(_load("monitoring:\n  gpu_temp_alert_c: 90\n"))}
    r = results["spec.monitoring.gpu_temp"]
    assert r.status is Status.WARN and "checks.gpu_temp_max_c (87 C)" in r.detail
    assert r.detail.endswith("(monitoring.gpu_temp_alert_c at s.yaml:6)")
    ok = {r.id: r for r in lint(_load("monitoring:\n  gpu_temp_alert_c: 86\n"))}
    assert ok["spec.monitoring.gpu_temp"].status is Status.PASS


def test_lint_warns_about_thresholds_for_a_stack_that_is_not_installed() -> None:
    spec = load_spec_text("monitoring:\n  check_interval_min: 10\n", "s.yaml")
    r = {r.id: r for r in lint(spec)}["spec.monitoring.installed"]
    assert (
        r.status is Status.WARN and "software.monitoring pins nothing" in r.detail and "s.yaml:1" in r.detail
    )


def test_lint_warns_when_a_stopped_timer_goes_unnoticed_for_a_day() -> None:
    spec = _load("monitoring:\n  check_interval_min: 600\n  check_missed_runs: 3\n")
    r = {r.id: r for r in lint(spec)}["spec.monitoring.not_run"]
    assert r.status is Status.WARN and "1800 min" in str(r.observed) and "s.yaml:7" in r.detail


def test_no_section_no_monitoring_lint() -> None:
    assert not [r for r in lint(load_spec_text(BASE, "s.yaml")) if r.id.startswith("spec.monitoring")]
