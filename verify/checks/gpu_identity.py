"""Per-card judges of what the card is and how it is set up (groups ``gpu0``..``gpuN``): model, memory,
persistence mode, MIG mode, compute mode. Pure."""

from __future__ import annotations

from dlverify.checks.common import Json, gib, missing
from dlverify.hwspec.compat import gpu_info
from dlverify.hwspec.model import ChecksSpec, GpuSpec, Spec
from dlverify.results import Recorder

# where the data knows a model's exact total (recorded on a real card): the slack for drivers' reserves
EXACT_MEMORY_SLACK = 0.01


def check_model(spec: Spec, gs: GpuSpec | None, g: Json, j: Recorder) -> None:
    name = g.get("name")
    if missing(name):
        j.check("gpu.model", "model").fail(None, None, f"name unreadable: {missing(name)}")
    elif gs is None:
        j.check("gpu.model", "model").fail(
            name, " | ".join(s.model for s in spec.hardware.gpus), "matches no GPU model of the spec"
        )
    else:
        j.check("gpu.model", "model").ok(name, gs.model)


def check_memory(c: ChecksSpec, gs: GpuSpec | None, g: Json, j: Recorder) -> None:
    mem = g.get("memory_total_bytes")
    if gs is None or gs.memory_gb is None:
        j.check("gpu.memory", "memory").skip(
            "not compared: this GPU matches no model of the spec (see gpu.model)"
            if gs is None
            else "the spec gives no memory size for this model",
            gib(mem) if isinstance(mem, int) else None,
        )
    elif missing(mem):
        j.check("gpu.memory", "memory").fail(None, f"{gs.memory_gb:g} GB", f"unreadable: {missing(mem)}")
    else:
        info = gpu_info(g["name"]) if isinstance(g.get("name"), str) else None
        exact = getattr(info, "memory_mib", None)
        have_mib = mem / 2**20
        if exact:
            # the card's exact total as NVML reports it on a healthy card of this model: only the small
            # difference between drivers' reserves is tolerated, never a missing memory stack
            low_mib = exact * (1 - EXACT_MEMORY_SLACK)
            note = f"this model reports {exact} MiB (within {EXACT_MEMORY_SLACK:.0%})"
            if have_mib >= low_mib:
                j.check("gpu.memory", "memory").ok(gib(mem), f"{gs.memory_gb:g} GB", note)
            else:
                j.check("gpu.memory", "memory").fail(
                    gib(mem),
                    f"{gs.memory_gb:g} GB",
                    f"{have_mib:.0f} MiB: {exact - have_mib:.0f} MiB short; {note}",
                )
            return
        # exact size unknown for this model: cards are sold in GB but report GiB after the driver's
        # reserve (80GB -> ~79.6 GiB); checks.gpu_memory_tolerance covers that difference only
        low = gs.memory_gb * (1 - c.gpu_memory_tolerance)
        have = mem / 2**30
        if have >= low:
            j.check("gpu.memory", "memory").ok(
                gib(mem), f"{gs.memory_gb:g} GB", "exact size of this model unknown: within the tolerance"
            )
        else:
            j.check("gpu.memory", "memory").fail(
                gib(mem),
                f"{gs.memory_gb:g} GB",
                f"below {low:.1f} GiB (tolerance {c.gpu_memory_tolerance:.0%})",
            )


def check_persistence(c: ChecksSpec, g: Json, j: Recorder) -> None:
    pm = g.get("persistence_mode")
    if c.persistence_mode == "ignore":
        j.check("gpu.persistence", "persistence mode").skip("ignored by checks.persistence_mode")
    elif missing(pm):
        j.check("gpu.persistence", "persistence mode").skip(missing(pm) or "")
    elif pm:
        j.check("gpu.persistence", "persistence mode").ok("enabled", "enabled")
    else:
        j.check("gpu.persistence", "persistence mode").policy(
            c.persistence_mode,
            "disabled",
            "enabled",
            "persistence mode off: the driver tears down state between jobs (nvidia-persistenced)",
        )


def check_mig(c: ChecksSpec, g: Json, j: Recorder) -> None:
    mig, mig_p = g.get("mig_mode_current"), g.get("mig_mode_pending")
    if c.mig == "any":
        j.check("gpu.mig", "MIG mode").skip("checks.mig is 'any'")
    elif missing(mig):
        why = missing(mig) or ""
        if c.mig == "disabled" and "not supported" in why:
            j.check("gpu.mig", "MIG mode").ok("not supported", "disabled")
        else:
            j.check("gpu.mig", "MIG mode").skip(why)
    else:
        want = c.mig == "enabled"
        obs = "enabled" if mig else "disabled"
        if bool(mig) != want:
            j.check("gpu.mig", "MIG mode").fail(obs, c.mig, f"MIG is {obs}; the spec wants it {c.mig}")
        elif isinstance(mig_p, bool) and mig_p != mig:
            j.check("gpu.mig", "MIG mode").warn(obs, c.mig, "a MIG mode change is pending a GPU reset")
        else:
            j.check("gpu.mig", "MIG mode").ok(obs, c.mig)


def check_compute_mode(c: ChecksSpec, g: Json, j: Recorder) -> None:
    cm = g.get("compute_mode")
    if c.compute_mode == "any":
        j.check("gpu.compute_mode", "compute mode").skip(
            "checks.compute_mode is 'any'", cm if isinstance(cm, str) else None
        )
    elif missing(cm):
        j.check("gpu.compute_mode", "compute mode").skip(missing(cm) or "")
    elif cm == c.compute_mode:
        j.check("gpu.compute_mode", "compute mode").ok(cm, c.compute_mode)
    else:
        j.check("gpu.compute_mode", "compute mode").fail(cm, c.compute_mode, "set it with nvidia-smi -c")
