"""Host probe: OS, kernel, CPU, RAM (and its DIMMs), disks, mounts, NICs, RDMA devices, GPU XID errors and
NVSwitches (with the fabric manager's state).

Reads /proc and /sys under a ``root`` prefix (default "/") so tests can point it at a fake tree. It never
judges; a value it cannot read is an :class:`Unavailable` with the reason.
"""

from __future__ import annotations

import os
import re
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

from dlverify.probes.fabric import probe_fabric_host
from dlverify.probes.smbios import probe_smbios
from dlverify.unavailable import Unavailable

# block devices that are never a disk someone bought
_SKIP_BLOCK = re.compile(r"^(loop|ram|zram|dm-|sr|fd|nbd|md)\d*")
_XID = re.compile(r"NVRM: Xid \((?P<pci>[^)]*)\): (?P<xid>\d+)(?:, (?P<text>.*))?")
_NV_MODULE = re.compile(r"Kernel Module(?: for \S+)?\s+(?P<version>\d+(?:\.\d+)+)")

Runner = Callable[[list[str]], "subprocess.CompletedProcess[str]"]


def _read(path: Path) -> str | Unavailable:
    try:
        return path.read_text(errors="replace").strip()
    except FileNotFoundError:
        return Unavailable(f"{path} does not exist")
    except OSError as exc:
        return Unavailable(f"{path}: {exc.strerror or exc}")


def _int(path: Path) -> int | Unavailable:
    text = _read(path)
    if isinstance(text, Unavailable):
        return text
    try:
        return int(text)
    except ValueError:
        return Unavailable(f"{path}: not a number: {text!r}")


def parse_os_release(text: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for line in text.splitlines():
        key, sep, value = line.partition("=")
        if sep and key.strip() and not key.startswith("#"):
            out[key.strip()] = value.strip().strip('"').strip("'")
    return out


def probe_os(root: Path) -> dict[str, Any] | Unavailable:
    for rel in ("etc/os-release", "usr/lib/os-release"):
        text = _read(root / rel)
        if not isinstance(text, Unavailable):
            rel_info = parse_os_release(text)
            return {
                "name": rel_info.get("NAME", Unavailable("NAME missing in os-release")),
                "id": rel_info.get("ID", Unavailable("ID missing in os-release")),
                "version_id": rel_info.get("VERSION_ID", Unavailable("VERSION_ID missing in os-release")),
                "pretty_name": rel_info.get("PRETTY_NAME", Unavailable("PRETTY_NAME missing")),
            }
    return Unavailable("no /etc/os-release")


def parse_cpuinfo(text: str) -> dict[str, Any]:
    """Model, sockets, physical cores and threads from /proc/cpuinfo (x86 and most arm64 kernels)."""
    model: str | None = None
    threads = 0
    sockets: set[str] = set()
    cores: set[tuple[str, str]] = set()
    phys = core = ""
    for block in text.split("\n\n"):
        fields: dict[str, str] = {}
        for line in block.splitlines():
            key, sep, value = line.partition(":")
            if sep:
                fields[key.strip()] = value.strip()
        if "processor" not in fields:
            continue
        threads += 1
        model = model or fields.get("model name") or fields.get("Model") or fields.get("cpu model")
        phys = fields.get("physical id", "0")
        core = fields.get("core id", str(threads))
        sockets.add(phys)
        cores.add((phys, core))
    return {
        "model": model or Unavailable("no model name in /proc/cpuinfo"),
        "sockets": len(sockets) if threads else Unavailable("no processor in /proc/cpuinfo"),
        "cores": len(cores) if threads else Unavailable("no processor in /proc/cpuinfo"),
        "threads": threads or Unavailable("no processor in /proc/cpuinfo"),
    }


def probe_cpu(root: Path) -> dict[str, Any] | Unavailable:
    text = _read(root / "proc/cpuinfo")
    if isinstance(text, Unavailable):
        return text
    info = parse_cpuinfo(text)
    if root == Path("/"):  # the live kernel: psutil/os agree with cpuinfo and also cover odd arches
        import psutil

        info["threads"] = os.cpu_count() or info["threads"]
        info["cores"] = psutil.cpu_count(logical=False) or info["cores"]
    return info


def _edac_controllers(root: Path) -> int:
    """Memory controllers the kernel's EDAC driver reports: ECC DIMMs in use (0: no ECC, or no driver)."""
    mc = root / "sys/devices/system/edac/mc"
    return len(list(mc.glob("mc[0-9]*"))) if mc.is_dir() else 0


def probe_ram(root: Path) -> dict[str, Any] | Unavailable:
    """What the kernel can use (total_bytes), its EDAC drivers, and the firmware's DIMM list (smbios)."""
    edac = _edac_controllers(root)
    if root == Path("/"):
        import psutil

        total = int(psutil.virtual_memory().total)
    else:
        text = _read(root / "proc/meminfo")
        if isinstance(text, Unavailable):
            return text
        m = re.search(r"^MemTotal:\s+(\d+) kB", text, re.M)
        if not m:
            return Unavailable("no MemTotal in /proc/meminfo")
        total = int(m.group(1)) * 1024
    return {"total_bytes": total, "edac_controllers": edac, "smbios": probe_smbios(root)}


def disk_class(name: str, rotational: int | Unavailable) -> str:
    """nvme / ssd / hdd from the kernel's name and rotational flag; ``virtio`` for a VM's virtio-blk disk
    (vd*), which reports rotational=1 whatever the host's media is: the guest cannot tell."""
    if name.startswith("nvme"):
        return "nvme"
    if name.startswith("vd"):
        return "virtio"
    if isinstance(rotational, Unavailable):
        return "unknown"
    return "hdd" if rotational else "ssd"


def _entries(base: Path) -> list[str] | Unavailable:
    """The sorted names in a /sys directory, or why it cannot be listed."""
    try:
        return sorted(p.name for p in base.iterdir())
    except OSError as exc:
        return Unavailable(f"{base}: {exc.strerror or exc}")


def probe_disks(root: Path) -> list[dict[str, Any]] | Unavailable:
    base = root / "sys/block"
    names = _entries(base)
    if isinstance(names, Unavailable):
        return names
    disks = []
    for name in names:
        if _SKIP_BLOCK.match(name):
            continue
        dev = base / name
        rotational = _int(dev / "queue/rotational")
        sectors = _int(dev / "size")  # always 512-byte units, whatever the logical block size
        model = _read(dev / "device/model")
        disks.append(
            {
                "name": name,
                "class": disk_class(name, rotational),
                "size_bytes": sectors if isinstance(sectors, Unavailable) else sectors * 512,
                "rotational": rotational if isinstance(rotational, Unavailable) else bool(rotational),
                "model": model if isinstance(model, Unavailable) else " ".join(model.split()),
                "partitions": sorted(p.name for p in dev.iterdir() if p.name.startswith(name)),
            }
        )
    return disks


def _owning_disks(root: Path, block: str, disks: list[dict[str, Any]], depth: int = 0) -> list[str]:
    """The whole disks under a block device: itself, a partition's parent, or a dm/md's slaves."""
    for d in disks:
        if block == d["name"] or block in d["partitions"]:
            return [d["name"]]
    slaves = root / "sys/block" / block / "slaves"
    if depth < 4 and slaves.is_dir():
        out: list[str] = []
        for s in sorted(p.name for p in slaves.iterdir()):
            out += _owning_disks(root, s, disks, depth + 1)
        return out
    return []


def _mount_table(root: Path) -> list[tuple[str, str, str]] | Unavailable:
    if root == Path("/"):
        import psutil

        return [(p.device, p.mountpoint, p.fstype) for p in psutil.disk_partitions(all=False)]
    text = _read(root / "proc/self/mounts")
    if isinstance(text, Unavailable):
        return text
    rows = []
    for line in text.splitlines():
        parts = line.split()
        if len(parts) >= 3 and parts[0].startswith("/dev/"):
            rows.append((parts[0], parts[1].replace("\\040", " "), parts[2]))
    return rows


def probe_mounts(root: Path, disks: list[dict[str, Any]] | Unavailable) -> list[dict[str, Any]] | Unavailable:
    table = _mount_table(root)
    if isinstance(table, Unavailable):
        return table
    known = disks if isinstance(disks, list) else []
    classes = {d["name"]: d["class"] for d in known}
    out = []
    for device, mountpoint, fstype in table:
        real = os.path.realpath(device) if root == Path("/") else device  # /dev/mapper/x -> /dev/dm-0
        owners = _owning_disks(root, os.path.basename(real), known)
        out.append(
            {
                "device": device,
                "mountpoint": mountpoint,
                "fstype": fstype,
                "disks": owners,
                "classes": sorted({classes[o] for o in owners}),
            }
        )
    return out


def probe_nics(root: Path) -> list[dict[str, Any]] | Unavailable:
    base = root / "sys/class/net"
    names = _entries(base)
    if isinstance(names, Unavailable):
        return names
    nics = []
    for name in names:
        dev = base / name
        if name == "lo" or not (dev / "device").exists():  # no backing device: bridge, veth, bond, ...
            continue
        speed = _int(dev / "speed")  # Mb/s; EINVAL when the link is down
        if isinstance(speed, int) and speed < 0:
            speed = Unavailable("the driver reports no link speed (link down, or a virtual NIC)")
        elif isinstance(speed, Unavailable):
            speed = Unavailable(f"speed unreadable ({speed.reason}); link down?")
        nics.append(
            {
                "name": name,
                "speed_mbps": speed,
                "operstate": _read(dev / "operstate"),
            }
        )
    return nics


def probe_rdma(root: Path) -> list[dict[str, Any]]:
    base = root / "sys/class/infiniband"
    if not base.is_dir():
        return []
    devices = []
    for dev in sorted(base.iterdir()):
        ports = []
        pdir = dev / "ports"
        for port in sorted(pdir.iterdir(), key=lambda p: p.name) if pdir.is_dir() else []:
            state = _read(port / "state")  # "4: ACTIVE"
            ports.append(
                {
                    "port": port.name,
                    "link_layer": _read(port / "link_layer"),  # InfiniBand | Ethernet (RoCE)
                    "state": state if isinstance(state, Unavailable) else state.split(":")[-1].strip(),
                    "rate": _read(port / "rate"),  # "100 Gb/sec (4X EDR)"
                }
            )
        devices.append({"name": dev.name, "ports": ports})
    return devices


def parse_xid(text: str) -> list[dict[str, Any]]:
    events = []
    for line in text.splitlines():
        m = _XID.search(line)
        if m:
            events.append(
                {"pci": m.group("pci"), "xid": int(m.group("xid")), "text": (m.group("text") or "").strip()}
            )
    return events


def _run(cmd: list[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, capture_output=True, text=True, timeout=10, check=False)


def _first_line(proc: subprocess.CompletedProcess[str]) -> str:
    err = (proc.stderr or "").strip()
    return err.splitlines()[0] if err else f"rc {proc.returncode}"


def _journal_xid(runner: Runner) -> dict[str, Any] | str:
    """XIDs from journald, or why journald cannot tell (then the caller asks dmesg)."""
    base = ["journalctl", "-k", "-b", "--no-pager", "-q"]
    proc = runner([*base, "-n", "1"])  # does the journal hold this boot's kernel log at all?
    if proc.returncode != 0 or not proc.stdout.strip():
        return f"journalctl: {_first_line(proc) if proc.returncode else 'no kernel messages for this boot'}"
    proc = runner([*base, "-g", "NVRM: Xid"])
    if proc.returncode == 0 or (proc.returncode == 1 and not (proc.stderr or "").strip()):
        return {"source": "journalctl -k -b", "events": parse_xid(proc.stdout)}  # rc 1: no match
    proc = runner(base)  # a journalctl built without pattern matching: filter here
    if proc.returncode == 0:
        return {"source": "journalctl -k -b", "events": parse_xid(proc.stdout)}
    return f"journalctl: {_first_line(proc)}"


def probe_xid(runner: Runner = _run) -> dict[str, Any] | Unavailable:
    """XID lines of the kernel log since boot: journald first, then the kernel ring buffer."""
    why = []
    try:
        got = _journal_xid(runner)
        if isinstance(got, dict):
            return got
        why.append(got)
    except FileNotFoundError:
        why.append("journalctl not installed")
    except subprocess.TimeoutExpired:
        why.append("journalctl timed out")
    try:
        proc = runner(["dmesg"])
    except FileNotFoundError:
        why.append("dmesg not installed")
    except subprocess.TimeoutExpired:
        why.append("dmesg timed out")
    else:
        if proc.returncode == 0:
            return {"source": "dmesg", "events": parse_xid(proc.stdout)}
        lower = (proc.stderr or "").lower()
        if "permitted" in lower or "permission" in lower:
            return Unavailable("kernel log not readable without root")
        why.append(f"dmesg: {_first_line(proc)}")
    return Unavailable("kernel log not readable: " + "; ".join(why))


def probe_nvidia_module(root: Path) -> str | Unavailable:
    """The loaded nvidia.ko's version: tells a driver/library mismatch apart when NVML will not start."""
    text = _read(root / "proc/driver/nvidia/version")
    if isinstance(text, Unavailable):
        return Unavailable("nvidia kernel module not loaded")
    m = _NV_MODULE.search(text)
    return (
        m.group("version") if m else Unavailable(f"unrecognised /proc/driver/nvidia/version: {text[:80]!r}")
    )


def probe_host(root: str | os.PathLike[str] = "/", runner: Runner = _run) -> dict[str, Any]:
    r = Path(root)
    disks = probe_disks(r)
    nics = probe_nics(r)
    rdma = probe_rdma(r)
    return {
        "os": probe_os(r),
        "kernel": _read(r / "proc/sys/kernel/osrelease"),
        "cpu": probe_cpu(r),
        "ram": probe_ram(r),
        "disks": disks,
        "mounts": probe_mounts(r, disks),
        "nics": nics,
        "rdma": rdma,
        "nvidia_kernel_module": probe_nvidia_module(r),
        "xid": probe_xid(runner),
        "fabric": probe_fabric_host(r, runner),
    }
