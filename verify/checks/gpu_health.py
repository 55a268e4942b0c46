"""Per-card health judges (ECC, row remapping, page retirement) and the node's XID errors. Pure.

A live fault (volatile uncorrectable ECC errors, a pending or failed row remap, pending retired pages)
fails; history (lifetime ECC errors) warns; XID errors follow ``checks.xid``.
"""

from __future__ import annotations

from typing import Any

from dlverify.checks.common import Json, get, missing
from dlverify.hwspec.model import ChecksSpec, Spec
from dlverify.results import Recorder, Status

# NVIDIA's XID catalog (docs.nvidia.com/deploy/xid-errors): the codes an operator meets most.
XID_MEANING = {
    13: "graphics engine exception",
    31: "GPU memory page fault",
    43: "GPU stopped processing",
    45: "preemptive cleanup after a previous error",
    48: "double-bit ECC error",
    61: "internal micro-controller breakpoint/warning",
    62: "internal micro-controller halt",
    63: "ECC page retirement / row remapping event",
    64: "ECC page retirement / row remapping failure",
    74: "NVLink error",
    79: "GPU has fallen off the bus",
    92: "high single-bit ECC error rate",
    94: "contained ECC error",
    95: "uncontained ECC error",
    119: "GSP RPC timeout",
    120: "GSP error",
}
# raised by a faulty *application* (bad kernel, illegal address, killed job), not by the hardware
APPLICATION_XIDS = frozenset({13, 31, 43, 45})


def check_xid(spec: Spec, snap: Json, j: Recorder) -> None:
    xid = get(snap, "host", "xid")
    policy = spec.checks.xid
    if policy == "ignore":
        j.check("gpu.xid", "XID errors").skip("ignored by checks.xid")
        return
    why = missing(xid)
    if why is not None:
        j.check("gpu.xid", "XID errors").skip(why)
        return
    events = [e for e in xid.get("events") or [] if isinstance(e, dict)]
    src = xid.get("source", "kernel log")
    if not events:
        j.check("gpu.xid", "XID errors").ok("none since boot", "none", f"read from {src}")
        return
    counts: dict[int, int] = {}
    for e in events:
        code = e.get("xid")
        if isinstance(code, int):
            counts[code] = counts.get(code, 0) + 1
    hardware = sorted(c for c in counts if c not in APPLICATION_XIDS)
    shown = ", ".join(f"{c} ×{n}" if n > 1 else str(c) for c, n in sorted(counts.items()))
    worst = next((e for e in events if e.get("xid") in hardware), events[0])
    worst_code: Any = worst.get("xid")
    detail = (
        f"XID {worst_code} ({XID_MEANING.get(worst_code, 'see NVIDIA XID catalog')}) on {worst.get('pci')}: "
        f"{worst.get('text', '')} [{src}]"
    )
    observed = f"{len(events)} event(s): XID {shown}"
    if not hardware:
        j.check("gpu.xid", "XID errors").warn(observed, "none", "application-level XIDs only; " + detail)
    else:
        j.check("gpu.xid", "XID errors").policy(policy, observed, "none", detail)


def check_ecc(c: ChecksSpec, g: Json, j: Recorder) -> None:
    mode, pending = g.get("ecc_mode_current"), g.get("ecc_mode_pending")
    if c.ecc == "ignore":
        j.check("gpu.ecc.mode", "ECC mode").skip("ignored by checks.ecc")
    elif missing(mode):
        j.check("gpu.ecc.mode", "ECC mode").policy(
            c.ecc, None, "enabled", f"ECC mode unreadable: {missing(mode)}"
        )
    elif not mode:
        hint = "; enabling is pending a reboot" if pending is True else " (nvidia-smi -e 1, then reboot)"
        j.check("gpu.ecc.mode", "ECC mode").policy(c.ecc, "disabled", "enabled", f"ECC is off{hint}")
    elif pending is False:
        j.check("gpu.ecc.mode", "ECC mode").warn(
            "enabled", "enabled", "ECC will be disabled at the next reboot"
        )
    else:
        j.check("gpu.ecc.mode", "ECC mode").ok("enabled", "enabled")

    # the volatile count is a live fault; the lifetime count is history worth watching
    for key, cid, label, status, bad in (
        (
            "ecc_volatile_uncorrected",
            "gpu.ecc.volatile_uncorrected",
            "ECC uncorrected (volatile)",
            Status.FAIL,
            "uncorrectable ECC error(s) since the driver loaded: drain the GPU and reset it",
        ),
        (
            "ecc_aggregate_uncorrected",
            "gpu.ecc.aggregate_uncorrected",
            "ECC uncorrected (lifetime)",
            Status.WARN,
            "uncorrectable ECC error(s) over the card's life: watch it",
        ),
    ):
        count = g.get(key)
        if c.ecc == "ignore":
            j.check(cid, label).skip("ignored by checks.ecc")
        elif missing(count):
            j.check(cid, label).skip(missing(count) or "")
        elif count:
            j.check(cid, label).status(status, count, 0, f"{count} {bad}")
        else:
            j.check(cid, label).ok(0, 0)


def check_remap(g: Json, j: Recorder) -> None:
    for key, cid, label, bad in (
        (
            "remapped_rows_pending",
            "gpu.remap.pending",
            "row remap pending",
            "a row remap is pending: reset the GPU to apply it",
        ),
        (
            "remapped_rows_failure",
            "gpu.remap.failure",
            "row remap failure",
            "row remapping failed: the card is out of spare rows (RMA)",
        ),
        (
            "retired_pages_pending",
            "gpu.retired_pages.pending",
            "page retirement pending",
            "retired pages are pending: reset the GPU to blacklist them",
        ),
    ):
        v = g.get(key)
        if missing(v):
            j.check(cid, label).skip(missing(v) or "")
        elif v:
            j.check(cid, label).fail("yes", "no", bad)
        else:
            j.check(cid, label).ok("no", "no")


def check_recovery_action(g: Json, j: Recorder) -> None:
    """The driver's own verdict (NVML_FI_DEV_GET_GPU_RECOVERY_ACTION, drivers >= 570): anything but
    ``none`` means the GPU needs a reset, a drain or a reboot before it can be trusted."""
    action = g.get("recovery_action")
    if missing(action):
        j.check("gpu.recovery_action", "recovery action").skip(missing(action) or "")
    elif action == "none":
        j.check("gpu.recovery_action", "recovery action").ok("none", "none")
    else:
        j.check("gpu.recovery_action", "recovery action").fail(
            action,
            "none",
            f"the driver asks for {action.replace('_', ' ')} (nvidia-smi -q: GPU Recovery Action)",
        )


def check_unrepairable_memory(g: Json, j: Recorder) -> None:
    """Memory the driver cannot repair (row remapping exhausted; newer drivers): the card needs an RMA."""
    flag = g.get("unrepairable_memory")
    if missing(flag):
        j.check("gpu.memory.unrepairable", "unrepairable memory").skip(missing(flag) or "")
    elif flag:
        j.check("gpu.memory.unrepairable", "unrepairable memory").fail(
            "flagged", "none", "the driver reports memory it cannot repair: replace the card"
        )
    else:
        j.check("gpu.memory.unrepairable", "unrepairable memory").ok("none", "none")
