"""The HTML fleet report: one self-contained file (nothing fetched), an SVG throughput chart with the outliers
marked, and what a real browser (Debian's headless Chromium) draws of it. Set DLV_ARTIFACTS=DIR to keep
the screenshot (tests/artifacts/fleet-report.png was made so)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import fleet_synth as fs
import pytest
import test_fleet_report as tfr

OUTLIER_RED = (0xB0, 0x00, 0x20)
report = tfr.report


@pytest.fixture(scope="module")
def fleet_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The standard 120-host fleet of test_fleet_report (a slow GPU, a drifted driver, an XID, one down)."""
    tmp = tmp_path_factory.mktemp("html")
    with pytest.MonkeyPatch.context() as mp:
        types = {"h100": fs.host_type(mp, tmp, "h100", 8), "h200": fs.host_type(mp, tmp, "h200", 1)}
    return fs.write_fleet(tmp / "run", tfr.standard_hosts(types))


def _html(fleet_dir: Path, capsys: pytest.CaptureFixture[str], tmp_path: Path) -> Path:
    out = tmp_path / "fleet.html"
    rc, _out, _err = report(capsys, str(fleet_dir), "--format", "html", "-o", str(out))
    assert rc == 1
    return out


def test_the_html_is_self_contained_and_marks_the_outliers(fleet_dir: Path, capsys, tmp_path: Path) -> None:
    text = _html(fleet_dir, capsys, tmp_path).read_text()
    assert text.startswith("<!DOCTYPE html>")
    # nothing to fetch: no script, stylesheet, image, font or frame; the only URL is the SVG namespace
    assert not re.search(r"<script|<link|<img|<iframe|@import|url\(|src=", text, re.I)
    assert set(re.findall(r"https?://[^\s\"']+", text)) == {"http://www.w3.org/2000/svg"}
    assert text.count("<svg") == 4  # H100 and H200, training and inference
    marked = re.findall(r"<title>OUTLIER ([^<]+)</title>", text)
    assert len(marked) == 2 and all(m.startswith("h100-007 gpu5: ") for m in marked), marked
    for host in ("h100-042", "h200-011", "h200-023"):
        assert host in text


def _chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


def test_chromium_draws_the_report(fleet_dir: Path, capsys, tmp_path: Path) -> None:
    exe = _chromium()
    if exe is None:
        msg = (
            "Chromium is not installed (apt-get install chromium; `make host-tools` does): HTML NOT RENDERED"
        )
        if os.environ.get("DLV_REQUIRE_CHROMIUM") == "1":
            pytest.fail(msg + ", and DLV_REQUIRE_CHROMIUM=1")
        pytest.skip(msg)
    page = _html(fleet_dir, capsys, tmp_path)
    png = tmp_path / "fleet-report.png"
    cmd = [
        exe,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--no-first-run",
        f"--user-data-dir={tmp_path / 'profile'}",
        f"--screenshot={png}",
        "--window-size=1400,1000",
        page.as_uri(),
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert png.is_file() and png.stat().st_size > 10_000, (proc.returncode, proc.stderr[-2000:])
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    from PIL import Image  # torchvision's dependency, in the test venv

    img = Image.open(png).convert("RGB")
    assert img.size == (1400, 1000)
    colors = img.getcolors(maxcolors=1 << 20) or []
    red = sum(n for n, c in colors if all(abs(a - b) <= 24 for a, b in zip(c, OUTLIER_RED, strict=True)))
    assert red > 50, "no outlier drawn in red on the first screen"
    assert len(colors) > 20, "a blank page"
    keep = os.environ.get("DLV_ARTIFACTS")
    if keep:
        Path(keep).mkdir(parents=True, exist_ok=True)
        shutil.copy(png, Path(keep) / png.name)
