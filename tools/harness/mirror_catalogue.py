"""The mirror's catalogue: every stand-in package, with NVIDIA's (Grafana Labs', Ubuntu's) names, versions and
relations, as far as the roles depend on them.

Data first (versions at the top), then the packages of NVIDIA's CUDA repository (``package_specs``: driver,
toolkit, cuDNN, DCGM), Grafana's, the harness's own test packages, Ubuntu's transitional 535 packages, and the
second versions that let the roles move a host up and down. Each carries NVIDIA's real user-space files where
PyPI ships them (``WHEELS``) and says STAND-IN in its description.
"""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

from mirror_apt import STAND_IN_LINE, DebSpec
from mirror_common import HERE, STANDINS, MirrorError

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


WHEELS = {
    "nvcc": ("nvidia-cuda-nvcc-cu12", "12.1.105"),
    "cudart": ("nvidia-cuda-runtime-cu12", "12.1.105"),
    "cudnn": ("nvidia-cudnn-cu12", "8.9.2.26"),
}


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
        """The desktop metapackage (nvidia-driver-535 pulls the X server in, as the real one does through
        xserver-xorg-video-nvidia-535) and the headless one servers take (nvidia-headless-535: DKMS, the
        compute user space, no X), with the real packages' relations as far as the roles depend on them."""
        other = "" if flavour else "-open"
        kind = " (open kernel modules)" if flavour else ""
        return [
            DebSpec(
                f"nvidia-driver-535{flavour}",
                v,
                f"NVIDIA driver metapackage{kind}",
                section="restricted/libs",
                depends=[
                    f"nvidia-dkms-535{flavour} (= {v})",
                    f"nvidia-utils-535 (= {v})",
                    f"nvidia-compute-utils-535 (= {v})",
                    f"libnvidia-compute-535 (= {v})",
                    f"xserver-xorg-video-nvidia-535 (= {v})",
                ],
                conflicts=[f"nvidia-driver-535{other}"],
            ),
            DebSpec(
                f"nvidia-headless-535{flavour}",
                v,
                f"NVIDIA headless metapackage{kind}",
                section="restricted/libs",
                depends=[
                    f"nvidia-headless-no-dkms-535{flavour} (= {v})",
                    f"nvidia-dkms-535{flavour} (= {v})",
                ],
                conflicts=[f"nvidia-headless-535{other}"],
            ),
            DebSpec(
                f"nvidia-headless-no-dkms-535{flavour}",
                v,
                f"NVIDIA headless metapackage - no DKMS{kind}",
                section="restricted/libs",
                depends=[f"nvidia-compute-utils-535 (= {v})", f"libnvidia-compute-535 (= {v})"],
                conflicts=[f"nvidia-headless-no-dkms-535{other}"],
            ),
            DebSpec(
                f"nvidia-dkms-535{flavour}",
                v,
                f"NVIDIA DKMS package{kind}",
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
            "xserver-xorg-video-nvidia-535",
            v,
            "NVIDIA binary Xorg driver",
            section="restricted/x11",
            depends=["xserver-xorg-core"],
            details="Ships no X driver; depends on the distribution's real xserver-xorg-core, as the real\n"
            "package does, so a desktop metapackage brings the X server onto a host.",
        ),
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
    "nvidia-headless-{}",
    "nvidia-headless-no-dkms-{}",
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
