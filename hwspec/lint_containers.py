"""Lint passes for the everyday services: Docker and the NVIDIA Container Toolkit (``data/containers.yaml``),
and JupyterLab's exposure."""

from __future__ import annotations

from typing import Any

from dlverify.hwspec import compat
from dlverify.hwspec.lint_base import LintOut
from dlverify.hwspec.model import DOCKER_SOURCES
from dlverify.results import Status


def lint_toolkit(out: LintOut) -> None:
    """The NVIDIA Container Toolkit's minimum driver (its install guide's prerequisite)."""
    sw = out.spec.software
    toolkit = sw.containers.get("nvidia_container_toolkit")
    if toolkit is None or sw.nvidia_driver is None:
        return
    key = "software.containers.nvidia_container_toolkit"
    id_, name = "spec.containers.toolkit_driver", "Container Toolkit vs driver"
    known = compat.toolkit_min_driver(toolkit)
    if known is None:
        out.unknown(id_, name, key, f"NVIDIA Container Toolkit {toolkit}", "containers", toolkit)
        return
    need, source = known
    drv = sw.nvidia_driver
    too_old = compat.vkey(drv) < compat.vkey(need) and not (
        compat.is_branch_only(drv) and compat.vkey(drv)[0] == compat.vkey(need)[0]
    )
    what = f"NVIDIA Container Toolkit {toolkit} needs driver >= {need} ({source[0]})"
    check = out.at(id_, name, key)
    if too_old:
        check.fail(drv, f">= {need}", f"{what}; software.nvidia_driver is {drv}")
    else:
        check.ok(drv, f">= {need}", what)


def lint_docker(out: LintOut) -> None:
    """The pinned docker version is one the named source (Ubuntu's docker.io, Docker's docker-ce) ships."""
    sw = out.spec.software
    version = sw.containers.get("docker")
    if version is None:
        return
    key = "software.containers.docker"
    id_, name = "spec.containers.docker", "Docker version its source ships"
    if sw.os is None:
        out.at(id_, name, key).skip("software.os not set: can't tell which packages exist")
        return
    sources = compat.docker_sources(sw.os.name, sw.os.version)
    shown_os = f"{sw.os.name} {sw.os.version}"
    if sources is None:
        out.unknown(id_, name, key, f"docker on {shown_os}", "containers", version)
        return
    check = out.at(id_, name, key)
    named = (sw.docker_source,) if sw.docker_source else DOCKER_SOURCES
    shipping = [s for s in named if compat.docker_ships(sources[s], version)]
    where = "; ".join(f"{s}: {_offer(sources[s])} ({sources[s]['source'][0]})" for s in named)
    if shipping:
        note = "" if sw.docker_source else f"; only {shipping[0]} ships it: set docker_source: {shipping[0]}"
        if sw.docker_source is None and len(shipping) > 1:
            note = ""
        check.ok(version, where, f"docker {version} is shipped for {shown_os} by {', '.join(shipping)}{note}")
        return
    unsourced = [sources[s]["unsourced"] for s in named if sources[s].get("unsourced")]
    caveat = f" (data caveat: {unsourced[0]})" if unsourced else ""
    said = (
        f"{sw.docker_source} (software.containers.docker_source) does not ship it"
        if sw.docker_source
        else "neither docker.io nor docker-ce ships it"
    )
    check.warn(
        version,
        where,
        f"docker {version}: {said} for {shown_os}; the role can't install it as pinned{caveat}",
    )


def _offer(entry: dict[str, Any]) -> str:
    if "first" in entry:
        return f"{entry['first']} and later"
    return ", ".join(str(v) for v in entry["versions"])


def lint_jupyter(out: LintOut) -> None:
    """JupyterLab beyond loopback without TLS is an error; the kernel env is the spec's python_env."""
    sw = out.spec.software
    jup = sw.jupyter
    if jup is None or not jup.enabled:
        return
    key = "software.jupyter"
    check = out.at("spec.jupyter.exposure", "JupyterLab exposure", f"{key}.listen")
    password = "the jupyterlab role always requires a password (hashed, from a vaulted variable)"
    where = f"{jup.listen}:{jup.port}"
    tunnel = f"ssh -L {jup.port}:127.0.0.1:{jup.port} HOST"  # the spec's port, as the role's preflight has it
    if jup.loopback:
        check.ok(where, "loopback, or TLS", f"loopback only: reach it with `{tunnel}`; {password}")
    elif jup.tls_cert is None or jup.tls_key is None:
        check.fail(
            where,
            "127.0.0.1, or tls_cert + tls_key",
            f"JupyterLab on {jup.listen} without TLS sends the password and every cell in clear text; "
            f"listen on 127.0.0.1 and use `{tunnel}`, or set tls_cert and tls_key; {password}",
        )
    else:
        check.ok(where, "loopback, or TLS", f"TLS with {jup.tls_cert}; {password}")
    if sw.python_env is not None and jup.kernel_env is not None and jup.kernel_env != sw.python_env.name:
        out.at("spec.jupyter.kernel", "Jupyter kernel env", f"{key}.kernel_env").status(
            Status.WARN,
            jup.kernel_env,
            sw.python_env.name,
            f"kernel env {jup.kernel_env!r} is not the spec's python_env {sw.python_env.name!r}: "
            "notebooks would not run the pinned frameworks",
        )
