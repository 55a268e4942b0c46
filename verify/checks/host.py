"""Host judges (group ``host``): OS, kernel, CPU, RAM (in ram.py), storage, mounts, network, RDMA. Pure."""

from __future__ import annotations

import re

from dlverify.checks.common import Json, gb, get, missing, version_matches
from dlverify.checks.ram import check_ram
from dlverify.hwspec.model import Spec
from dlverify.results import CheckResult, Recorder


def _cpu_tokens(text: str) -> list[str]:
    t = re.sub(r"\((r|tm)\)|\bcpu\b|\bprocessor\b|@.*$", " ", text.lower())
    return [x for x in re.split(r"[\s,\-]+", t) if x]


def cpu_model_matches(want: str, have: str) -> bool:
    """Case-insensitive, ignoring (R)/(TM)/"CPU": "Intel Xeon Gold 6338"
    matches "Intel(R) Xeon(R) Gold 6338 CPU"."""
    h = _cpu_tokens(have)
    return all(t in h for t in _cpu_tokens(want))


def _os(spec: Spec, host: Json, j: Recorder) -> None:
    want = spec.software.os
    os_ = host.get("os")
    if want is None:
        j.check("host.os", "OS").skip("the spec does not pin an OS", get(os_, "pretty_name"))
        return
    exp = f"{want.name} {want.version}"
    if missing(os_):
        j.check("host.os", "OS").fail(None, exp, f"OS unreadable: {missing(os_)}")
        return
    name, ident, ver = str(os_.get("name")), str(os_.get("id")), str(os_.get("version_id"))
    obs = f"{name} {ver}"
    name_ok = want.name.lower() in name.lower() or want.name.lower() == ident.lower()
    if name_ok and version_matches(want.version, ver):
        j.check("host.os", "OS").ok(obs, exp)
    else:
        j.check("host.os", "OS").fail(obs, exp, f"this host runs {os_.get('pretty_name', obs)}")


def _cpu(spec: Spec, host: Json, j: Recorder) -> None:
    want = spec.hardware.cpu
    cpu = host.get("cpu")
    if want is None:
        j.check("host.cpu.model", "CPU model").skip("the spec does not describe the CPU", get(cpu, "model"))
        return
    why = missing(cpu)
    model = get(cpu, "model")
    if want.model is None:
        j.check("host.cpu.model", "CPU model").skip("the spec gives no CPU model", model)
    elif why or missing(model):
        j.check("host.cpu.model", "CPU model").fail(None, want.model, f"unreadable: {why or missing(model)}")
    elif cpu_model_matches(want.model, model):
        j.check("host.cpu.model", "CPU model").ok(model, want.model)
    else:
        j.check("host.cpu.model", "CPU model").fail(model, want.model, "another CPU than the spec's")
    for key, label, unit in (
        ("cores", "CPU cores", "physical cores"),
        ("threads", "CPU threads", "logical CPUs"),
        ("sockets", "CPU sockets", "sockets"),
    ):
        wanted = getattr(want, key)
        have = get(cpu, key)
        cid = f"host.cpu.{key}"
        if wanted is None:
            continue
        if missing(have):
            j.check(cid, label).fail(None, wanted, f"unreadable: {missing(have)}")
        elif have < wanted:
            extra = " (SMT/Hyper-Threading off?)" if key == "threads" else ""
            j.check(cid, label).fail(have, wanted, f"{wanted - have} {unit} fewer than the spec{extra}")
        elif have > wanted:
            j.check(cid, label).warn(have, wanted, f"{have - wanted} {unit} more than the spec")
        else:
            j.check(cid, label).ok(have, wanted)


def _storage(spec: Spec, host: Json, j: Recorder) -> None:
    disks = host.get("disks")
    mounts = host.get("mounts")
    tol = spec.checks.disk_tolerance
    used: set[str] = set()
    # biggest first, so a 2 TB item does not take the only 8 TB disk; reported in spec order
    order = sorted(range(len(spec.hardware.storage)), key=lambda i: -spec.hardware.storage[i].size_gb)
    per_item: dict[int, Recorder] = {}
    outer = j
    for i in order:
        j = per_item[i] = Recorder(outer.group)
        s = spec.hardware.storage[i]
        cid = f"host.storage[{i}]"
        label = f"storage: {s.label or f'{s.type} {s.size_gb:g} GB'}"
        exp = f"{s.type} >= {s.size_gb * (1 - tol):.0f} GB"
        if missing(disks):
            j.check(cid, label).fail(None, exp, f"disks unreadable: {missing(disks)}")
            continue
        same = [d for d in disks if d.get("class") == s.type and isinstance(d.get("size_bytes"), int)]
        fits = [d for d in same if d["name"] not in used and d["size_bytes"] >= s.size_gb * 1e9 * (1 - tol)]
        if fits:
            d = min(fits, key=lambda d: d["size_bytes"])
            used.add(d["name"])
            j.check(cid, label).ok(f"{d['name']} {s.type} {gb(d['size_bytes'])}", exp)
        else:
            seen = (
                ", ".join(
                    f"{d.get('name')} {d.get('class')} {gb(d['size_bytes'])}"
                    for d in disks
                    if isinstance(d.get("size_bytes"), int)
                )
                or "no disks"
            )
            virtio = [
                d
                for d in disks
                if d.get("class") == "virtio"
                and isinstance(d.get("size_bytes"), int)
                and d.get("name") not in used
                and d["size_bytes"] >= s.size_gb * 1e9 * (1 - tol)
            ]
            if not same and virtio and s.type in ("ssd", "hdd"):
                d = min(virtio, key=lambda d: d["size_bytes"])
                used.add(d["name"])
                j.check(cid, label).warn(
                    f"{d['name']} virtio {gb(d['size_bytes'])}",
                    exp,
                    f"a virtio disk of the size: whether it is {s.type} cannot be seen from the guest",
                )
            else:
                why = f"no free {s.type} disk that large" if same else f"no {s.type} disk"
                j.check(cid, label).fail(seen, exp, f"{why} (found: {seen})")
        if s.mount:
            mid = f"{cid}.mount"
            if missing(mounts):
                j.check(mid, f"mount {s.mount}").fail(None, s.mount, f"mounts unreadable: {missing(mounts)}")
                continue
            m = next((m for m in mounts if m.get("mountpoint") == s.mount), None)
            if m is None:
                j.check(mid, f"mount {s.mount}").fail(
                    "not mounted", f"{s.mount} on {s.type}", f"{s.mount} is not a mount point"
                )
            elif s.type not in (m.get("classes") or []):
                j.check(mid, f"mount {s.mount}").fail(
                    f"{m.get('device')} ({', '.join(m.get('classes') or ['?'])})",
                    f"{s.mount} on {s.type}",
                    f"{s.mount} is not on a {s.type} disk",
                )
            else:
                j.check(mid, f"mount {s.mount}").ok(f"{m.get('device')} ({s.type})", f"{s.mount} on {s.type}")
    for i in sorted(per_item):
        outer.results += per_item[i].results


def _network(spec: Spec, host: Json, j: Recorder) -> None:
    nics, rdma = host.get("nics"), host.get("rdma")
    for i, n in enumerate(spec.hardware.network):
        cid = f"host.network[{i}]"
        label = f"network: {n.label or f'{n.speed_gbps:g} GbE'}"
        exp = f"{n.count} × >= {n.speed_gbps:g} Gb/s"
        if missing(nics):
            j.check(cid, label).fail(None, exp, f"NICs unreadable: {missing(nics)}")
        else:
            fast = [
                x
                for x in nics
                if isinstance(x.get("speed_mbps"), int) and x["speed_mbps"] >= n.speed_gbps * 1000
            ]
            seen = (
                ", ".join(
                    f"{x.get('name')} "
                    + (
                        f"{x['speed_mbps'] / 1000:g} Gb/s"
                        if isinstance(x.get("speed_mbps"), int)
                        else f"({missing(x.get('speed_mbps'))})"
                    )
                    for x in nics
                )
                or "no physical NIC"
            )
            if len(fast) >= n.count:
                j.check(cid, label).ok(
                    ", ".join(f"{x['name']} {x['speed_mbps'] / 1000:g} Gb/s" for x in fast), exp
                )
            else:
                j.check(cid, label).fail(
                    seen, exp, f"{len(fast)} of {n.count} link(s) at {n.speed_gbps:g} Gb/s or faster"
                )
        if n.rdma:
            rid = f"{cid}.rdma"
            layer = "Ethernet" if n.rdma == "roce" else "InfiniBand"
            kind = "RoCE" if n.rdma == "roce" else "InfiniBand"
            if missing(rdma):
                j.check(rid, f"RDMA ({kind})").fail(None, kind, f"RDMA devices unreadable: {missing(rdma)}")
                continue
            ports = [(d.get("name"), p) for d in rdma for p in d.get("ports") or []]
            good = [
                f"{name}/{p.get('port')}"
                for name, p in ports
                if p.get("link_layer") == layer and p.get("state") == "ACTIVE"
            ]
            if len(good) >= n.count:
                j.check(rid, f"RDMA ({kind})").ok(", ".join(good), f"{n.count} active {kind} port(s)")
            else:
                seen = ", ".join(
                    f"{name}/{p.get('port')} {p.get('link_layer')} {p.get('state')}" for name, p in ports
                )
                j.check(rid, f"RDMA ({kind})").fail(
                    seen or "no RDMA device",
                    f"{n.count} active {kind} port(s)",
                    "no RDMA device in /sys/class/infiniband (driver/rdma-core missing?)"
                    if not ports
                    else f"{len(good)} of {n.count} active {kind} port(s)",
                )


def check_host(spec: Spec, snap: Json) -> list[CheckResult]:
    j = Recorder("host")
    host = snap.get("host")
    why = missing(host)
    if why is not None:
        j.check("host", "host").skip(f"host not probed: {why}")
        return j.results
    _os(spec, host, j)
    kernel = host.get("kernel")
    j.check("host.kernel", "kernel").skip(
        "informational: the spec does not pin a kernel",
        kernel if isinstance(kernel, str) else missing(kernel),
    )
    _cpu(spec, host, j)
    check_ram(spec, host, j)
    _storage(spec, host, j)
    _network(spec, host, j)
    return j.results
