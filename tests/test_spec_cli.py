"""`dlverify spec lint|schema|init`: exit codes 0/1/2, formats, errors on stderr, never a traceback."""

from __future__ import annotations

import json
import subprocess
import sys
import types
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from conftest import ROOT

from dlverify.cli import main
from dlverify.hwspec import load_spec

NOTES = ROOT / "hwspec" / "examples" / "seed-notes.yaml"


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_lint_clean_spec_exits_0(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "spec", "lint", str(ROOT / "hwspec.yaml"))
    assert code == 0 and "OK:" in out and "FAILED" not in out


def test_lint_incompatible_spec_exits_1_in_every_format(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "spec", "lint", str(NOTES))
    # 11 passes: spec.cudnn.package (issue 11) names the +cuda12.1 build of cuDNN 8.9.2
    assert code == 1 and "FAILED: 11 passed, 1 warnings, 2 failed, 0 skipped" in out
    code, out, _ = run(capsys, "spec", "lint", str(NOTES), "--format", "json")
    doc = json.loads(out)
    assert code == 1 and doc["exit_code"] == 1 and doc["summary"]["fail"] == 2
    assert {r["id"] for r in doc["results"] if r["status"] == "fail"} == {
        "spec.pytorch.cuda_build",
        "spec.tensorflow.cuda",
    }
    code, out, _ = run(capsys, "spec", "lint", str(NOTES), "--format", "junit")
    assert code == 1 and ET.fromstring(out.split("\n", 1)[1]).find("testsuite").get("failures") == "2"


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("software:\n  cuda: 12.1\n", 'bad.yaml:2:9: software.cuda: expected a version string like "12.1"'),
        ("software:\n  cuda: [12.1\n", "bad.yaml:3:1: malformed YAML"),
        (
            "hardware: {}\nsofware: {}\n",
            "bad.yaml:2:1: sofware: unknown key 'sofware' at the top level; did you mean",
        ),
        (
            "hardware:\n  storage:\n    - {type: SSD, size: 2 terabytes}\n",
            "bad.yaml:3:25: hardware.storage[0].size",
        ),
        ("", "bad.yaml: the file is empty"),
        (
            "software:\n  jupyter:\n    port: eighty\n",
            "bad.yaml:3:11: software.jupyter.port: expected an integer",
        ),
        (
            "software:\n  jupyter:\n    users: [root]\n",
            "bad.yaml:3:5: software.jupyter: jupyter: 'root' in users",
        ),
        (
            "software:\n  containers:\n    docker: 24.0\n",
            "bad.yaml:3:13: software.containers.docker: expected",
        ),
    ],
)
def test_invalid_spec_exits_2_with_location(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, text: str, needle: str
) -> None:
    p = tmp_path / "bad.yaml"
    p.write_text(text, encoding="utf-8")
    code, out, err = run(capsys, "spec", "lint", str(p))
    assert code == 2 and out == ""
    assert needle in err.replace(str(tmp_path) + "/", ""), err
    assert "Traceback" not in err


def test_invalid_spec_json_lists_errors(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    p = tmp_path / "bad.yaml"
    p.write_text("software:\n  cuda: 12.1\n  cudnn: 8.9\n", encoding="utf-8")
    code, out, err = run(capsys, "spec", "lint", str(p), "--format", "json")
    doc = json.loads(out)
    assert code == 2 and doc["schema"] == "dlverify.spec-errors/1"
    assert [(e["line"], e["key"]) for e in doc["errors"]] == [(2, "software.cuda"), (3, "software.cudnn")]
    assert "2 problems in the spec" in err


def test_missing_file_and_usage(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code, _, err = run(capsys, "spec", "lint", str(tmp_path / "none.yaml"))
    assert code == 2 and "none.yaml: no such file" in err
    assert run(capsys, "spec")[0] == 2
    with pytest.raises(SystemExit) as exc:
        main(["spec", "lint", str(NOTES), "--format", "xml"])
    assert exc.value.code == 2


def test_schema_command(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "spec", "schema")
    assert code == 0 and out == (ROOT / "hwspec" / "hwspec.schema.json").read_text(encoding="utf-8")


def test_subprocess_has_no_traceback(tmp_path: Path) -> None:
    p = tmp_path / "bad.yaml"
    p.write_text("- just\n- a list\n", encoding="utf-8")
    proc = subprocess.run(
        [sys.executable, "-m", "dlverify.cli", "spec", "lint", str(p)],
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    assert proc.returncode == 2 and "top level must be a mapping" in proc.stderr
    assert "Traceback" not in proc.stderr


# --- spec init: the snapshot -> spec function belongs to the verifier (verify/spec_init.py); here a
# stand-in module, labelled as such, checks the command's own duties (I/O, validation, overwrite rules).


def _snap(gpu: str, driver: object) -> dict:
    return {
        "schema": "dlverify.snapshot/1",
        "nvml": {"driver_version": driver, "gpus": [{"name": gpu}]},
        "host": {},
        "software": {},
    }


@pytest.fixture
def stand_in_spec_init(monkeypatch: pytest.MonkeyPatch) -> dict:
    seen: dict = {}

    def spec_from_snapshot(snapshot: dict) -> dict:  # stand-in, not the verifier's implementation
        seen["snapshot"] = snapshot
        return {
            "hardware": {"gpu": [{"model": snapshot["nvml"]["gpus"][0]["name"], "count": 1}]},
            "software": {
                "nvidia_driver": snapshot["nvml"]["driver_version"],
                "cuda": "13.0",
                "python_env": {"python": "3.10", "installer": "system"},
            },
        }

    module = types.ModuleType("dlverify.spec_init")
    module.spec_from_snapshot = spec_from_snapshot  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "dlverify.spec_init", module)
    return seen


def test_init_writes_a_spec_that_loads(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, stand_in_spec_init: dict
) -> None:
    snap = tmp_path / "snap.json"
    snap.write_text(json.dumps(_snap("NVIDIA H100 80GB HBM3", "580.159.04")))
    out = tmp_path / "spec.yaml"
    code, _, err = run(capsys, "spec", "init", "--from-snapshot", str(snap), "-o", str(out))
    assert code == 0 and "wrote" in err
    text = out.read_text()
    assert 'python: "3.10"' in text and 'cuda: "13.0"' in text  # versions stay strings
    spec = load_spec(out)
    assert spec.software.python_env.python == "3.10" and spec.hardware.gpus[0].architecture == "Hopper"
    code, _, err = run(capsys, "spec", "init", "--from-snapshot", str(snap), "-o", str(out))
    assert code == 2 and "exists; use --force" in err
    assert run(capsys, "spec", "init", "--from-snapshot", str(snap), "-o", str(out), "--force")[0] == 0
    code, stdout, _ = run(capsys, "spec", "init", "--from-snapshot", str(snap))
    assert code == 0 and stdout.startswith("# Written by")


def test_init_bad_snapshot(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, stand_in_spec_init: dict
) -> None:
    snap = tmp_path / "snap.json"
    snap.write_text("{not json")
    code, _, err = run(capsys, "spec", "init", "--from-snapshot", str(snap))
    assert code == 2 and "snap.json: not valid JSON" in err
    code, _, err = run(capsys, "spec", "init", "--from-snapshot", str(tmp_path / "missing.json"))
    assert code == 2 and "no such file" in err
    snap.write_text(
        json.dumps(_snap("NVIDIA H100 80GB HBM3", 580))
    )  # one reader: refused as check refuses it
    code, _, err = run(capsys, "spec", "init", "--from-snapshot", str(snap))
    assert code == 2 and "nvml.driver_version: expected string" in err
    # issue 18: `{}` and a wrong-schema file were written out as specs with exit 0
    for doc in ({}, {"schema": "other/1"}, [1]):
        snap.write_text(json.dumps(doc))
        code, out, err = run(capsys, "spec", "init", "--from-snapshot", str(snap))
        assert code == 2 and "not a dlverify snapshot" in err and not out, doc


def test_lint_writes_the_report_to_a_file_with_o(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    out_file = tmp_path / "lint.json"
    code, out, _ = run(
        capsys, "spec", "lint", str(ROOT / "hwspec.yaml"), "--format", "json", "-o", str(out_file)
    )
    assert code == 0 and out == ""
    assert json.loads(out_file.read_text())["exit_code"] == 0
    code, _, err = run(capsys, "spec", "lint", str(ROOT / "hwspec.yaml"), "--output", str(tmp_path / "no/x"))
    assert code == 2 and "cannot write" in err
