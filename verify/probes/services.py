"""Probes of the services the roles run: dockerd and its runtimes, each JupyterLab unit.

What `dlverify check` must know about a notebook server is what an attacker on the network would find: which
addresses its port is bound to (read from ``/proc/net/tcp{,6}``, no tool needed) and whether ``/api/status``
answers a request that carries no credentials. systemd says whether a unit is active.
"""

from __future__ import annotations

import http.client
import ipaddress
import json
import shutil
import ssl
import subprocess
from pathlib import Path
from typing import Any

from dlverify.unavailable import Unavailable

DAEMON_JSON = "etc/docker/daemon.json"
CDI_SPECS = ("etc/cdi/nvidia.yaml", "var/run/cdi/nvidia.yaml")
JUPYTER_LAB = "/opt/jupyterlab/bin/jupyter-lab"  # the jupyterlab role's venv
TIMEOUT_S = 3.0
_LISTEN = "0A"  # TCP_LISTEN in /proc/net/tcp's st column


def systemctl_active(unit: str) -> str | Unavailable:
    """`systemctl is-active UNIT`: active, inactive, failed, activating... (its stdout, whatever the exit)."""
    exe = shutil.which("systemctl")
    if not exe:
        return Unavailable("systemctl not found (no systemd)")
    try:
        done = subprocess.run([exe, "is-active", unit], capture_output=True, text=True, timeout=TIMEOUT_S)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return Unavailable(f"systemctl is-active {unit} failed: {exc}")
    return done.stdout.strip() or Unavailable(f"systemctl is-active {unit}: no answer")


def _addr(hex_addr: str) -> str:
    """/proc/net/tcp's address: IPv4 as one little-endian word, IPv6 as four."""
    raw = bytes.fromhex(hex_addr)
    words = b"".join(raw[i : i + 4][::-1] for i in range(0, len(raw), 4))
    return str(ipaddress.ip_address(words))


def parse_proc_net_tcp(text: str) -> list[tuple[str, int]]:
    """(address, port) of every listening socket in a /proc/net/tcp or tcp6 table."""
    out = []
    for line in text.splitlines()[1:]:
        fields = line.split()
        if len(fields) < 4 or fields[3] != _LISTEN or ":" not in fields[1]:
            continue
        addr, port = fields[1].rsplit(":", 1)
        try:
            out.append((_addr(addr), int(port, 16)))
        except ValueError:
            continue
    return out


def listening_on(port: int, root: Path) -> list[str] | Unavailable:
    """The addresses a TCP port is bound to (sorted, unique), from the kernel's own tables."""
    found: set[str] = set()
    read_any = False
    for name in ("tcp", "tcp6"):
        try:
            text = (root / "proc" / "net" / name).read_text()
        except OSError:
            continue
        read_any = True
        found.update(addr for addr, p in parse_proc_net_tcp(text) if p == port)
    if not read_any:
        return Unavailable(f"{root / 'proc/net/tcp'} not readable")
    return sorted(found)


def anonymous_status(host: str, port: int, tls: bool, path: str = "/api/status") -> int | Unavailable:
    """The HTTP status of a request without credentials (no redirect followed; TLS not verified: only the
    status matters, and the server's certificate is often self-signed)."""
    try:
        if tls:
            ctx = ssl.create_default_context()
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
            conn: http.client.HTTPConnection = http.client.HTTPSConnection(
                host, port, timeout=TIMEOUT_S, context=ctx
            )
        else:
            conn = http.client.HTTPConnection(host, port, timeout=TIMEOUT_S)
        try:
            conn.request("GET", path, headers={"User-Agent": "dlverify-check"})
            return conn.getresponse().status
        finally:
            conn.close()
    except (TimeoutError, OSError, http.client.HTTPException) as exc:
        return Unavailable(f"GET {'https' if tls else 'http'}://{host}:{port}{path}: {exc}")


def probe_docker(root: Path) -> dict[str, Any]:
    """dockerd's unit state and the runtimes daemon.json names (name -> path); any CDI spec of the GPUs."""
    path = root / DAEMON_JSON
    runtimes: Any
    try:
        doc = json.loads(path.read_text(encoding="utf-8") or "{}")
        if not isinstance(doc, dict):
            raise ValueError("not a JSON object")
        entries: dict[str, Any] = doc["runtimes"] if isinstance(doc.get("runtimes"), dict) else {}
        runtimes = {k: str(v.get("path", "")) for k, v in entries.items() if isinstance(v, dict)}
    except FileNotFoundError:
        runtimes = Unavailable(f"/{DAEMON_JSON} does not exist")
    except (OSError, ValueError) as exc:
        runtimes = Unavailable(f"/{DAEMON_JSON}: {exc}")
    return {
        "active": systemctl_active("docker"),
        "runtimes": runtimes,
        "cdi": [f"/{p}" for p in CDI_SPECS if (root / p).is_file()],
    }


def jupyter_version(exe: str = JUPYTER_LAB) -> str | Unavailable:
    try:
        done = subprocess.run([exe, "--version"], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return Unavailable(f"{exe} --version failed: {exc}")
    text = done.stdout.strip()
    return text if done.returncode == 0 and text else Unavailable(f"{exe} --version: rc {done.returncode}")


def probe_jupyter(jupyter: Any, root: Path) -> dict[str, Any]:
    """Per user of the spec's software.jupyter: unit state, bound addresses, the anonymous answer."""
    listen = ipaddress.ip_address(jupyter.listen)
    # a wildcard bind is reached on loopback; anything else on the address itself
    host = ("::1" if listen.version == 6 else "127.0.0.1") if listen.is_unspecified else str(listen)
    units = {}
    for i, user in enumerate(jupyter.users):
        port = jupyter.port + i
        units[user] = {
            "active": systemctl_active(f"jupyterlab@{user}.service"),
            "port": port,
            "listen": listening_on(port, root),
            "anon_status": anonymous_status(host, port, tls=bool(jupyter.tls_cert)),
        }
    return {"version": jupyter_version(), "units": units}


def probe_services(spec: Any, root: str = "/") -> dict[str, Any]:
    """The services the spec asks for: docker (software.containers.docker) and jupyter (when enabled)."""
    sw = getattr(spec, "software", None)
    r = Path(root)
    out: dict[str, Any] = {}
    if sw is not None and ("docker" in sw.containers or "nvidia_container_toolkit" in sw.containers):
        out["docker"] = probe_docker(r)
    if sw is not None and sw.jupyter is not None and sw.jupyter.enabled:
        out["jupyter"] = probe_jupyter(sw.jupyter, r)
    return out
