"""Write a spec from a known-good machine: ``spec_from_snapshot(snapshot) -> dict`` (structured form).

The spec says what the recorded machine *is*, so that machine passes it and any drift (a lost GPU, another
driver, a smaller disk) fails. What the snapshot could not see is left out (unpinned), never guessed.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from typing import Any

from dlverify.checks.common import missing
from dlverify.probes.smbios import DDR_TYPES

_STORAGE_TYPE = {"nvme": "NVMe SSD", "ssd": "SATA SSD", "hdd": "HDD"}
# mount points worth pinning, most important first
_MOUNTS = ("/", "/data", "/home", "/scratch", "/archive")


def _ok(v: Any) -> bool:
    return v is not None and missing(v) is None


def _section(v: Any) -> dict[str, Any]:
    """A recorded mapping, or {} where the probe recorded why it is missing (or something else)."""
    return v if isinstance(v, dict) and missing(v) is None else {}


def _major_minor(v: str) -> str:
    return ".".join(v.split("+")[0].split(".")[:2])


def _gpu_memory_gb(name: str, total_bytes: Any) -> float | None:
    try:
        from dlverify.hwspec.compat import gpu_info

        info = gpu_info(name)
        if info is not None:
            return info.memory_gb
    except Exception:  # compat data unavailable: fall back to the reported size
        pass
    return float(math.floor(total_bytes / 2**30)) if isinstance(total_bytes, int) else None


def _ram(ram: dict[str, Any]) -> dict[str, Any]:
    """Installed size and DDR type from the DIMMs where the firmware lists them, else the usable total."""
    out: dict[str, Any] = {"size_gb": math.floor(ram["total_bytes"] / 2**30)}
    smbios = ram.get("smbios")
    dimms = smbios.get("dimms") if _ok(smbios) and isinstance(smbios, dict) else None
    if dimms and all(isinstance(d.get("size_bytes"), int) for d in dimms):
        installed = sum(d["size_bytes"] for d in dimms) / 2**30
        out["size_gb"] = int(installed) if installed == int(installed) else round(installed, 1)
        types = {d.get("type") for d in dimms}
        if len(types) == 1 and types.pop() in DDR_TYPES:
            out["type"] = dimms[0]["type"]
    if isinstance(ram.get("edac_controllers"), int) and ram["edac_controllers"] > 0:
        out["ecc"] = True
    return out


def _hardware(snap: dict[str, Any]) -> dict[str, Any]:
    hw: dict[str, Any] = {}
    host = _section(snap.get("host"))
    cpu = _section(host.get("cpu"))
    if cpu:
        c = {k: cpu[k] for k in ("model", "cores", "threads", "sockets") if _ok(cpu.get(k))}
        if c.get("model"):
            c["model"] = " ".join(re.sub(r"\((R|TM)\)", "", str(c["model"])).split())
        if c:
            hw["cpu"] = c
    nvml = _section(snap.get("nvml"))
    if isinstance(nvml.get("gpus"), list):
        groups: dict[str, dict[str, Any]] = {}
        for g in nvml["gpus"]:
            name = g.get("name") if isinstance(g, dict) else None
            if not isinstance(name, str):
                continue
            item = groups.setdefault(name, {"model": name, "count": 0})
            item["count"] += 1
            mem = _gpu_memory_gb(name, g.get("memory_total_bytes"))
            if mem:
                item["memory_gb"] = mem
            links = g.get("nvlink")
            if isinstance(links, list) and links:
                item["nvlink"] = all(isinstance(x, dict) and x.get("active") for x in links)
            elif missing(links) == "no NVLink on this card":
                item["nvlink"] = False
        if groups:
            hw["gpu"] = list(groups.values())
    ram = _section(host.get("ram"))
    if isinstance(ram.get("total_bytes"), int):
        hw["ram"] = _ram(ram)
    disks, mounts = host.get("disks"), host.get("mounts")
    if isinstance(disks, list):
        by_disk: dict[str, list[str]] = {}
        for m in mounts if isinstance(mounts, list) else []:
            for d in _section(m).get("disks") or []:
                by_disk.setdefault(d, []).append(m.get("mountpoint"))
        storage = []
        for d in map(_section, disks):
            if d.get("class") not in _STORAGE_TYPE or not isinstance(d.get("size_bytes"), int):
                continue
            entry: dict[str, Any] = {
                "type": _STORAGE_TYPE[d["class"]],
                "size_gb": math.floor(d["size_bytes"] / 1e9),
            }
            pinned = [m for m in _MOUNTS if m in by_disk.get(d["name"], [])]
            if pinned:
                entry["mount"] = pinned[0]
            storage.append(entry)
        if storage:
            hw["storage"] = storage
    nics = host.get("nics")
    if isinstance(nics, list):
        speeds = Counter(
            n["speed_mbps"] for n in nics if isinstance(n.get("speed_mbps"), int) and n["speed_mbps"] >= 1000
        )
        network = [
            {"speed_gbps": s / 1000 if s % 1000 else s // 1000, "count": c}
            for s, c in sorted(speeds.items(), reverse=True)
        ]
        rdma = host.get("rdma")
        if network and isinstance(rdma, list):
            layers = Counter(
                p.get("link_layer") for d in rdma for p in d.get("ports") or [] if p.get("state") == "ACTIVE"
            )
            if layers:
                layer, n = layers.most_common(1)[0]
                network[0]["rdma"] = "roce" if layer == "Ethernet" else "infiniband"
                network[0]["count"] = min(network[0]["count"], n) or 1
        if network:
            hw["network"] = network
    return hw


def _python_env(env: dict[str, Any]) -> dict[str, Any] | None:
    interp = env.get("interpreter")
    pyv = env.get("python_version")
    if not isinstance(interp, str) or not isinstance(pyv, str):
        return None
    out: dict[str, Any] = {"python": _major_minor(pyv)}
    m = re.match(r"^(?P<prefix>/.+)/envs/(?P<name>[^/]+)/bin/python[0-9.]*$", interp)
    if m:
        out.update(name=m.group("name"), installer="conda", prefix=m.group("prefix"))
    elif interp in ("/usr/bin/python3", "/usr/bin/python"):
        out.update(installer="system", prefix="/usr")
    else:
        out.update(installer="venv", prefix=re.sub(r"/bin/python[0-9.]*$", "", interp))
    return out


def _software(snap: dict[str, Any]) -> dict[str, Any]:
    sw: dict[str, Any] = {}
    host = _section(snap.get("host"))
    os_ = _section(host.get("os"))
    if _ok(os_.get("name")) and _ok(os_.get("version_id")):
        sw["os"] = {"name": os_["name"], "version": os_["version_id"]}
    nvml = _section(snap.get("nvml"))
    if isinstance(nvml.get("driver_version"), str):
        sw["nvidia_driver"] = nvml["driver_version"]
    soft = _section(snap.get("software"))
    nvcc = _section(_section(soft.get("cuda_toolkit")).get("nvcc"))
    env = _section(soft.get("python_env"))
    if isinstance(nvcc.get("version"), str):
        sw["cuda"] = nvcc["version"]
    elif isinstance(env.get("torch_cuda"), str):  # no toolkit: the CUDA the env's torch was built for
        sw["cuda"] = _major_minor(env["torch_cuda"])
    cudnn = _section(soft.get("cudnn"))
    if isinstance(cudnn.get("version"), str):
        sw["cudnn"] = cudnn["version"]
    pe = _python_env(env)
    if pe:
        sw["python_env"] = pe
    frameworks = {}
    if isinstance(env.get("torch"), str):
        frameworks["pytorch"] = env["torch"]
    for name in ("torchvision", "torchaudio", "tensorflow", "jax"):
        if isinstance(env.get(name), str):
            frameworks[name] = env[name]
    if frameworks:
        sw["frameworks"] = frameworks
    tools = _section(soft.get("tools"))
    for section, names in (
        ("containers", ("docker", "nvidia_container_toolkit")),
        ("monitoring", ("prometheus", "grafana", "node_exporter", "dcgm_exporter")),
    ):
        found = {n: tools[n] for n in names if isinstance(tools.get(n), str)}
        if found:
            sw[section] = found
    return sw


def spec_from_snapshot(snapshot: dict[str, Any]) -> dict[str, Any]:
    """A spec (structured form, plain dict) that the recorded machine passes."""
    spec: dict[str, Any] = {}
    hw, sw = _hardware(snapshot), _software(snapshot)
    if hw:
        spec["hardware"] = hw
    if sw:
        spec["software"] = sw
    return spec
