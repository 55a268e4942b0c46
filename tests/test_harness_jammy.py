"""The jammy test platform (issue 11): the runner's handling of Ubuntu's archive, the image builder's keyring
gate, the site-jammy scenario's wiring, and the stand-in conda giving an env the Python it asks for.

Ubuntu's archive is not promised to CI: when it does not answer, the runner must say so loudly and still run
the Debian scenarios. These tests point the probe at a local port (closed, or a tiny local archive), so they
need neither the network nor podman; `--dry-run` exits before the runner touches the host.
"""

from __future__ import annotations

import contextlib
import functools
import http.server
import os
import shutil
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parent.parent
RUNNER = REPO / "tools" / "harness" / "molecule-run.sh"
BUILD_IMAGE = REPO / "tools" / "harness" / "build-image.sh"
BANNER = "UBUNTU ARCHIVE UNREACHABLE: the jammy scenario did not run"


def run(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", str(RUNNER), *args],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
        env={**os.environ, **env},
    )


@contextlib.contextmanager
def closed_port() -> Iterator[int]:
    """A port bound but not listening: connecting is refused at once, as a firewalled archive's would be."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        yield sock.getsockname()[1]


@contextlib.contextmanager
def local_archive(root: Path) -> Iterator[str]:
    """A tiny HTTP archive with dists/jammy/Release, to stand for a reachable Ubuntu archive."""
    (root / "ubuntu" / "dists" / "jammy").mkdir(parents=True)
    (root / "ubuntu" / "dists" / "jammy" / "Release").write_text("Origin: Ubuntu\nSuite: jammy\n")
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(root))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/ubuntu"
    finally:
        server.shutdown()
        server.server_close()


def plan(stdout: str) -> dict[str, list[str]]:
    lines = [line for line in stdout.splitlines() if line and not line.startswith(("!", "molecule-run:"))]
    return {line.split()[0]: line.split()[1:] for line in lines}


def test_unreachable_archive_skips_jammy_loudly_and_runs_the_debian_scenarios():
    with closed_port() as port:
        done = run("--dry-run", env={"DLV_UBUNTU_MIRROR": f"http://127.0.0.1:{port}/ubuntu"})
    assert done.returncode == 0, done.stderr  # the archive is not promised: not a failure of the suite
    assert (
        done.stdout.count(BANNER) == 2
    )  # at the start and again at the end, where a reader of the log looks
    steps = plan(done.stdout)
    assert steps["site-jammy"] == ["SKIPPED:", "Ubuntu's", "archive", "did", "not", "answer"]
    debian = [id_ for id_, rest in steps.items() if rest[-1:] == ["localhost/dlv-bookworm-systemd"]]
    assert "site" in debian and "cuda" in debian and "nvidia_driver" in debian
    assert not any("dlv-jammy" in " ".join(rest) for rest in steps.values())


def test_reachable_archive_runs_jammy_on_its_own_image_without_a_banner(tmp_path):
    with local_archive(tmp_path) as url:
        done = run("--dry-run", "site", "site-jammy", env={"DLV_UBUNTU_MIRROR": url})
    assert done.returncode == 0, done.stderr
    assert BANNER not in done.stdout
    assert plan(done.stdout) == {
        "site": [".", "site", "localhost/dlv-bookworm-systemd"],
        "site-jammy": [".", "site-jammy", "localhost/dlv-jammy-systemd"],
    }


def test_debian_only_selection_does_not_probe_the_archive():
    with closed_port() as port:
        done = run("--dry-run", "nvidia_driver", env={"DLV_UBUNTU_MIRROR": f"http://127.0.0.1:{port}/ubuntu"})
    assert done.returncode == 0 and BANNER not in done.stdout
    assert plan(done.stdout) == {
        "nvidia_driver": ["roles/nvidia_driver", "default", "localhost/dlv-bookworm-systemd"]
    }


def test_build_image_refuses_an_unknown_platform():
    done = subprocess.run(
        ["bash", str(BUILD_IMAGE), "--platform", "focal"],
        capture_output=True,
        text=True,
        check=False,
        timeout=30,
    )
    assert done.returncode == 2
    assert "--platform must be bookworm or jammy, not 'focal'" in done.stderr


@pytest.mark.skipif(
    os.geteuid() != 0
    or not all(shutil.which(t) for t in ("podman", "debootstrap", "zstd", "curl", "dpkg-deb")),
    reason="build-image.sh needs root and podman/debootstrap/zstd/curl/dpkg-deb",
)
def test_build_image_refuses_an_ubuntu_keyring_with_another_checksum(tmp_path):
    """debootstrap must never trust a keyring that is not Ubuntu's: a tampered ubuntu-keyring is refused."""
    www = tmp_path / "www"
    pool = www / "ubuntu" / "pool" / "main" / "u" / "ubuntu-keyring"
    pool.mkdir(parents=True)
    (pool / "ubuntu-keyring_2021.03.26_all.deb").write_bytes(b"!<arch>\nnot Ubuntu's keyring\n")
    with local_archive(www) as url:
        done = subprocess.run(
            ["bash", str(BUILD_IMAGE), "--platform", "jammy", "--force"],
            capture_output=True,
            text=True,
            check=False,
            timeout=60,
            env={
                **os.environ,
                "DLV_UBUNTU_MIRROR": url,
                "DLV_HARNESS_CACHE": str(tmp_path / "cache"),
                "DLV_JAMMY_IMAGE": "localhost/dlv-test-never-built",
            },
        )
    assert done.returncode == 1, done.stdout + done.stderr
    assert "does not have the sha256" in done.stderr and "refusing it" in done.stderr
    assert not (tmp_path / "cache" / "keyrings" / "ubuntu-archive-keyring.gpg").exists()
    assert "debootstrap: " not in done.stderr  # never got as far as bootstrapping


def test_site_jammy_shares_site_playbooks_and_inventory():
    """One set of playbooks for both platforms; the inventories differ only where the platform needs it."""
    site = yaml.safe_load((REPO / "molecule/site/molecule.yml").read_text())
    jammy = yaml.safe_load((REPO / "molecule/site-jammy/molecule.yml").read_text())
    assert jammy["provisioner"]["playbooks"] == {
        "converge": "../site/converge.yml",
        "side_effect": "../site/side_effect.yml",
        "verify": "../site/verify.yml",
    }
    assert sorted(p.name for p in (REPO / "molecule/site-jammy").glob("*.yml")) == ["molecule.yml"]
    ours, theirs = (s["provisioner"]["inventory"]["group_vars"]["gpu_servers"] for s in (jammy, site))
    platform_only = {"base_ssh_port", "dlv_test_host_packages"}
    assert {k: v for k, v in ours.items() if k not in platform_only} == {
        k: v for k, v in theirs.items() if k not in platform_only
    }
    assert ours["base_ssh_port"] != theirs["base_ssh_port"]  # both hosts share the machine's network
    spec = yaml.safe_load((REPO / "molecule/site-jammy/spec/hwspec-ci-jammy.yaml").read_text())
    assert spec["software"]["os"] == "Ubuntu 22.04"
    assert (
        jammy["scenario"]["test_sequence"].count("check") == 2
    )  # check mode on the bare host, then after base


def test_stand_in_conda_gives_the_env_the_python_asked_for_when_the_host_has_it(tmp_path):
    """Ubuntu 22.04's python3 is 3.10; the site-jammy env asks for 3.11, which Ubuntu ships as python3.11."""
    shim = tmp_path / "bin"
    shim.mkdir()
    (shim / "python3.99").symlink_to(sys.executable)
    conda = REPO / "tools" / "harness" / "standins" / "conda.py"
    env = {**os.environ, "PATH": f"{shim}:{os.environ['PATH']}"}
    target = tmp_path / "envs" / "dl"
    done = subprocess.run(
        [sys.executable, str(conda), "create", "-y", "-p", str(target), "python=3.99"],
        capture_output=True,
        text=True,
        check=False,
        env=env,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert "WARNING" not in done.stderr  # the host has python3.99: no fallback to the base's Python
    cfg = (target / "pyvenv.cfg").read_text()
    assert f"home = {shim}" in cfg  # the venv was made by python3.99, not by the base's interpreter
