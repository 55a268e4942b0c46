"""Per-card link judges: PCIe generation and width, NVLink. Pure. (The NVSwitch fabric is ``fabric.py``.)

PCIe compares the link's *maximum* generation and width with the card's own maximum, and the *current* ones
with the link's maximum: a current width below the maximum is a fault; a current generation below it is a
fault on a card known to hold its maximum at idle (the Hopper recordings hold Gen5 idle) and a warning on
others, which may downclock an idle link to save power.
"""

from __future__ import annotations

from typing import Any

from dlverify.checks.common import Json, missing
from dlverify.hwspec.compat import gpu_info
from dlverify.hwspec.model import ChecksSpec, GpuSpec
from dlverify.results import Recorder
from dlverify.unavailable import NO_NVLINK


def check_pcie(gs: GpuSpec | None, c: ChecksSpec, g: Json, j: Recorder) -> None:
    if c.pcie == "ignore":
        for cid in ("gpu.pcie.gen", "gpu.pcie.gen_current", "gpu.pcie.width", "gpu.pcie.width_current"):
            j.check(cid, cid.removeprefix("gpu.")).skip("ignored by checks.pcie")
        return
    policy = c.pcie
    gen_max, gen_cur, gen_gpu = g.get("pcie_gen_max"), g.get("pcie_gen_current"), g.get("pcie_gen_gpu_max")
    want_gen = gs.pcie_gen if gs and gs.pcie_gen else (gen_gpu if isinstance(gen_gpu, int) else None)
    name = g.get("name")
    info = gpu_info(name) if isinstance(name, str) else None  # the compat data's record of this card
    if missing(gen_max):
        j.check("gpu.pcie.gen", "PCIe generation").skip(missing(gen_max) or "")
    elif want_gen is None:
        j.check("gpu.pcie.gen", "PCIe generation").skip(
            "the card's own maximum is unknown and the spec gives none", f"Gen{gen_max}"
        )
    elif gen_max < want_gen:
        j.check("gpu.pcie.gen", "PCIe generation").policy(
            policy,
            f"Gen{gen_max}",
            f"Gen{want_gen}",
            f"the link can only train to Gen{gen_max}: slot, riser or BIOS setting",
        )
    else:
        j.check("gpu.pcie.gen", "PCIe generation").ok(f"Gen{gen_max}", f"Gen{want_gen}", "the link's maximum")
    _gen_current(policy, info, gen_cur, gen_max, j)

    w_max, w_cur = g.get("pcie_width_max"), g.get("pcie_width_current")
    # every data-center and workstation card in the compat data is x16; NVML has no "GPU max width"
    want_w = gs.pcie_width if gs and gs.pcie_width else getattr(info, "pcie_width", None) or 16
    if missing(w_max):
        j.check("gpu.pcie.width", "PCIe width").skip(missing(w_max) or "")
    elif w_max < want_w:
        j.check("gpu.pcie.width", "PCIe width").policy(
            policy,
            f"x{w_max}",
            f"x{want_w}",
            f"the link is only x{w_max} capable: wrong slot, riser or bifurcation setting",
        )
    else:
        j.check("gpu.pcie.width", "PCIe width").ok(f"x{w_max}", f"x{want_w}")
    if missing(w_cur) or missing(w_max):
        j.check("gpu.pcie.width_current", "PCIe width (current)").skip(missing(w_cur) or missing(w_max) or "")
    elif w_cur < w_max:
        j.check("gpu.pcie.width_current", "PCIe width (current)").policy(
            policy,
            f"x{w_cur}",
            f"x{w_max}",
            f"trained at x{w_cur} of x{w_max}: reseat the card or check the riser",
        )
    else:
        j.check("gpu.pcie.width_current", "PCIe width (current)").ok(f"x{w_cur}", f"x{w_max}")


def _gen_current(policy: str, info: Any, gen_cur: Any, gen_max: Any, j: Recorder) -> None:
    """The generation the link runs at now. A card that holds its maximum at idle (both Hopper recordings
    hold Gen5 at idle) trained below it: a fault, judged by checks.pcie. Other cards may downclock an idle
    link to save power, so a lower generation only warns."""
    name = "PCIe generation (current)"
    if missing(gen_cur) or missing(gen_max):
        j.check("gpu.pcie.gen_current", name).skip(missing(gen_cur) or missing(gen_max) or "")
        return
    if gen_cur >= gen_max:
        j.check("gpu.pcie.gen_current", name).ok(f"Gen{gen_cur}", f"Gen{gen_max}")
    elif getattr(info, "pcie_gen_holds_at_idle", None):
        j.check("gpu.pcie.gen_current", name).policy(
            policy,
            f"Gen{gen_cur}",
            f"Gen{gen_max}",
            f"trained at Gen{gen_cur} of Gen{gen_max}; this card holds its maximum even at idle: "
            "reseat the card, check the riser and the slot's BIOS setting",
        )
    else:
        j.check("gpu.pcie.gen_current", name).warn(
            f"Gen{gen_cur}",
            f"Gen{gen_max}",
            f"running Gen{gen_cur} of Gen{gen_max}: an idle GPU may downclock its link; "
            "a loaded one should not (re-check under load)",
        )


def check_nvlink(gs: GpuSpec | None, g: Json, j: Recorder) -> None:
    links = g.get("nvlink")
    want = gs.nvlink if gs else None
    why = missing(links)
    if want is False:
        j.check("gpu.nvlink", "NVLink").skip("the spec expects no NVLink")
    elif why is not None:
        if why == NO_NVLINK:
            if want:
                j.check("gpu.nvlink", "NVLink").fail(
                    "not supported", "links up", "NVLink not supported on this card"
                )
            else:
                j.check("gpu.nvlink", "NVLink").skip("NVLink not supported on this card")
        else:
            j.check("gpu.nvlink", "NVLink").skip(why)
    else:
        up = [link for link in links if isinstance(link, dict) and link.get("active")]
        down = [str(link.get("link")) for link in links if isinstance(link, dict) and not link.get("active")]
        obs = f"{len(up)}/{len(links)} up"
        if not down:
            j.check("gpu.nvlink", "NVLink").ok(obs, "all up")
        elif not up and want is None:
            j.check("gpu.nvlink", "NVLink").warn(
                obs, "all up", "the card has NVLink but no link is up (no bridge?)"
            )
        else:
            j.check("gpu.nvlink", "NVLink").fail(obs, "all up", f"link(s) {', '.join(down)} down")


def check_pcie_replays(g: Json, j: Recorder) -> None:
    """PCIe replays since the driver loaded: each is a packet the link had to resend (a marginal link,
    riser or slot). History, not a live fault: any warns."""
    n = g.get("pcie_replay_count")
    if missing(n):
        j.check("gpu.pcie.replays", "PCIe replays").skip(missing(n) or "")
    elif n:
        j.check("gpu.pcie.replays", "PCIe replays").warn(
            str(n), "0", f"{n} PCIe replay(s) since the driver loaded: a marginal link, riser or slot"
        )
    else:
        j.check("gpu.pcie.replays", "PCIe replays").ok("0", "0")


def check_nvlink_errors(g: Json, j: Recorder) -> None:
    """NVLink replay, recovery and CRC error counters, summed over the card's links: any warns."""
    errs = g.get("nvlink_errors")
    why = missing(errs)
    name = "NVLink error counters"
    if why is not None:
        j.check("gpu.nvlink.errors", name).skip(why)
        return
    bad = {k: v for k, v in errs.items() if isinstance(v, (int, float)) and v}
    if bad:
        shown = ", ".join(f"{k} {v}" for k, v in bad.items())
        j.check("gpu.nvlink.errors", name).warn(
            shown, "0", "NVLink errors since the driver loaded: a link retrains or resends (cable, bridge)"
        )
    else:
        j.check("gpu.nvlink.errors", name).ok("0", "0")
