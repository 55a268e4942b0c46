"""The alert rules rendered from spec thresholds, judged by Debian's real promtool: `check rules` accepts
them and `test rules` (the role's own unit tests, rendered from the same thresholds) sees each alert fire one
step past its threshold and stay silent at it. The spec -> role variable mapping is run with ansible-playbook.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import jinja2
import pytest
import yaml

from dlverify.hwspec.loader import load_spec_text
from dlverify.hwspec.model import MonitoringSpec

REPO = Path(__file__).resolve().parents[1]
ROLE = REPO / "roles" / "monitoring"
# on PATH, or where `make host-tools` puts it: next to the interpreter
PROMTOOL = shutil.which("promtool") or shutil.which("promtool", path=str(Path(sys.executable).parent))
needs_promtool = pytest.mark.skipif(
    PROMTOOL is None, reason="promtool not installed (Debian's prometheus package; Molecule runs it)"
)

# spec key (top-level monitoring:) -> role variable; the mapping in playbooks/vars/spec_mapping.yml
SPEC_TO_ROLE = {
    "check_interval_min": "monitoring_check_interval_min",
    "check_missed_runs": "monitoring_alert_check_missed_runs",
    "check_failing_for_min": "monitoring_alert_check_failing_for_min",
    "gpu_temp_alert_c": "monitoring_alert_gpu_temp_c",
    "gpu_temp_for_min": "monitoring_alert_gpu_temp_for_min",
    "xid_window_min": "monitoring_alert_xid_window_min",
    "ecc_dbe_max": "monitoring_alert_ecc_dbe_max",
    "exporter_down_for_min": "monitoring_alert_exporter_down_for_min",
}
STRICT = {
    "check_interval_min": 2,
    "check_missed_runs": 2,
    "check_failing_for_min": 3,
    "gpu_temp_alert_c": 78,
    "gpu_temp_for_min": 0,
    "xid_window_min": 30,
    "ecc_dbe_max": 4,
    "exporter_down_for_min": 1,
}


def _role_vars(**thresholds: Any) -> dict[str, Any]:
    defaults = yaml.safe_load((ROLE / "defaults" / "main.yml").read_text())
    defaults["ansible_managed"] = "Ansible managed"
    defaults.update({SPEC_TO_ROLE[k]: v for k, v in thresholds.items()})
    return defaults


def _render(name: str, variables: dict[str, Any], template_dir: Path = ROLE / "templates") -> str:
    # Ansible's template module: trim_blocks on, undefined variables are errors
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(template_dir),
        trim_blocks=True,
        keep_trailing_newline=True,
        undefined=jinja2.StrictUndefined,
    )
    return env.get_template(name).render(**variables)


def _write_rules(tmp_path: Path, rules_vars: dict[str, Any], test_vars: dict[str, Any]) -> Path:
    (tmp_path / "dlverify.rules.yml").write_text(_render("dlverify.rules.yml.j2", rules_vars))
    (tmp_path / "dlverify.rules.test.yml").write_text(_render("dlverify.rules.test.yml.j2", test_vars))
    return tmp_path


def _promtool(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    assert PROMTOOL is not None
    return subprocess.run(
        [PROMTOOL, *args], cwd=tmp_path, capture_output=True, text=True, timeout=120, check=False
    )


def test_the_role_defaults_are_the_spec_defaults() -> None:
    """An absent monitoring: section must give the role's defaults, and the mapping's fallbacks agree."""
    spec = MonitoringSpec()
    defaults = _role_vars()
    mapping = (REPO / "playbooks" / "vars" / "spec_mapping.yml").read_text()
    for key, var in SPEC_TO_ROLE.items():
        assert defaults[var] == getattr(spec, key), var
        assert f"_dlv_mon.{key} | default({getattr(spec, key)}) | int" in mapping, var


@needs_promtool
@pytest.mark.parametrize("thresholds", [{}, STRICT], ids=["defaults", "strict"])
def test_rules_pass_promtool_check_and_their_unit_tests(tmp_path: Path, thresholds: dict[str, Any]) -> None:
    variables = _role_vars(**thresholds)
    _write_rules(tmp_path, variables, variables)
    check = _promtool(tmp_path, "check", "rules", "dlverify.rules.yml")
    assert check.returncode == 0, check.stdout + check.stderr
    assert "SUCCESS: 6 rules found" in check.stdout, check.stdout
    test = _promtool(tmp_path, "test", "rules", "dlverify.rules.test.yml")
    assert test.returncode == 0, test.stdout + test.stderr


@needs_promtool
@pytest.mark.parametrize(
    ("key", "alert"),
    [
        ("gpu_temp_alert_c", "GpuTemperatureHigh"),
        ("xid_window_min", "GpuXidError"),
        ("ecc_dbe_max", "GpuEccUncorrectable"),
        ("check_failing_for_min", "DlverifyCheckFailing"),
        ("check_missed_runs", "DlverifyCheckNotRun"),
        ("exporter_down_for_min", "ExporterDown"),
    ],
)
def test_the_unit_tests_catch_rules_that_ignore_a_threshold(tmp_path: Path, key: str, alert: str) -> None:
    """Rules rendered with the defaults, tests with the strict spec's value of one key: the alert's
    must-fire or must-not-fire case fails, so a threshold the rules do not apply cannot go unnoticed."""
    _write_rules(tmp_path, _role_vars(), _role_vars(**{key: STRICT[key]}))
    test = _promtool(tmp_path, "test", "rules", "dlverify.rules.test.yml")
    assert test.returncode != 0, test.stdout
    assert f"alertname: {alert}" in test.stdout + test.stderr, test.stdout + test.stderr


ANSIBLE_PLAYBOOK = shutil.which("ansible-playbook", path=str(Path(sys.executable).parent))


@pytest.mark.skipif(ANSIBLE_PLAYBOOK is None, reason="ansible-playbook not installed (.[harness])")
@pytest.mark.parametrize("written", [True, False], ids=["monitoring-section", "no-section"])
def test_the_spec_gate_maps_the_monitoring_section_to_the_role(tmp_path: Path, written: bool) -> None:
    """playbooks/spec.yml + vars/spec_mapping.yml, run by ansible-playbook on the controller only."""
    spec_text = (
        (REPO / "hwspec.yaml")
        .read_text()
        .replace("  monitoring: {}", '  monitoring: {prometheus: "2.42.0", grafana: "9.4.7"}')
    )
    assert 'prometheus: "2.42.0"' in spec_text
    if written:
        spec_text += "monitoring:\n" + "".join(f"  {k}: {v}\n" for k, v in STRICT.items())
    load_spec_text(spec_text)  # the loader accepts what the test feeds the gate
    spec = tmp_path / "hwspec.yaml"
    spec.write_text(spec_text)
    wheel = tmp_path / "dlverify-0-py3-none-any.whl"
    wheel.write_text("")
    play = tmp_path / "show.yml"
    wanted = {var: f"{{{{ {var} }}}}" for var in SPEC_TO_ROLE.values()}
    wanted["runs"] = "{{ dlv_spec.monitoring | default({}, true) | length > 0 }}"
    play.write_text(
        f"- ansible.builtin.import_playbook: {REPO}/playbooks/spec.yml\n"
        "- hosts: gpu_servers\n  gather_facts: false\n"
        f"  vars_files: [{REPO}/playbooks/vars/spec_mapping.yml]\n"
        "  tasks:\n    - ansible.builtin.debug:\n"
        '        msg: "MAPPED {{ _shown | to_json | b64encode }} END"\n'
        f"      vars:\n        _shown: {json.dumps(wanted)}\n"
    )
    inventory = tmp_path / "hosts.yml"
    inventory.write_text(
        "all:\n  children:\n    gpu_servers:\n      hosts:\n        gpu01: {ansible_connection: local}\n"
        f'      vars:\n        miniconda_installer_sha256: "{"0" * 64}"\n'
    )
    env = dict(
        os.environ,
        ANSIBLE_CONFIG=str(REPO / "ansible.cfg"),
        ANSIBLE_NOCOLOR="1",
        ANSIBLE_HOME=str(tmp_path / "ansible-home"),
        ANSIBLE_LOCAL_TEMP=str(tmp_path / "ansible-tmp"),
        ANSIBLE_STDOUT_CALLBACK="default",
    )
    assert ANSIBLE_PLAYBOOK is not None
    proc = subprocess.run(
        [
            ANSIBLE_PLAYBOOK,
            str(play),
            "-i",
            str(inventory),
            "-e",
            f"hwspec={spec}",
            "-e",
            f"dlverify_wheel={wheel}",
        ],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out
    line = next(ln for ln in out.splitlines() if "MAPPED " in ln)
    got = json.loads(base64.b64decode(line.split("MAPPED ", 1)[1].split(" END", 1)[0]))
    expected = STRICT if written else {k: getattr(MonitoringSpec(), k) for k in SPEC_TO_ROLE}
    assert {k: int(got[v]) for k, v in SPEC_TO_ROLE.items()} == expected
    assert got["runs"] in (True, "True"), "the monitoring play would be skipped for a spec that pins it"
