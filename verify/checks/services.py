"""Service judges (group ``software``): dockerd with the nvidia runtime, each JupyterLab unit. Pure.

A notebook server runs arbitrary code as its user, so the Jupyter checks judge it as the network sees it:
bound only where the spec says, and refusing a request without credentials. A server on 0.0.0.0 that answers
``/api/status`` with 200 to anyone fails twice, by name.
"""

from __future__ import annotations

import ipaddress
from typing import Any

from dlverify.checks.common import Json, missing
from dlverify.hwspec.model import Spec
from dlverify.results import Recorder

# what a jupyter_server answers on /api/status without credentials: 403; a login redirect or 401 also refuses
_REFUSED = (301, 302, 303, 307, 401, 403)


def _same_address(a: str, b: str) -> bool:
    try:
        return ipaddress.ip_address(a) == ipaddress.ip_address(b)
    except ValueError:
        return a == b


def _docker(spec: Spec, services: Json, j: Recorder) -> None:
    containers = spec.software.containers
    if "docker" not in containers and "nvidia_container_toolkit" not in containers:
        return
    docker = services.get("docker")
    why = missing(docker)
    if why is not None:
        j.check("software.containers.dockerd", "dockerd").fail(None, "active", why)
        return
    active = docker.get("active")
    if active == "active":
        j.check("software.containers.dockerd", "dockerd").ok(active, "active")
    else:
        shown = active if isinstance(active, str) else None
        why = missing(active) or "docker.service is not running"
        j.check("software.containers.dockerd", "dockerd").fail(shown, "active", why)
    if "nvidia_container_toolkit" not in containers:
        return
    check = j.check("software.containers.runtime", "nvidia runtime for docker")
    runtimes = docker.get("runtimes")
    cdi = docker.get("cdi") if isinstance(docker.get("cdi"), list) else []
    if isinstance(runtimes, dict) and runtimes.get("nvidia"):
        check.ok(f"nvidia -> {runtimes['nvidia']}", "runtime nvidia in daemon.json or a CDI spec")
    elif cdi:
        check.ok(f"CDI spec {', '.join(cdi)}", "runtime nvidia in daemon.json or a CDI spec")
    else:
        names = sorted(runtimes) if isinstance(runtimes, dict) else None
        check.fail(
            names,
            "runtime nvidia in daemon.json or a CDI spec",
            (missing(runtimes) or "daemon.json names no nvidia runtime")
            + ": run `nvidia-ctk runtime configure --runtime=docker` and restart docker"
            " (the containers role does)",
        )


def _unit(user: str, unit: Json, listen: str, j: Recorder) -> None:
    where = f"software.jupyter[{user}]"
    active = unit.get("active")
    c = j.check(f"{where}.unit", f"jupyterlab@{user}")
    if active == "active":
        c.ok(active, "active")
    else:
        shown = active if isinstance(active, str) else None
        c.fail(shown, "active", missing(active) or "the unit is not running")
    port = unit.get("port")
    bound = unit.get("listen")
    c = j.check(f"{where}.listen", f"jupyterlab@{user} address")
    want = f"{listen}:{port}"
    if not isinstance(bound, list):
        c.fail(None, want, missing(bound) or "listening sockets not probed")
    elif not bound:
        c.fail([], want, f"nothing listens on port {port}")
    elif all(_same_address(a, listen) for a in bound):
        c.ok([f"{a}:{port}" for a in bound], want)
    else:
        extra = [a for a in bound if not _same_address(a, listen)]
        c.fail(
            [f"{a}:{port}" for a in bound],
            want,
            f"also bound to {', '.join(extra)}, which the spec does not allow (software.jupyter.listen)",
        )
    status = unit.get("anon_status")
    c = j.check(f"{where}.auth", f"jupyterlab@{user} authentication")
    expected = "refused without credentials (403)"
    if isinstance(status, int) and status in _REFUSED:
        c.ok(status, expected)
    elif isinstance(status, int) and 200 <= status < 300:
        c.fail(
            status,
            expected,
            "/api/status answers without credentials: anyone who reaches the port runs code as " + user,
        )
    elif isinstance(status, int):
        c.warn(status, expected, f"/api/status answered {status}, neither 200 nor a refusal")
    else:
        c.fail(None, expected, missing(status) or "not probed")


def check_services(spec: Spec, sw: Json, j: Recorder) -> None:
    """Results for the services the spec asks for, recorded in ``j`` (the software group)."""
    services = sw.get("services")
    jupyter = spec.software.jupyter
    wants_docker = bool({"docker", "nvidia_container_toolkit"} & set(spec.software.containers))
    wants_jupyter = jupyter is not None and jupyter.enabled and bool(jupyter.users)
    if not (wants_docker or wants_jupyter):
        return
    if not isinstance(services, dict):
        j.check("software.services", "services").skip(
            missing(services) or "not probed: take the snapshot with --spec SPEC"
        )
        return
    _docker(spec, services, j)
    if not wants_jupyter or jupyter is None:
        return
    data: Any = services.get("jupyter")
    why = missing(data)
    if why is not None:
        j.check("software.jupyter.version", "JupyterLab").fail(None, "installed", why)
        return
    version = data.get("version")
    if isinstance(version, str):
        j.check("software.jupyter.version", "JupyterLab").ok(version, "installed")
    else:
        why = missing(version) or "unknown"
        j.check("software.jupyter.version", "JupyterLab").fail(None, "installed", why)
    units = data.get("units") if isinstance(data.get("units"), dict) else {}
    for user in jupyter.users:
        unit = units.get(user)
        if not isinstance(unit, dict):
            j.check(f"software.jupyter[{user}].unit", f"jupyterlab@{user}").fail(
                None, "active", missing(unit) or "not probed"
            )
            continue
        _unit(user, unit, jupyter.listen, j)
