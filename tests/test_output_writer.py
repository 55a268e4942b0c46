"""Every command's `-o FILE` goes through one atomic writer (dlverify.output.write_output).

The broken case: the write fails after the temp file was written (fsync refused, as on a full disk).
The old file must be left whole, no temp file left beside it, and the command must exit 2 naming the file.
A command that writes FILE itself (truncate, then write) loses the old file and exits as if it had written it.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from dlverify.cli import main
from dlverify.results import EXIT_USAGE

REPO = Path(__file__).resolve().parents[1]
BENCH_RUN = REPO / "benchmarks/results/2026-11-28-h200-run1/bench_warm.json"


def _commands(tmp_path: Path) -> dict[str, list[str]]:
    fleet = tmp_path / "fleet" / "host1"
    fleet.mkdir(parents=True)
    return {
        "spec lint": ["spec", "lint", str(REPO / "hwspec.yaml"), "--format", "json"],
        "bench --replay": ["bench", "--replay", str(BENCH_RUN), "--format", "json"],
        "fleet report": ["fleet", "report", str(fleet.parent), "--format", "json"],
    }


@pytest.mark.parametrize("command", ["spec lint", "bench --replay", "fleet report"])
def test_a_failed_write_keeps_the_old_file_whole(command, tmp_path, monkeypatch, capsys) -> None:
    argv = _commands(tmp_path)[command]
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    out = out_dir / "report.json"
    out.write_text('{"old": true}\n')

    def refused(_fd: int) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", refused)
    rc = main([*argv, "-o", str(out)])
    err = capsys.readouterr().err
    assert rc == EXIT_USAGE, err
    assert f"{out}: cannot write: No space left on device" in err
    assert out.read_text() == '{"old": true}\n'
    assert [p.name for p in out_dir.iterdir()] == ["report.json"]  # no temp file left behind


@pytest.mark.parametrize("command", ["spec lint", "bench --replay", "fleet report"])
def test_a_good_write_replaces_the_file_readable_by_all(command, tmp_path, capsys) -> None:
    argv = _commands(tmp_path)[command]
    out = tmp_path / "report.json"
    out.write_text("old")
    main([*argv, "-o", str(out)])
    assert out.read_text().lstrip().startswith("{") and oct(out.stat().st_mode & 0o777) == "0o644"
    assert capsys.readouterr().out == ""  # with -o, nothing of the report goes to stdout
