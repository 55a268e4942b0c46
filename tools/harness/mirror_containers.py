"""Stand-ins for NVIDIA's libnvidia-container apt repository (the NVIDIA Container Toolkit), for mirror.py.

nvidia.github.io is unreachable where the roles are tested. These packages carry NVIDIA's names, versions
(``1.13.1-1``) and dependencies (``nvidia-container-toolkit`` needs ``nvidia-container-toolkit-base`` of its
exact version and ``libnvidia-container-tools``, which needs ``libnvidia-container1``), put the programs where
NVIDIA's do, and say STAND-IN in their descriptions. ``nvidia-ctk`` is a Python stand-in that edits
daemon.json as NVIDIA's CLI does (``standins/nvidia-ctk.py``); the runtime, hook and CLI only say what they
are and fail, since no container can get a GPU here. Docker's own repository has no stand-in: the tests use
Debian's real ``docker.io``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

STANDINS = Path(__file__).resolve().parent / "standins"
TOOLKIT_UPSTREAM = "1.13.1"
TOOLKIT_VERSION = f"{TOOLKIT_UPSTREAM}-1"  # NVIDIA's Debian revision for the toolkit packages
TOOLKIT_STAND_IN_LINE = "STAND-IN built by the dlverify test harness, not NVIDIA's package."
TOOLKIT_ORIGIN = (
    "dlverify-mirror",
    "dlverify stand-in of NVIDIA's libnvidia-container repository (STAND-IN, not NVIDIA's)",
)
# where mirror.py puts the flat repository: the path of NVIDIA's, with $(ARCH) = amd64
TOOLKIT_REPO_PATH = "libnvidia-container/stable/deb/amd64"


def _refusing_program(name: str, what: str) -> bytes:
    return (
        "#!/bin/sh\n"
        f"# STAND-IN {name} (dlverify test harness), NOT NVIDIA's {what}.\n"
        f'echo "{name}: STAND-IN from the dlverify test harness; no NVIDIA driver or GPU here" >&2\n'
        "exit 1\n"
    ).encode()


def toolkit_specs(deb_spec: Any) -> list[Any]:
    """The four packages of the toolkit at TOOLKIT_VERSION; `deb_spec` is mirror.DebSpec."""
    v = TOOLKIT_VERSION
    ctk = (STANDINS / "nvidia-ctk.py").read_bytes().replace(b"@VERSION@", TOOLKIT_UPSTREAM.encode())
    config_toml = (
        b"# STAND-IN /etc/nvidia-container-runtime/config.toml (dlverify test harness); keys as NVIDIA's\n"
        b"#accept-nvidia-visible-devices-as-volume-mounts = false\n\n"
        b"[nvidia-container-cli]\nenvironment = []\n"
        b'ldconfig = "@/sbin/ldconfig.real"\nload-kmods = true\n\n[nvidia-container-runtime]\n'
        b'log-level = "info"\nmode = "auto"\nruntimes = ["docker-runc", "runc", "crun"]\n'
    )
    common: dict[str, Any] = {"section": "utils", "stand_in_line": TOOLKIT_STAND_IN_LINE}
    return [
        deb_spec(
            "libnvidia-container1",
            v,
            "NVIDIA container runtime library",
            depends=["libc6 (>= 2.14)"],
            details="The real package ships libnvidia-container.so.1; this stand-in ships no library.",
            **common,
        ),
        deb_spec(
            "libnvidia-container-tools",
            v,
            "NVIDIA container runtime library (command-line tools)",
            depends=[f"libnvidia-container1 (>= {v})", "libc6 (>= 2.14)"],
            details="nvidia-container-cli is a stand-in that says so and fails.",
            files={"/usr/bin/nvidia-container-cli": _refusing_program("nvidia-container-cli", "CLI")},
            modes={"/usr/bin/nvidia-container-cli": 0o755},
            **common,
        ),
        deb_spec(
            "nvidia-container-toolkit-base",
            v,
            "NVIDIA Container Toolkit Base",
            depends=["python3"],
            details="nvidia-ctk is a Python stand-in that edits daemon.json as NVIDIA's CLI does\n"
            "(runtime configure); nvidia-container-runtime says STAND-IN and fails.",
            files={
                "/usr/bin/nvidia-ctk": ctk,
                "/usr/bin/nvidia-container-runtime": _refusing_program("nvidia-container-runtime", "runtime"),
                "/etc/nvidia-container-runtime/config.toml": config_toml,
            },
            modes={"/usr/bin/nvidia-ctk": 0o755, "/usr/bin/nvidia-container-runtime": 0o755},
            **common,
        ),
        deb_spec(
            "nvidia-container-toolkit",
            v,
            "NVIDIA Container toolkit",
            depends=[
                f"nvidia-container-toolkit-base (= {v})",
                f"libnvidia-container-tools (>= {v})",
                "libnvidia-container-tools (<< 2.0.0)",
            ],
            details="nvidia-container-runtime-hook says STAND-IN and fails.",
            files={
                "/usr/bin/nvidia-container-runtime-hook": _refusing_program(
                    "nvidia-container-runtime-hook", "OCI hook"
                )
            },
            modes={"/usr/bin/nvidia-container-runtime-hook": 0o755},
            symlinks={"/usr/bin/nvidia-container-toolkit": "nvidia-container-runtime-hook"},
            **common,
        ),
    ]
