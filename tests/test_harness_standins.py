"""The harness's stand-in programs, run: the daemons (forking as their units need; the persistence
daemon's unit a copy of the real one), Grafana's server (in the foreground: its unit is Type=simple), the
Miniconda installer and its conda, and the Prometheus release tarball made from Debian's binaries."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

from harness_mirror import REAL_PERSISTENCED_UNIT, STANDINS, load_mirror, needs_debian_tools, parse_unit

mirror = load_mirror()


def test_persistenced_stand_in_unit_is_the_real_one():
    unit = (STANDINS / "nvidia-persistenced.service").read_text()
    assert parse_unit(unit) == REAL_PERSISTENCED_UNIT


def test_stand_in_daemon_forks_and_keeps_its_arguments(tmp_path):
    """Both stand-in units are Type=forking, like the real ones: the parent must return, a child must stay."""
    for template in ("daemon.sh.in", "daemon.service.in"):
        text = (STANDINS / template).read_text()
        assert "exec sleep infinity" not in text
    assert "Type=forking" in (STANDINS / "daemon.service.in").read_text()
    daemon = tmp_path / "nvidia-persistenced"
    files = mirror.daemon_package_files("p", "nvidia-persistenced", "x.service", "d", "")
    daemon.write_bytes(files["/usr/bin/nvidia-persistenced"])
    daemon.chmod(0o755)
    done = subprocess.run(
        [str(daemon), "--persistence-mode", "--verbose"],
        capture_output=True,
        text=True,
        timeout=10,
        check=True,
    )
    assert "arguments: --persistence-mode --verbose" in done.stdout
    found = subprocess.run(["pgrep", "-f", f"{daemon} --persistence-mode"], capture_output=True, text=True)
    pids = found.stdout.split()
    try:
        assert pids, "the forked child is not running"
        cmdline = Path(f"/proc/{pids[0]}/cmdline").read_bytes().split(b"\0")
        assert b"--persistence-mode" in cmdline
    finally:
        for pid in pids:
            os.kill(int(pid), 15)


def test_miniconda_installer_and_conda_stand_in(tmp_path):
    installer = tmp_path / "Miniconda3.sh"
    installer.write_bytes(mirror.miniconda_installer())
    head = installer.read_text().splitlines()[1]
    assert "STAND-IN Miniconda3 installer" in head
    prefix = tmp_path / "mc"

    def sh(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(list(args), capture_output=True, text=True, check=False)

    assert sh("bash", str(installer), "-b", "-p", str(prefix)).returncode == 0
    again = sh("bash", str(installer), "-b", "-p", str(prefix))
    assert again.returncode == 1 and "use the -u option" in again.stderr
    assert sh("bash", str(installer), "-b", "-u", "-p", str(prefix)).returncode == 0
    assert sh("bash", str(installer), "-p", str(tmp_path / "other")).returncode == 2  # batch mode only

    conda = str(prefix / "bin" / "conda")
    version = sh(conda, "--version")
    assert version.returncode == 0 and version.stdout.strip() == "conda 23.5.2"
    assert "STAND-IN" in version.stderr

    assert sh(conda, "config", "--set", "auto_activate_base", "false").returncode == 0
    created = sh(conda, "create", "-y", "-n", "dl", "python=3.10", "pip", "-c", "conda-forge")
    assert created.returncode == 0, created.stderr
    env = prefix / "envs" / "dl"
    assert (env / "conda-meta").is_dir()
    host = f"{sys.version_info.major}.{sys.version_info.minor}"
    assert ("WARNING" in created.stderr) == (host != "3.10")

    envs = json.loads(sh(conda, "env", "list", "--json").stdout)["envs"]
    assert envs == [str(prefix), str(env)]
    info = json.loads(sh(conda, "info", "--json").stdout)
    assert info["conda_version"] == "23.5.2" and info["root_prefix"] == str(prefix)
    assert info["envs_dirs"] == [str(prefix / "envs")] and "STAND-IN" in info["dlverify_stand_in"]

    ran = sh(conda, "run", "-n", "dl", "python", "-c", "import sys; print(sys.prefix)")
    assert ran.returncode == 0 and ran.stdout.strip() == str(env)
    listed = json.loads(sh(conda, "list", "-n", "dl", "--json").stdout)
    assert "pip" in {p["name"] for p in listed}

    for args in (
        ["install", "-y", "-n", "dl", "pytorch"],
        ["create", "-y", "-n", "x", "python=3.10", "pytorch"],
    ):
        refused = sh(conda, *args)
        assert refused.returncode == 1
        assert "stand-in conda cannot fetch packages from channels" in refused.stderr
    assert not (prefix / "envs" / "x").exists()

    env_file = tmp_path / "env.yml"
    env_file.write_text("name: fromfile\nchannels: [pytorch]\ndependencies:\n  - python=3.10\n  - pytorch\n")
    refused = sh(conda, "env", "create", "-f", str(env_file))
    assert refused.returncode == 1 and "cannot fetch" in refused.stderr
    env_file.write_text("name: fromfile\ndependencies:\n  - python=3.10\n  - pip\n")
    assert sh(conda, "env", "create", "-f", str(env_file)).returncode == 0
    assert (prefix / "envs" / "fromfile" / "bin" / "python").exists()

    assert sh(conda, "env", "remove", "-n", "fromfile").returncode == 0
    assert not (prefix / "envs" / "fromfile").exists()
    assert sh(conda, "frobnicate").returncode == 2


def test_grafana_stand_in_runs_in_the_foreground_as_its_type_simple_unit_needs(tmp_path):
    """Grafana's unit is Type=simple: a server that forked and exited would be seen as stopped by systemd
    (and restarted by every converge: the idempotence failure this test was written after)."""
    (spec,) = mirror.repository_specs("grafana")
    unit = spec.files["/lib/systemd/system/grafana-server.service"]
    assert b"Type=simple" in (unit if isinstance(unit, bytes) else unit.read_bytes())
    server = tmp_path / "grafana-server"
    server.write_bytes(spec.files["/usr/sbin/grafana-server"])  # type: ignore[arg-type]
    server.chmod(0o755)
    proc = subprocess.Popen([str(server), "--config=/etc/grafana/grafana.ini"], stdout=subprocess.PIPE)
    try:
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=1.5)
        assert proc.poll() is None, "the stand-in server exited: systemd would see a Type=simple unit stop"
    finally:
        proc.terminate()
        proc.wait(timeout=10)


@needs_debian_tools
def test_prometheus_release_stand_in_has_the_upstream_layout(tmp_path: Path) -> None:
    """The release-tarball stand-in repackages Debian's prometheus binaries as upstream's tarball
    (prometheus-X.linux-amd64/{prometheus,promtool,...}) with sha256sums.txt, and says it is a stand-in."""
    import tarfile

    import mirror_releases

    pkg = tmp_path / "pkg"
    for name in ("prometheus", "promtool"):
        exe = pkg / "usr" / "bin" / name
        exe.parent.mkdir(parents=True, exist_ok=True)
        exe.write_text(f"#!/bin/sh\necho {name}\n")
        exe.chmod(0o755)
    (pkg / "DEBIAN").mkdir()
    (pkg / "DEBIAN" / "control").write_text(
        "Package: prometheus\nVersion: 2.42.0+ds-5+b5\nArchitecture: amd64\n"
        "Maintainer: t <t@t>\nDescription: t\n"
    )
    deb = tmp_path / "prometheus_2.42.0+ds-5+b5_amd64.deb"
    subprocess.run(["dpkg-deb", "--build", str(pkg), str(deb)], check=True, capture_output=True)

    version, tarball = mirror_releases.prometheus_tarball(deb, tmp_path / "www" / "prometheus")
    assert version == "2.42.0"
    assert (
        tarball == tmp_path / "www/prometheus/releases/download/v2.42.0/prometheus-2.42.0.linux-amd64.tar.gz"
    )
    with tarfile.open(tarball) as tar:
        members = {m.name: m for m in tar.getmembers()}
        top = "prometheus-2.42.0.linux-amd64"
        assert {f"{top}/prometheus", f"{top}/promtool", f"{top}/DLVERIFY-STAND-IN"} <= set(members)
        assert members[f"{top}/prometheus"].mode & 0o111
        assert tar.extractfile(f"{top}/promtool").read() == b"#!/bin/sh\necho promtool\n"
        assert b"STAND-IN" in tar.extractfile(f"{top}/DLVERIFY-STAND-IN").read()
    digest, name = (tarball.parent / "sha256sums.txt").read_text().split()
    assert name == tarball.name and digest == hashlib.sha256(tarball.read_bytes()).hexdigest()
