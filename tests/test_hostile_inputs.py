"""Issue 10: hostile spec and snapshot files. Each case runs the real CLI in a subprocess under a time
limit and must end with exit 2, a message naming the file, and no traceback."""

from __future__ import annotations

import gzip
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
HWSPEC = str(ROOT / "hwspec.yaml")
LIMIT_S = 20  # interpreter start-up included; a hang or an unbounded read runs into it
SNAP = {"schema": "dlverify.snapshot/1", "nvml": {}, "host": {}, "software": {}}


def _spec_text(hw: str) -> str:
    return f"hardware:\n  {hw}\n"


# name -> how to make the file (a callable taking the path), for both spec and snapshot positions
def _write(text: str | bytes):
    def make(p: Path) -> str:
        p.write_bytes(text if isinstance(text, bytes) else text.encode())
        return str(p)

    return make


def _fifo(p: Path) -> str:
    os.mkfifo(p)
    return str(p)


def _dir(p: Path) -> str:
    p.mkdir()
    return str(p)


FILE_CASES = {
    "fifo": _fifo,
    "directory": _dir,
    "dev-zero": lambda p: "/dev/zero",
    "dev-urandom": lambda p: "/dev/urandom",
    "gzip": _write(gzip.compress(json.dumps(SNAP).encode())),
    "utf16": _write(json.dumps(SNAP).encode("utf-16")),
    "utf16-no-bom": _write(json.dumps(SNAP).encode("utf-16-le")),
    "binary": _write(bytes(range(256)) * 4),
    "missing": lambda p: str(p),
    "empty": _write(""),
}

SPEC_CASES = {
    **FILE_CASES,
    "deep-nesting": _write("a: " + "[" * 5000 + "]" * 5000 + "\n"),
    "deep-mapping": _write("".join("  " * i + f"k{i}:\n" for i in range(400)) + "  " * 400 + "v\n"),
    "long-gpu-digits": _write(_spec_text('gpu: "' + "9" * 8000 + '"')),
    "long-gpu-words": _write(_spec_text('gpu: "' + "H100 " * 2000 + '"')),
    "long-network": _write(_spec_text('network: "' + "1" * 8000 + 'GbE"')),
    "long-cpu": _write(_spec_text('cpu: "' + "1" * 8000 + 'C/2T"')),
    "huge-count": _write(_spec_text("gpu: {model: H200, count: 99999999999999999999999999999}")),
    "negative-count": _write(_spec_text('gpu: "-3x H200"')),
    "huge-count-human": _write(_spec_text('gpu: "99999999999999999999x H200"')),
    "alias-bomb": _write(
        "a: &a [x, x, x, x, x, x, x, x, x]\n"
        + "".join(
            f"{b}: &{b} [*{a}, *{a}, *{a}, *{a}]\n" for a, b in zip("abcdefghi", "bcdefghij", strict=True)
        )
    ),
    "top-level-list": _write("- 1\n- 2\n"),
}

SNAPSHOT_CASES = {
    **FILE_CASES,
    "deep-json": _write("[" * 100000 + "]" * 100000),
    "deep-json-in-section": _write(
        '{"schema": "dlverify.snapshot/1", "host": {}, "software": {}, "nvml": '
        + '{"a":' * 200
        + "1"
        + "}" * 200
        + "}"
    ),
    "empty-object": _write("{}"),
    "wrong-schema": _write('{"schema": "other/1"}'),
    "mig-string": _write(json.dumps({**SNAP, "nvml": {"gpus": [{"mig_mode_current": "false"}]}})),
    "nan-temperature": _write(json.dumps({**SNAP, "nvml": {"gpus": [{"temperature_c": float("nan")}]}})),
    "inf-power": _write(json.dumps({**SNAP, "nvml": {"gpus": [{"power_limit_mw": float("inf")}]}})),
    "junk-fields": _write(
        json.dumps({**SNAP, "host": {"cpu": 3, "ram": []}, "software": {"python_env": "x"}})
    ),
    "gpus-not-list": _write(json.dumps({**SNAP, "nvml": {"gpus": {"0": {}}}})),
    "not-json": _write("{not json"),
    "json-list": _write("[1, 2]"),
}


def _run(argv: list[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "dlverify.cli", *argv],
        capture_output=True,
        text=True,
        timeout=LIMIT_S,
        check=False,
        stdin=subprocess.DEVNULL,
    )


def _assert_refused(proc: subprocess.CompletedProcess[str], path: str) -> None:
    assert proc.returncode == 2, (proc.returncode, proc.stderr[-2000:])
    assert path in proc.stderr, proc.stderr[-2000:]
    assert "Traceback" not in proc.stderr and "Error:" not in proc.stderr.replace("SpecError", ""), (
        proc.stderr
    )


@pytest.mark.parametrize("case", sorted(SPEC_CASES))
@pytest.mark.parametrize("command", ["lint", "check"])
def test_hostile_spec(tmp_path: Path, case: str, command: str) -> None:
    path = SPEC_CASES[case](tmp_path / "spec.yaml")
    argv = ["spec", "lint", path] if command == "lint" else ["check", path, "--only", "host", "--no-env"]
    _assert_refused(_run(argv), path)


@pytest.mark.parametrize("case", sorted(SNAPSHOT_CASES))
@pytest.mark.parametrize("command", ["check", "init"])
def test_hostile_snapshot(tmp_path: Path, case: str, command: str) -> None:
    path = SNAPSHOT_CASES[case](tmp_path / "snap.json")
    if command == "check":
        argv = ["check", HWSPEC, "--snapshot", path]
    else:
        argv = ["spec", "init", "--from-snapshot", path, "-o", str(tmp_path / "out.yaml")]
    proc = _run(argv)
    _assert_refused(proc, path)
    assert not (tmp_path / "out.yaml").exists()
