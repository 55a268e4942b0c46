#!/usr/bin/env python3
"""The offline, GPG-signed mirror the role tests (and air-gapped users) install from.

NVIDIA's and Anaconda's servers are unreachable where the roles are tested, so this tool builds, on
127.0.0.1, what the roles would otherwise download:

* a flat apt repository like NVIDIA's (``deb [signed-by=KEYRING] URL /``) at
  ``/cuda/repos/{ubuntu2204,debian12}/x86_64/``, signed with a key generated at build time, holding
  stand-in packages with NVIDIA's names and versions. Each says "STAND-IN" in its description and
  carries NVIDIA's real user-space files where PyPI ships them (ptxas, libcudart, libcudnn, headers);
* NVIDIA's libnvidia-container repository (the Container Toolkit) at
  ``/libnvidia-container/stable/deb/amd64/``, stand-ins from ``mirror_containers.py``;
* a stand-in Miniconda installer with its sha256 at ``/miniconda/``;
* optionally a PEP 503 pip index at ``/pypi/simple/`` of wheels put in ``$CACHE/mirror/pip-wheels``.

Usage: mirror.py build [--force] | serve | stop | env | status
Env:   DLV_HARNESS_CACHE (default /var/cache/dlv-harness), DLV_MIRROR_PORT (default 8765)
Exit:  0 ok, 1 the operation failed, 2 usage error or a missing host tool.
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import html
import http.server
import json
import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
import zipfile
from collections.abc import Iterable
from dataclasses import dataclass, field
from email.utils import formatdate
from functools import partial
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))  # the sibling stand-in modules (mirror_containers.py)
import mirror_containers  # noqa: E402

STANDINS = HERE / "standins"
DISTROS = ("ubuntu2204", "debian12")
DRIVER_UPSTREAM = "535.54.03"
# NVIDIA's CUDA repository versions the driver packages X-0ubuntu1 but the fabric manager X-1
# (nvidia-fabricmanager-535_535.183.01-1_amd64.deb next to nvidia-driver-535_535.183.01-0ubuntu1_amd64.deb).
DRIVER_VERSION = f"{DRIVER_UPSTREAM}-0ubuntu1"
FABRICMANAGER_VERSION = f"{DRIVER_UPSTREAM}-1"
# NVIDIA's DCGM 4 and dcgm-exporter packages in the CUDA repository (Debian versions as NVIDIA writes them)
DCGM_VERSION = "1:4.4.1-1"
DCGM_EXPORTER_VERSION = "4.5.0-1"
# Grafana Labs' apt repository (apt.grafana.com): the package `grafana`, Version field as Grafana writes it
GRAFANA_VERSION = "9.4.7"
GRAFANA_STAND_IN_LINE = "STAND-IN built by the dlverify test harness, not Grafana Labs' package."
CUDNN_VERSION = "8.9.2.26-1+cuda12.1"
MINICONDA_NAME = "Miniconda3-py310_23.5.2-0-Linux-x86_64.sh"
MAINTAINER = "dlverify test harness <harness@dlverify.invalid>"
STAND_IN_LINE = "STAND-IN built by the dlverify test harness, not NVIDIA's package."
KEY_UID = "dlverify test mirror (STAND-IN repository key, dlverify test harness) <mirror@dlverify.invalid>"
WHEELS = {
    "nvcc": ("nvidia-cuda-nvcc-cu12", "12.1.105"),
    "cudart": ("nvidia-cuda-runtime-cu12", "12.1.105"),
    "cudnn": ("nvidia-cudnn-cu12", "8.9.2.26"),
}


class MirrorError(Exception):
    """A step failed; the message says which and why."""


def cache_dir() -> Path:
    return Path(os.environ.get("DLV_HARNESS_CACHE", "/var/cache/dlv-harness"))


def mirror_dir() -> Path:
    return cache_dir() / "mirror"


def www_dir() -> Path:
    return mirror_dir() / "www"


def port() -> int:
    raw = os.environ.get("DLV_MIRROR_PORT", "8765")
    if not raw.isdigit() or not 0 < int(raw) < 65536:
        raise MirrorError(f"DLV_MIRROR_PORT={raw!r} is not a TCP port number")
    return int(raw)


def run(cmd: list[str], **kwargs) -> subprocess.CompletedProcess[str]:
    """Run a host tool; turn a failure into a MirrorError that shows its stderr."""
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, check=False, **kwargs)
    except FileNotFoundError as exc:
        raise MirrorError(f"'{cmd[0]}' is not installed (apt-get install dpkg-dev gnupg)") from exc
    if done.returncode != 0:
        raise MirrorError(f"{shlex.join(cmd)} failed ({done.returncode}): {done.stderr.strip()[-800:]}")
    return done


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        for chunk in iter(partial(stream.read, 1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


# --- stand-in Debian packages -----------------------------------------------------------------------


@dataclass
class DebSpec:
    """One stand-in package: control fields plus the files it installs."""

    name: str
    version: str
    summary: str
    arch: str = "amd64"
    depends: list[str] = field(default_factory=list)
    conflicts: list[str] = field(default_factory=list)
    section: str = "multiverse/devel"
    details: str = ""
    files: dict[str, bytes | Path] = field(default_factory=dict)  # absolute path in the package -> content
    modes: dict[str, int] = field(default_factory=dict)
    symlinks: dict[str, str] = field(default_factory=dict)  # absolute link path -> target
    maintainer_scripts: dict[str, str] = field(default_factory=dict)  # postinst/prerm/triggers -> text
    stand_in: bool = True  # False only for the harness's own test packages, which imitate nothing
    stand_in_line: str = STAND_IN_LINE  # names whose package this is not (NVIDIA's, Grafana Labs')

    def control(self, installed_kib: int) -> str:
        lines = [
            f"Package: {self.name}",
            f"Version: {self.version}",
            f"Architecture: {self.arch}",
            f"Maintainer: {MAINTAINER}",
            f"Installed-Size: {max(installed_kib, 1)}",
        ]
        if self.depends:
            lines.append(f"Depends: {', '.join(self.depends)}")
        if self.conflicts:
            lines.append(f"Conflicts: {', '.join(self.conflicts)}")
        lines += [f"Section: {self.section}", "Priority: optional"]
        details = self.details.split("\n") if self.details else []
        body = [self.stand_in_line, *details] if self.stand_in else details or [self.summary]
        lines.append(f"Description: {self.summary}{' (STAND-IN)' if self.stand_in else ''}")
        lines += [f" {line}" if line.strip() else " ." for line in body]
        return "\n".join(lines) + "\n"


def stand_in_note(spec: DebSpec) -> bytes:
    return (
        f"{spec.name} {spec.version}\n{STAND_IN_LINE}\n"
        "It has NVIDIA's package name and version so that provisioning roles can be tested on hosts\n"
        "without NVIDIA's repositories or a GPU. Files from NVIDIA's PyPI wheels are NVIDIA's own;\n"
        "everything else in it is a labelled stand-in.\n"
    ).encode()


def build_deb(spec: DebSpec, out_dir: Path) -> Path:
    """Stage the files of `spec` and build a .deb with dpkg-deb (root-owned, gzip for speed)."""
    with tempfile.TemporaryDirectory(prefix=f"deb-{spec.name}-") as tmp:
        root = Path(tmp)
        files = dict(spec.files)
        if spec.stand_in:
            files.setdefault(f"/usr/share/doc/{spec.name}/STAND-IN", stand_in_note(spec))
        for dest, content in files.items():
            target = root / dest.lstrip("/")
            target.parent.mkdir(parents=True, exist_ok=True)
            if isinstance(content, Path):
                shutil.copyfile(content, target)
            else:
                target.write_bytes(content)
            target.chmod(spec.modes.get(dest, 0o644))
        for link, link_target in spec.symlinks.items():
            path = root / link.lstrip("/")
            path.parent.mkdir(parents=True, exist_ok=True)
            path.symlink_to(link_target)
        size = sum(p.stat().st_size for p in root.rglob("*") if p.is_file() and not p.is_symlink())
        debian = root / "DEBIAN"
        debian.mkdir()
        (debian / "control").write_text(spec.control(size // 1024))
        for script, text in spec.maintainer_scripts.items():
            (debian / script).write_text(text)
            (debian / script).chmod(0o755 if script != "triggers" else 0o644)
        out_dir.mkdir(parents=True, exist_ok=True)
        deb = out_dir / f"{spec.name}_{spec.version.replace(':', '%3a')}_{spec.arch}.deb"
        run(["dpkg-deb", "--root-owner-group", "-Zgzip", "--build", str(root), str(deb)])
    return deb


def wheel_members(wheel: Path, prefix: str) -> dict[str, bytes]:
    """The files under `prefix` in a wheel (a zip), keyed by their path below the prefix."""
    with zipfile.ZipFile(wheel) as zf:
        return {
            info.filename[len(prefix) :]: zf.read(info)
            for info in zf.infolist()
            if info.filename.startswith(prefix)
            and not info.is_dir()
            and not info.filename.endswith("__init__.py")
        }


def daemon_package_files(
    pkg: str, name: str, unit: str, description: str, args: str, unit_text: str | None = None
) -> dict[str, bytes]:
    """A stand-in daemon and its unit: the generic template, or `unit_text` (a copy of the real unit)."""

    def fill(template: str) -> bytes:
        for key, value in {
            "@NAME@": name,
            "@UNIT@": unit,
            "@DESCRIPTION@": description,
            "@PACKAGE@": pkg,
            "@ARGS@": args,
            "@FORKS@": "yes",  # the generic unit and NVIDIA's real daemons are Type=forking
        }.items():
            template = template.replace(key, value)
        return template.encode()

    return {
        f"/usr/bin/{name}": fill((STANDINS / "daemon.sh.in").read_text()),
        f"/lib/systemd/system/{unit}": (
            unit_text.encode()
            if unit_text is not None
            else fill((STANDINS / "daemon.service.in").read_text())
        ),
    }


def package_specs(wheels: dict[str, Path], keyring: bytes) -> list[DebSpec]:
    """Every stand-in package of the repository."""
    v = DRIVER_VERSION
    nvcc = wheel_members(wheels["nvcc"], "nvidia/cuda_nvcc/")
    cudart = wheel_members(wheels["cudart"], "nvidia/cuda_runtime/")
    cudnn = wheel_members(wheels["cudnn"], "nvidia/cudnn/")

    toolkit_root = "/usr/local/cuda-12.1"
    toolkit_files: dict[str, bytes | Path] = {
        f"{toolkit_root}/bin/ptxas": nvcc["bin/ptxas"],
        f"{toolkit_root}/bin/nvcc": (STANDINS / "nvcc").read_bytes(),
        f"{toolkit_root}/lib64/libcudart.so.12.1.105": cudart["lib/libcudart.so.12"],
        f"{toolkit_root}/DLVERIFY-STAND-IN": STAND_IN_LINE.encode() + b"\n",
        "/etc/ld.so.conf.d/988_cuda-12-1.conf": f"{toolkit_root}/lib64\n".encode(),
        f"{toolkit_root}/version.json": json.dumps(
            {
                "cuda": {"name": "CUDA SDK", "version": "12.1.1"},
                "cuda_cudart": {"name": "CUDA Runtime (cudart)", "version": WHEELS["cudart"][1]},
                "cuda_nvcc": {"name": "CUDA NVCC", "version": WHEELS["nvcc"][1]},
                "dlverify_stand_in": "versions of the NVIDIA PyPI wheels this stand-in was built from",
            },
            indent=3,
        ).encode()
        + b"\n",
    }
    for rel, content in {**cudart, **nvcc}.items():
        if rel.startswith("include/"):
            toolkit_files[f"{toolkit_root}/{rel}"] = content
    toolkit = DebSpec(
        "cuda-toolkit-12-1",
        "12.1.1-1",
        "CUDA Toolkit 12.1 meta-package",
        details="Carries NVIDIA's ptxas, libcudart and headers from the PyPI wheels\n"
        "nvidia-cuda-nvcc-cu12==12.1.105 and nvidia-cuda-runtime-cu12==12.1.105; bin/nvcc is a\n"
        "labelled stand-in that reports ptxas's version and cannot compile.",
        files=toolkit_files,
        modes={f"{toolkit_root}/bin/ptxas": 0o755, f"{toolkit_root}/bin/nvcc": 0o755},
        symlinks={
            f"{toolkit_root}/lib64/libcudart.so.12": "libcudart.so.12.1.105",
            f"{toolkit_root}/lib64/libcudart.so": "libcudart.so.12",
        },
        maintainer_scripts={
            "postinst": "#!/bin/sh\nset -e\n"
            "update-alternatives --install /usr/local/cuda cuda /usr/local/cuda-12.1 121\n"
            "update-alternatives --install /usr/local/cuda-12 cuda-12 /usr/local/cuda-12.1 121\n",
            "prerm": '#!/bin/sh\nset -e\nif [ "$1" = remove ]; then\n'
            "  update-alternatives --remove cuda /usr/local/cuda-12.1\n"
            "  update-alternatives --remove cuda-12 /usr/local/cuda-12.1\nfi\n",
            "triggers": "activate-noawait ldconfig\n",
        },
    )

    libdir = "/usr/lib/x86_64-linux-gnu"
    libcudnn = DebSpec(
        "libcudnn8",
        CUDNN_VERSION,
        "cuDNN runtime libraries",
        section="multiverse/libs",
        details="Carries NVIDIA's libcudnn.so.8 (the dispatcher library only) from\n"
        "nvidia-cudnn-cu12==8.9.2.26.",
        files={f"{libdir}/libcudnn.so.8.9.2": cudnn["lib/libcudnn.so.8"]},
        symlinks={f"{libdir}/libcudnn.so.8": "libcudnn.so.8.9.2"},
        maintainer_scripts={"triggers": "activate-noawait ldconfig\n"},
    )
    libcudnn_dev = DebSpec(
        "libcudnn8-dev",
        CUDNN_VERSION,
        "cuDNN development headers and symlinks",
        section="multiverse/libdevel",
        depends=[f"libcudnn8 (= {CUDNN_VERSION})"],
        details="Carries NVIDIA's cuDNN 8.9.2 headers (cudnn.h, cudnn_version.h, ...) from\n"
        "nvidia-cudnn-cu12==8.9.2.26.",
        files={
            f"/usr/include/{rel[len('include/') :]}": content
            for rel, content in cudnn.items()
            if rel.startswith("include/") and not rel.endswith("_v8.h")
        },
        symlinks={f"{libdir}/libcudnn.so": "libcudnn.so.8"},
    )

    def driver(flavour: str) -> list[DebSpec]:
        other = "" if flavour else "-open"
        return [
            DebSpec(
                f"nvidia-driver-535{flavour}",
                v,
                f"NVIDIA driver metapackage{' (open kernel modules)' if flavour else ''}",
                section="restricted/libs",
                depends=[
                    f"nvidia-dkms-535{flavour} (= {v})",
                    f"nvidia-utils-535 (= {v})",
                    f"nvidia-compute-utils-535 (= {v})",
                    f"libnvidia-compute-535 (= {v})",
                ],
                conflicts=[f"nvidia-driver-535{other}"],
            ),
            DebSpec(
                f"nvidia-dkms-535{flavour}",
                v,
                f"NVIDIA DKMS package{' (open kernel modules)' if flavour else ''}",
                section="restricted/kernel",
                details="Builds no kernel module.",
                conflicts=[f"nvidia-dkms-535{other}"],
            ),
        ]

    return [
        DebSpec(
            "cuda-keyring",
            "1.1-1",
            "GPG keyring for the CUDA repository",
            arch="all",
            section="multiverse/misc",
            details="Ships this test mirror's signing key as cuda-archive-keyring.gpg; no sources list.",
            files={"/usr/share/keyrings/cuda-archive-keyring.gpg": keyring},
        ),
        *driver(""),
        *driver("-open"),
        DebSpec(
            "nvidia-utils-535",
            v,
            "NVIDIA driver support binaries",
            section="restricted/utils",
            details="No nvidia-smi: there is no GPU on a test host.",
        ),
        DebSpec(
            "nvidia-compute-utils-535",
            v,
            "NVIDIA compute utilities",
            section="restricted/utils",
            details="Ships a stand-in nvidia-persistenced, which runs a labelled do-nothing process,\n"
            "and a byte-for-byte copy of the real nvidia-persistenced.service (static,\n"
            "StopWhenUnneeded=true, ExecStart with --no-persistence-mode).",
            files=daemon_package_files(
                "nvidia-compute-utils-535",
                "nvidia-persistenced",
                "nvidia-persistenced.service",
                "NVIDIA Persistence Daemon",
                "",
                unit_text=(STANDINS / "nvidia-persistenced.service").read_text(),
            ),
            modes={"/usr/bin/nvidia-persistenced": 0o755},
        ),
        DebSpec(
            "libnvidia-compute-535",
            v,
            "NVIDIA libcompute package",
            section="restricted/libs",
            details="Carries no libcuda or libnvidia-ml: there is no GPU on a test host.",
        ),
        DebSpec(
            "nvidia-fabricmanager-535",
            FABRICMANAGER_VERSION,
            "Fabric Manager for NVSwitch based systems",
            section="restricted/utils",
            details="Ships a stand-in nv-fabricmanager and nvidia-fabricmanager.service, which run a\n"
            "labelled do-nothing process.",
            files=daemon_package_files(
                "nvidia-fabricmanager-535",
                "nv-fabricmanager",
                "nvidia-fabricmanager.service",
                "NVIDIA fabric manager service",
                "-c /usr/share/nvidia/nvswitch/fabricmanager.cfg",
            ),
            modes={"/usr/bin/nv-fabricmanager": 0o755},
        ),
        toolkit,
        libcudnn,
        libcudnn_dev,
        *dcgm_specs(),
    ]


def dcgm_specs() -> list[DebSpec]:
    """DCGM 4 (nv-hostengine, nvidia-dcgm.service) and dcgm-exporter (nvidia-dcgm-exporter.service) as
    NVIDIA's packages lay them out: units, binaries, /etc/dcgm-exporter/default-counters.csv; the
    daemons idle."""
    core = daemon_package_files(
        "datacenter-gpu-manager-4-core",
        "nv-hostengine",
        "nvidia-dcgm.service",
        "NVIDIA DCGM service",
        "-n --service-account nvidia-dcgm",
    )
    exporter = daemon_package_files(
        "datacenter-gpu-manager-exporter",
        "dcgm-exporter",
        "nvidia-dcgm-exporter.service",
        "NVIDIA DCGM-exporter service",
        "-f /etc/dcgm-exporter/default-counters.csv",
    )
    exporter["/etc/dcgm-exporter/default-counters.csv"] = (
        STANDINS / "dcgm-default-counters.csv"
    ).read_bytes()
    return [
        DebSpec(
            "datacenter-gpu-manager-4-core",
            DCGM_VERSION,
            "NVIDIA Datacenter GPU Manager (core)",
            section="multiverse/devel",
            details="Ships a stand-in nv-hostengine and nvidia-dcgm.service, which run a labelled\n"
            "do-nothing process. No libdcgm.",
            files=core,
            modes={"/usr/bin/nv-hostengine": 0o755},
        ),
        DebSpec(
            "datacenter-gpu-manager-exporter",
            DCGM_EXPORTER_VERSION,
            "NVIDIA DCGM exporter for Prometheus",
            depends=["datacenter-gpu-manager-4-core (>= 1:4)"],
            section="multiverse/devel",
            details="Ships a stand-in dcgm-exporter, nvidia-dcgm-exporter.service and NVIDIA's\n"
            "default-counters.csv layout; the stand-in serves no metrics.",
            files=exporter,
            modes={"/usr/bin/dcgm-exporter": 0o755},
        ),
    ]


def grafana_spec() -> DebSpec:
    """Grafana 9.4.7 as Grafana Labs' deb lays it out: grafana-server.service (EnvironmentFile
    /etc/default/grafana-server, User grafana), /etc/grafana/grafana.ini, /etc/grafana/provisioning/, the
    grafana user from postinst. The server is a labelled idle process: it serves no HTTP."""

    def text(name: str) -> bytes:
        return (STANDINS / name).read_bytes()

    note = (
        f"grafana {GRAFANA_VERSION}\n{GRAFANA_STAND_IN_LINE}\nIt has Grafana's package name, version, "
        "unit and config paths so that the monitoring role can be tested without apt.grafana.com.\n"
    ).encode()
    server = (
        text("daemon.sh.in")
        .replace(b"@NAME@", b"grafana-server")
        .replace(b"@UNIT@", b"grafana-server.service")
        .replace(b"@FORKS@", b"no")  # Grafana's unit is Type=simple: the server runs in the foreground
    )
    server = server.replace(b"NOT NVIDIA's daemon", b"NOT Grafana Labs' server").replace(
        b"no GPU here", b"no web UI"
    )
    return DebSpec(
        "grafana",
        GRAFANA_VERSION,
        "Grafana",
        depends=["adduser"],
        section="default",
        details="The server is a labelled do-nothing process; the unit, /etc/default/grafana-server,\n"
        "/etc/grafana and the grafana user are laid out as in Grafana's package.",
        stand_in_line=GRAFANA_STAND_IN_LINE,
        files={
            "/usr/share/doc/grafana/STAND-IN": note,
            "/usr/sbin/grafana-server": server,
            "/lib/systemd/system/grafana-server.service": text("grafana-server.service"),
            "/etc/default/grafana-server": text("grafana-server.default"),
            "/etc/grafana/grafana.ini": b"; STAND-IN grafana.ini from the dlverify test harness\n",
            "/etc/grafana/provisioning/datasources/.keep": b"",
            "/etc/grafana/provisioning/dashboards/.keep": b"",
            "/usr/share/grafana/conf/defaults.ini": b"; STAND-IN defaults.ini (dlverify test harness)\n",
        },
        modes={"/usr/sbin/grafana-server": 0o755},
        maintainer_scripts={
            "postinst": "#!/bin/sh\nset -e\n"
            'if [ "$1" = configure ]; then\n'
            "  getent group grafana >/dev/null || addgroup --system grafana\n"
            "  getent passwd grafana >/dev/null || adduser --system --home /usr/share/grafana "
            "--no-create-home --ingroup grafana --disabled-login grafana\n"
            "  mkdir -p /var/lib/grafana /var/log/grafana\n"
            "  chown grafana:grafana /var/lib/grafana /var/log/grafana\n"
            "  chmod 755 /var/lib/grafana /var/log/grafana\n"
            "  chgrp grafana /etc/grafana/grafana.ini && chmod 640 /etc/grafana/grafana.ini\n"
            "fi\n",
        },
    )


HARNESS_TEST_PACKAGES = ("dlv-holdtest", "dlv-test-pinned", "dlv-test-free")


def harness_test_specs() -> list[DebSpec]:
    """Tiny packages in versions 1.0 and 2.0, for tests of upgrade policy (holds, blacklists).

    Not stand-ins for anything: a role test installs 1.0, holds or blacklists it, and checks what
    apt and unattended-upgrades do with the 2.0 on offer.
    """
    return [
        DebSpec(
            name,
            version,
            f"dlverify harness test package {name}",
            arch="all",
            section="misc",
            details="Exists only to test upgrade policy (apt-mark hold, Package-Blacklist).",
            stand_in=False,
        )
        for name in HARNESS_TEST_PACKAGES
        for version in ("1.0", "2.0")
    ]


# Ubuntu's jammy-updates turned every *-535 driver package into a transitional one that depends on its *-580
# namesake (issue 11): what a branch-only pin or nvidia_driver_source=distro meets on a real jammy host.
UBUNTU_TRANSITIONAL_VERSION = "535.309.01-0ubuntu0.22.04.2"
UBUNTU_580_VERSION = "580.95.05-0ubuntu0.22.04.1"
UBUNTU_DRIVER_PACKAGES = (
    "nvidia-driver-{}",
    "nvidia-dkms-{}",
    "nvidia-utils-{}",
    "nvidia-compute-utils-{}",
    "libnvidia-compute-{}",
    "nvidia-fabricmanager-{}",
)


def ubuntu_archive_specs() -> list[DebSpec]:
    """Stand-ins for Ubuntu's archive as it is now: transitional *-535 packages pointing at the 580 branch."""
    specs = []
    for pattern in UBUNTU_DRIVER_PACKAGES:
        new, old = pattern.format("580"), pattern.format("535")
        specs.append(
            DebSpec(
                new,
                UBUNTU_580_VERSION,
                f"{new} (the 580 driver branch)",
                section="restricted/libs",
                details="Empty: stands for the branch Ubuntu's transitional 535 packages pull in.",
            )
        )
        specs.append(
            DebSpec(
                old,
                UBUNTU_TRANSITIONAL_VERSION,
                f"Transitional package for {new}",
                section="restricted/oldlibs",
                depends=[f"{new} (>= 580)"],
                details=f"This is a transitional package: installing it installs {new}.",
            )
        )
    return specs


# Second versions, so that the roles can be moved up and down (issue 11): NVIDIA's repository holds every
# release of a branch side by side, and a spec change in either direction must converge. The driver's newer
# 535 (the newest a branch-only pin takes), CUDA 12.1's first release, and cuDNN 8.9.7 and the CUDA 11 builds
# with the "+cuda" suffixes NVIDIA really publishes, read from the same data lint and the role use.
DRIVER_UPSTREAM_NEWER = "535.104.05"
CUDA_TOOLKIT_OLDER = "12.1.0-1"
CUDNN_DATA = HERE.parent.parent / "hwspec" / "data" / "cudnn.yaml"
# cuDNN release -> its full build number in NVIDIA's repository (libcudnn8_8.9.7.29-1+cuda12.2_amd64.deb)
CUDNN_STAND_IN_BUILDS = {"8.9.2": "8.9.2.26", "8.9.7": "8.9.7.29"}


def cudnn_suffixes() -> dict[str, dict[str, str]]:
    """``apt_builds`` of hwspec/data/cudnn.yaml: cuDNN release -> {CUDA major: the +cuda suffix's M.N}."""
    try:
        import yaml
    except ImportError as exc:  # Debian: python3-yaml
        raise MirrorError(
            "mirror: reading hwspec/data/cudnn.yaml needs PyYAML (apt-get install python3-yaml)"
        ) from exc
    data = yaml.safe_load(CUDNN_DATA.read_text())
    return {str(k): {str(m): str(b) for m, b in v.items()} for k, v in data["apt_builds"].items()}


def cudnn_version_header(release: str) -> bytes:
    major, minor, patch = release.split(".")
    return (
        f"/* {STAND_IN_LINE} cuDNN {release}'s version numbers only. */\n"
        f"#define CUDNN_MAJOR {major}\n#define CUDNN_MINOR {minor}\n#define CUDNN_PATCHLEVEL {patch}\n"
        "#define CUDNN_VERSION (CUDNN_MAJOR * 1000 + CUDNN_MINOR * 100 + CUDNN_PATCHLEVEL)\n"
    ).encode()


CUDA_TOOLKIT_OTHER_MINOR = ("12.2", "12.2.2-1")


def other_minor_toolkit(toolkit: DebSpec) -> DebSpec:
    """cuda-toolkit-12-2 12.2.2-1: the 12.1 stand-in moved to /usr/local/cuda-12.2 (its ld.so.conf.d entry and
    alternatives too), for the test that a CUDA minor change leaves no old toolkit behind. Same NVIDIA files
    (ptxas says 12.1); version.json says 12.2.2."""
    from dataclasses import replace

    minor, version = CUDA_TOOLKIT_OTHER_MINOR
    dashed, prio = minor.replace(".", "-"), minor.replace(".", "")

    def move(text: str) -> str:
        return (
            text.replace("cuda-12.1", f"cuda-{minor}")
            .replace("cuda-12-1", f"cuda-{dashed}")
            .replace(" 121", f" {prio}")
        )

    files: dict[str, bytes | Path] = {}
    for path, content in toolkit.files.items():
        if path.endswith("/version.json") and isinstance(content, bytes):
            doc = json.loads(content)
            doc["cuda"]["version"] = version.split("-")[0]
            content = json.dumps(doc, indent=3).encode() + b"\n"
        elif path.endswith(".conf") and isinstance(content, bytes):
            content = move(content.decode()).encode()
        files[move(path)] = content
    return replace(
        toolkit,
        name=f"cuda-toolkit-{dashed}",
        version=version,
        summary=f"CUDA Toolkit {minor} meta-package",
        details=toolkit.details
        + f"\nA second minor for the harness: the 12.1 stand-in's files under cuda-{minor}.",
        files=files,
        modes={move(k): v for k, v in toolkit.modes.items()},
        symlinks={move(k): v for k, v in toolkit.symlinks.items()},
        maintainer_scripts={k: move(v) for k, v in toolkit.maintainer_scripts.items()},
    )


def second_version_specs(specs: list[DebSpec]) -> list[DebSpec]:
    """Copies of `specs` (package_specs) at the other versions: driver 535.104.05 (each package, with its
    exact dependencies), cuda-toolkit-12-1 12.1.0-1, and libcudnn8/-dev for every (release, CUDA major) of
    CUDNN_STAND_IN_BUILDS with the data's suffix. The copies carry the same NVIDIA files as the originals
    (the 12.1.1 toolkit's, cuDNN 8.9.2's library); version.json and cudnn_version.h say their own version."""
    from dataclasses import replace

    out: list[DebSpec] = []
    for spec in specs:
        if spec.version in (DRIVER_VERSION, FABRICMANAGER_VERSION):
            out.append(
                replace(
                    spec,
                    version=spec.version.replace(DRIVER_UPSTREAM, DRIVER_UPSTREAM_NEWER),
                    depends=[d.replace(DRIVER_UPSTREAM, DRIVER_UPSTREAM_NEWER) for d in spec.depends],
                )
            )
        elif spec.name == "cuda-toolkit-12-1":
            files = dict(spec.files)
            version_json = "/usr/local/cuda-12.1/version.json"
            current = files[version_json]
            doc = json.loads(current if isinstance(current, bytes) else current.read_bytes())
            doc["cuda"]["version"] = CUDA_TOOLKIT_OLDER.split("-")[0]
            files[version_json] = json.dumps(doc, indent=3).encode() + b"\n"
            out.append(replace(spec, version=CUDA_TOOLKIT_OLDER, files=files))
            out.append(other_minor_toolkit(spec))
    base = {s.name: s for s in specs if s.name in ("libcudnn8", "libcudnn8-dev")}
    suffixes = cudnn_suffixes()
    libdir = "/usr/lib/x86_64-linux-gnu"
    for release, build in CUDNN_STAND_IN_BUILDS.items():
        for major, suffix in sorted(suffixes[release].items()):
            version = f"{build}-1+cuda{suffix}"
            if version == CUDNN_VERSION:
                continue  # package_specs has it
            lib, dev = base["libcudnn8"], base["libcudnn8-dev"]
            so = lib.files[f"{libdir}/libcudnn.so.8.9.2"]
            note = f"\nA second version for the harness: cuDNN {build} for CUDA {major}.x with 8.9.2's files."
            out.append(
                replace(
                    lib,
                    version=version,
                    details=lib.details + note,
                    files={f"{libdir}/libcudnn.so.{release}": so},
                    symlinks={f"{libdir}/libcudnn.so.8": f"libcudnn.so.{release}"},
                )
            )
            dev_files = dict(dev.files)
            if release != WHEELS["cudnn"][1].rsplit(".", 1)[0]:
                dev_files["/usr/include/cudnn_version.h"] = cudnn_version_header(release)
            out.append(
                replace(
                    dev,
                    version=version,
                    depends=[f"libcudnn8 (= {version})"],
                    details=dev.details + note + " cudnn_version.h says its own version.",
                    files=dev_files,
                )
            )
    return out


# --- the signed flat repository -----------------------------------------------------------------------


CUDA_ORIGIN = ("dlverify-mirror", "dlverify stand-in CUDA repository (STAND-IN, not NVIDIA's)")
GRAFANA_ORIGIN = ("dlverify-mirror", "dlverify stand-in Grafana repository (STAND-IN, not Grafana Labs')")
HARNESS_ORIGIN = ("dlverify-harness", "dlverify harness test packages (hold and blacklist tests)")
UBUNTU_ORIGIN = ("Ubuntu", "dlverify stand-in of Ubuntu's jammy-updates restricted (STAND-IN, not Ubuntu's)")


def release_text(
    repo: Path, files: Iterable[str], date: float | None = None, origin: tuple[str, str] = CUDA_ORIGIN
) -> str:
    """A flat repository's Release file: what apt verifies (via InRelease) before trusting Packages."""
    lines = [
        f"Origin: {origin[0]}",
        f"Label: {origin[1]}",
        "Architectures: amd64 all",
        f"Date: {formatdate(date if date is not None else time.time(), usegmt=True)}",
        "Acquire-By-Hash: no",
    ]
    for field_name, algo in (("MD5Sum", "md5"), ("SHA256", "sha256")):
        lines.append(f"{field_name}:")
        for name in files:
            data = (repo / name).read_bytes()
            lines.append(f" {hashlib.new(algo, data).hexdigest()} {len(data):>16} {name}")
    return "\n".join(lines) + "\n"


class Gpg:
    """The mirror's signing key, in a GnuPG home of its own under the cache dir."""

    def __init__(self, home: Path) -> None:
        self.home = home

    def _gpg(self, *args: str, **kwargs) -> subprocess.CompletedProcess[str]:
        return run(["gpg", "--homedir", str(self.home), "--batch", "--yes", "--no-tty", *args], **kwargs)

    def close(self) -> None:
        """Stop the gpg-agent that signing started, so no daemon outlives the build."""
        subprocess.run(
            ["gpgconf", "--homedir", str(self.home), "--kill", "gpg-agent"],
            capture_output=True,
            check=False,
        )

    def fingerprint(self) -> str | None:
        if not self.home.is_dir():
            return None
        out = subprocess.run(
            ["gpg", "--homedir", str(self.home), "--batch", "--with-colons", "--list-secret-keys"],
            capture_output=True,
            text=True,
            check=False,
        ).stdout
        fprs = [line.split(":")[9] for line in out.splitlines() if line.startswith("fpr:")]
        return fprs[0] if fprs else None

    def ensure_key(self) -> str:
        existing = self.fingerprint()
        if existing:
            return existing
        self.home.mkdir(parents=True, exist_ok=True)
        self.home.chmod(0o700)
        self._gpg(
            "--passphrase",
            "",
            "--pinentry-mode",
            "loopback",
            "--quick-gen-key",
            KEY_UID,
            "rsa3072",
            "sign",
            "never",
        )
        made = self.fingerprint()
        if not made:
            raise MirrorError(f"gpg made no key in {self.home}")
        return made

    def export(self, armor: bool) -> bytes:
        cmd = ["gpg", "--homedir", str(self.home), "--batch", "--export", *(["--armor"] if armor else [])]
        done = subprocess.run(cmd, capture_output=True, check=False)
        if done.returncode != 0 or not done.stdout:
            raise MirrorError(f"gpg --export failed: {done.stderr.decode(errors='replace')}")
        return done.stdout

    def sign(self, release: Path) -> None:
        fpr = self.ensure_key()
        common = ["--local-user", fpr, "--digest-algo", "SHA256"]
        self._gpg(*common, "--clearsign", "-o", str(release.parent / "InRelease"), str(release))
        self._gpg(
            *common, "--armor", "--detach-sign", "-o", str(release.parent / "Release.gpg"), str(release)
        )


def key_fingerprints(key_file: Path) -> list[str]:
    """The fingerprints of the primary keys in an OpenPGP key file, as the cuda role reads them.

    ``gpg --show-keys`` in a throwaway home: the key is read, never imported.
    """
    with tempfile.TemporaryDirectory(prefix="dlv-gpg.") as home:
        done = subprocess.run(
            ["gpg", "--homedir", home, "--batch", "--quiet", "--with-colons", "--show-keys", str(key_file)],
            capture_output=True,
            text=True,
            check=False,
        )
    if done.returncode != 0:
        raise MirrorError(f"gpg cannot read the key {key_file}: {done.stderr.strip()}")
    fingerprints: list[str] = []
    primary = False
    for line in done.stdout.splitlines():
        fields = line.split(":")
        if fields[0] == "fpr" and primary:
            fingerprints.append(fields[9])
        primary = fields[0] == "pub"
    return fingerprints


def write_flat_repo(repo: Path, gpg: Gpg, origin: tuple[str, str] = CUDA_ORIGIN) -> None:
    """Index and sign the .debs in `repo`: Packages(.gz), Release, InRelease, Release.gpg."""
    packages = run(["dpkg-scanpackages", "--multiversion", ".", "/dev/null"], cwd=repo).stdout
    if not packages.strip():
        raise MirrorError(f"dpkg-scanpackages found no package in {repo}")
    (repo / "Packages").write_text(packages)
    with gzip.GzipFile(repo / "Packages.gz", "wb", mtime=0) as stream:
        stream.write(packages.encode())
    (repo / "Release").write_text(release_text(repo, ["Packages", "Packages.gz"], origin=origin))
    gpg.sign(repo / "Release")


# --- wheels, the Miniconda stand-in and the pip index ----------------------------------------------------


def fetch_wheels() -> dict[str, Path]:
    """NVIDIA's wheels from PyPI, downloaded once into $CACHE/wheels with pip."""
    wheel_dir = cache_dir() / "wheels"
    wheel_dir.mkdir(parents=True, exist_ok=True)
    found: dict[str, Path] = {}
    missing: list[str] = []
    for key, (dist, version) in WHEELS.items():
        pattern = f"{dist.replace('-', '_')}-{version}-*.whl"
        hits = sorted(wheel_dir.glob(pattern))
        if hits:
            found[key] = hits[0]
        else:
            missing.append(f"{dist}=={version}")
    if missing:
        print(f"mirror: downloading {', '.join(missing)} from PyPI into {wheel_dir}", flush=True)
        run(
            [
                sys.executable,
                "-m",
                "pip",
                "download",
                "--no-deps",
                "--only-binary=:all:",
                "--progress-bar",
                "off",
                "--platform",
                "manylinux1_x86_64",
                "--python-version",
                "3.10",
                "-d",
                str(wheel_dir),
                *missing,
            ]
        )
        return fetch_wheels()
    return found


def miniconda_installer() -> bytes:
    template = (STANDINS / "miniconda-installer.sh.in").read_text()
    conda = (STANDINS / "conda.py").read_text()
    conda_body = conda.split("\n", 1)[1] if conda.startswith("#!") else conda
    if "__DLV_STANDIN_CONDA_EOF__" in conda_body:
        raise MirrorError("standins/conda.py contains the installer's heredoc terminator")
    return (
        template.replace("@INSTALLER_NAME@", MINICONDA_NAME)
        .replace("@CONDA_PY@", conda_body.rstrip("\n"))
        .encode()
    )


def normalize(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def write_pip_index(wheel_dir: Path, index_dir: Path) -> int:
    """A PEP 503 simple index of the wheels in `wheel_dir`; returns how many projects it lists."""
    projects: dict[str, list[Path]] = {}
    for wheel in sorted(wheel_dir.glob("*.whl")):
        projects.setdefault(normalize(wheel.name.split("-")[0]), []).append(wheel)
    shutil.rmtree(index_dir, ignore_errors=True)
    index_dir.mkdir(parents=True)
    links = []
    for project, wheels in sorted(projects.items()):
        (index_dir / project).mkdir()
        rows = []
        for wheel in wheels:
            target = index_dir / project / wheel.name
            if wheel.stat().st_dev == index_dir.stat().st_dev:
                os.link(wheel, target)
            else:
                shutil.copy(wheel, target)
            name = html.escape(wheel.name)
            rows.append(f'<a href="{name}#sha256={sha256_file(wheel)}">{name}</a><br>')
        (index_dir / project / "index.html").write_text(
            f"<!DOCTYPE html><html><body><h1>Links for {project}</h1>\n"
            + "\n".join(rows)
            + "\n</body></html>\n"
        )
        links.append(f'<a href="{project}/">{project}</a><br>')
    (index_dir / "index.html").write_text(
        "<!DOCTYPE html><html><body>\n" + "\n".join(links) + "\n</body></html>\n"
    )
    return len(projects)


# --- build -----------------------------------------------------------------------------------------------


def inputs_hash(wheels: dict[str, Path]) -> str:
    digest = hashlib.sha256()
    sources = [Path(__file__).resolve(), CUDNN_DATA, Path(mirror_containers.__file__)]
    for path in [*sources, *sorted(STANDINS.iterdir())]:
        digest.update(path.name.encode() + path.read_bytes())
    for key in sorted(wheels):
        digest.update(wheels[key].name.encode())
    pip_wheels = mirror_dir() / "pip-wheels"
    if pip_wheels.is_dir():
        for wheel in sorted(pip_wheels.glob("*.whl")):
            digest.update(wheel.name.encode())
    return digest.hexdigest()[:16]


def build(force: bool) -> int:
    for tool in ("dpkg-deb", "dpkg-scanpackages", "gpg"):
        if not shutil.which(tool):
            print(f"mirror: '{tool}' is missing (apt-get install dpkg-dev gnupg)", file=sys.stderr)
            return 2
    start = time.monotonic()
    wheels = fetch_wheels()
    stamp = www_dir() / ".build-stamp"
    want = inputs_hash(wheels)
    if not force and stamp.is_file() and stamp.read_text().strip() == want:
        print(f"mirror: {www_dir()} is up to date (inputs {want})")
        return 0
    users = live_users()
    if users and serving_pid():
        # Swapping the tree under a running test would mix old indexes with new packages.
        print(
            f"mirror: the inputs changed but the mirror is in use by runner(s) {', '.join(map(str, users))}; "
            "build again when they are done",
            file=sys.stderr,
        )
        return 1
    gpg = Gpg(mirror_dir() / "gnupg")
    gpg.ensure_key()
    staging = Path(tempfile.mkdtemp(prefix="www.", dir=mirror_dir()))
    try:
        keys = staging / "keys"
        keys.mkdir()
        (keys / "dlv-mirror.asc").write_bytes(gpg.export(armor=True))
        keyring = gpg.export(armor=False)
        (keys / "dlv-mirror.gpg").write_bytes(keyring)

        pool = staging / "pool"
        specs = package_specs(wheels, keyring)
        debs = [build_deb(spec, pool) for spec in specs + second_version_specs(specs)]
        for distro in DISTROS:
            repo = staging / "cuda" / "repos" / distro / "x86_64"
            repo.mkdir(parents=True)
            for deb in debs:
                os.link(deb, repo / deb.name)
            write_flat_repo(repo, gpg)
        shutil.rmtree(pool)

        archive_repo = staging / "ubuntu-archive"
        for spec in ubuntu_archive_specs():
            build_deb(spec, archive_repo)
        write_flat_repo(archive_repo, gpg, origin=UBUNTU_ORIGIN)
        grafana_repo = staging / "grafana" / "deb"
        build_deb(grafana_spec(), grafana_repo)
        write_flat_repo(grafana_repo, gpg, origin=GRAFANA_ORIGIN)
        toolkit_repo = staging / mirror_containers.TOOLKIT_REPO_PATH
        for spec in mirror_containers.toolkit_specs(DebSpec):
            build_deb(spec, toolkit_repo)
        write_flat_repo(toolkit_repo, gpg, origin=mirror_containers.TOOLKIT_ORIGIN)

        harness_repo = staging / "harness"
        for spec in harness_test_specs():
            build_deb(spec, harness_repo)
        write_flat_repo(harness_repo, gpg, origin=HARNESS_ORIGIN)

        conda_dir = staging / "miniconda"
        conda_dir.mkdir()
        installer = conda_dir / MINICONDA_NAME
        installer.write_bytes(miniconda_installer())
        installer.chmod(0o755)
        (conda_dir / f"{MINICONDA_NAME}.sha256").write_text(f"{sha256_file(installer)}  {MINICONDA_NAME}\n")

        pip_wheels = mirror_dir() / "pip-wheels"
        if pip_wheels.is_dir() and any(pip_wheels.glob("*.whl")):
            count = write_pip_index(pip_wheels, staging / "pypi" / "simple")
            print(f"mirror: pip index of {count} project(s) from {pip_wheels}")

        (staging / ".build-stamp").write_text(want + "\n")
        staging.chmod(0o755)
        old = mirror_dir() / "www.old"
        shutil.rmtree(old, ignore_errors=True)
        if www_dir().exists():
            www_dir().rename(old)
        staging.rename(www_dir())
        shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    finally:
        gpg.close()
    print(
        f"mirror: built {len(debs)} signed stand-in packages for {', '.join(DISTROS)}, the harness test "
        f"repo and the Miniconda stand-in in {time.monotonic() - start:.1f}s -> {www_dir()}"
    )
    return 0


# --- serve / stop / env ----------------------------------------------------------------------------------


def pid_file() -> Path:
    return mirror_dir() / "serve.pid"


def url() -> str:
    return f"http://127.0.0.1:{port()}"


def serving_pid() -> int | None:
    """The pid of our running server, if the pid file names a live mirror.py process."""
    try:
        pid = int(pid_file().read_text().split()[0])
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except (OSError, ValueError, IndexError):
        return None
    return pid if b"mirror.py" in cmdline and b"_serve" in cmdline else None


def answers(timeout: float = 1.0) -> bool:
    try:
        with urllib.request.urlopen(f"{url()}/keys/dlv-mirror.asc", timeout=timeout) as resp:
            return resp.status == 200
    except OSError:
        return False


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        sys.stderr.write(f"{self.log_date_time_string()} {self.address_string()} {format % args}\n")


def _stop_serving(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def serve_foreground() -> int:
    handler = partial(QuietHandler, directory=str(www_dir()))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", port()), handler)
    signal.signal(signal.SIGTERM, _stop_serving)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0


def users_dir() -> Path:
    return mirror_dir() / "users"


def live_users() -> list[int]:
    """Pids of the runners that said they use the server (`serve --user PID`) and still run."""
    live = []
    for entry in users_dir().glob("*") if users_dir().is_dir() else []:
        if entry.name.isdigit() and Path(f"/proc/{entry.name}").exists():
            live.append(int(entry.name))
        else:
            entry.unlink(missing_ok=True)
    return sorted(live)


def serve(user: int | None = None) -> int:
    if user is not None:
        users_dir().mkdir(parents=True, exist_ok=True)
        (users_dir() / str(user)).touch()
    if not (www_dir() / ".build-stamp").is_file():
        print("mirror: nothing to serve yet; run `mirror.py build` first", file=sys.stderr)
        return 1
    pid = serving_pid()
    if pid and answers():
        print(f"mirror: already serving {www_dir()} at {url()} (pid {pid})")
        return 0
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("127.0.0.1", port()))
        except OSError as exc:
            print(
                f"mirror: 127.0.0.1:{port()} is taken by another program ({exc.strerror}); "
                "set DLV_MIRROR_PORT to a free port",
                file=sys.stderr,
            )
            return 1
    log = (mirror_dir() / "serve.log").open("ab")
    proc = subprocess.Popen(
        [sys.executable, str(Path(__file__).resolve()), "_serve"],
        stdout=log,
        stderr=log,
        stdin=subprocess.DEVNULL,
        start_new_session=True,
    )
    pid_file().write_text(f"{proc.pid}\n")
    for _ in range(50):
        if answers(0.5):
            print(
                f"mirror: serving {www_dir()} at {url()} (pid {proc.pid}, log {mirror_dir() / 'serve.log'})"
            )
            return 0
        if proc.poll() is not None:
            break
        time.sleep(0.1)
    print(f"mirror: the server did not come up; see {mirror_dir() / 'serve.log'}", file=sys.stderr)
    return 1


def stop(user: int | None = None) -> int:
    """Stop the server; with `user`, only drop that runner's claim and stop when no one else holds one."""
    if user is not None:
        (users_dir() / str(user)).unlink(missing_ok=True)
        others = live_users()
        if others:
            print(f"mirror: still used by runner(s) {', '.join(map(str, others))}; left running")
            return 0
    pid = serving_pid()
    if pid is None:
        pid_file().unlink(missing_ok=True)
        print("mirror: not running")
        return 0
    os.kill(pid, signal.SIGTERM)
    for _ in range(50):
        if not Path(f"/proc/{pid}").exists():
            break
        time.sleep(0.1)
    else:
        os.kill(pid, signal.SIGKILL)
    pid_file().unlink(missing_ok=True)
    print(f"mirror: stopped (pid {pid})")
    return 0


def env_lines() -> list[str]:
    installer = www_dir() / "miniconda" / MINICONDA_NAME
    if not installer.is_file():
        raise MirrorError("the mirror is not built; run `mirror.py build` first")
    base = url()
    pip_index = f"{base}/pypi/simple/" if (www_dir() / "pypi" / "simple").is_dir() else ""
    fingerprints = key_fingerprints(www_dir() / "keys" / "dlv-mirror.asc")
    if len(fingerprints) != 1:
        raise MirrorError(f"the mirror's key file holds {len(fingerprints)} keys, not one: {fingerprints}")
    values = {
        "DLV_MIRROR_URL": base,
        "DLV_MIRROR_CUDA_REPO": f"{base}/cuda/repos/{{distro}}/x86_64/",
        "DLV_MIRROR_KEY_URL": f"{base}/keys/dlv-mirror.asc",
        # the fingerprint of that key (cuda_repo_key_fingerprints): the roles check it, as they check NVIDIA's
        "DLV_MIRROR_KEY_FINGERPRINT": fingerprints[0],
        "DLV_MINICONDA_URL": f"{base}/miniconda/{MINICONDA_NAME}",
        "DLV_MINICONDA_SHA256": sha256_file(installer),
        "DLV_PIP_INDEX_URL": pip_index,
        # Not in the roles' contract: a signed flat repo of dlv-* test packages (1.0 and 2.0) for
        # tests of upgrade policy, same key as the CUDA repo.
        "DLV_MIRROR_HARNESS_REPO": f"{base}/harness/",
        # NVIDIA's libnvidia-container repository (the Container Toolkit), as the containers role names it
        "DLV_MIRROR_TOOLKIT_REPO": f"{base}/libnvidia-container/stable/deb/$(ARCH)",
        # Not in the roles' contract: Ubuntu's archive as a real jammy host sees it (transitional *-535).
        "DLV_MIRROR_UBUNTU_ARCHIVE": f"{base}/ubuntu-archive/",
    }
    return [f"export {key}={shlex.quote(value)}" for key, value in values.items()]


def status() -> int:
    pid = serving_pid()
    built = (www_dir() / ".build-stamp").is_file()
    print(
        json.dumps(
            {
                "built": built,
                "www": str(www_dir()),
                "serving": bool(pid and answers()),
                "pid": pid,
                "url": url(),
            },
            indent=2,
        )
    )
    return 0 if built and pid else 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="mirror.py", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    build_p = sub.add_parser(
        "build", help="build (or refresh) the signed repository and the Miniconda stand-in"
    )
    build_p.add_argument("--force", action="store_true", help="rebuild even when the inputs did not change")
    serve_p = sub.add_parser("serve", help="serve the mirror on 127.0.0.1 in the background")
    stop_p = sub.add_parser("stop", help="stop the background server")
    for sub_p in (serve_p, stop_p):
        sub_p.add_argument(
            "--user",
            type=int,
            metavar="PID",
            help="a runner's pid: serve records its claim; stop drops it, stopping when no claim is left",
        )
    sub.add_parser("env", help="print shell exports for the roles (DLV_MIRROR_URL, ...)")
    sub.add_parser("status", help="print whether the mirror is built and served (JSON)")
    sub.add_parser("_serve", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    try:
        if args.command == "build":
            mirror_dir().mkdir(parents=True, exist_ok=True)
            return build(args.force)
        if args.command == "serve":
            return serve(args.user)
        if args.command == "_serve":
            return serve_foreground()
        if args.command == "stop":
            return stop(args.user)
        if args.command == "status":
            return status()
        print("\n".join(env_lines()))
        return 0
    except MirrorError as exc:
        print(f"mirror: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
