"""GPU judges: node-level (group ``gpu``) and per card (groups ``gpu0``..``gpuN``). Pure: (spec, snapshot)."""

from __future__ import annotations

import re
from typing import Any

from dlverify import clocks
from dlverify.checks.common import get, gib, missing, version_matches
from dlverify.checks.fabric import check_fabric
from dlverify.hwspec.compat import vkey
from dlverify.hwspec.model import GpuSpec, Spec
from dlverify.results import CheckResult, Recorder, Status

NO_NVLINK = "no NVLink on this card"

_FORM_FACTOR = re.compile(r"^sxm\d?$")


def _tokens(name: str) -> list[str]:
    t = re.sub(r"(?i)\b(nvidia|geforce|tesla)\b", " ", name).lower()
    return [x for x in re.split(r"[\s\-_/,()]+", t) if x]


def model_matches(spec_model: str, nvml_name: str) -> bool:
    """Does NVML's name satisfy the spec's model? The compat data knows each card's aliases."""
    try:
        from dlverify.hwspec.compat import gpu_model_matches
    except ImportError:
        return _model_matches_tokens(spec_model, nvml_name)
    return gpu_model_matches(spec_model, nvml_name)


def _card_info(nvml_name: Any) -> Any:
    """The compat data's record of this card (PCIe width, NVLink), or None."""
    if not isinstance(nvml_name, str):
        return None
    try:
        from dlverify.hwspec.compat import gpu_info

        return gpu_info(nvml_name)
    except Exception:  # compat data missing or unreadable: fall back to NVML's own numbers
        return None


def _model_matches_tokens(spec_model: str, nvml_name: str) -> bool:
    """Fallback without compat data. Every token of the spec's model must appear in NVML's name
    ("NVIDIA A100 80GB" ~ "A100-SXM4-80GB").

    NVML names SXM H100/H200 boards by their memory ("H100 80GB HBM3"), so an "SXM" token in the spec
    is satisfied by an SXM or HBM token in the name, as long as the name is not a PCIe/NVL board.
    """
    have = _tokens(nvml_name)
    for tok in _tokens(spec_model):
        if tok in have:
            continue
        if _FORM_FACTOR.match(tok) and (
            any(_FORM_FACTOR.match(h) or h.startswith("hbm") for h in have)
            and not {"pcie", "nvl"} & set(have)
        ):
            continue
        return False
    return True


def _spec_for(spec: Spec, name: Any) -> GpuSpec | None:
    if not isinstance(name, str):
        return None
    return next((g for g in spec.hardware.gpus if model_matches(g.model, name)), None)


def _node(spec: Spec, snap: dict[str, Any], j: Recorder) -> list[dict[str, Any]] | None:
    nvml = snap.get("nvml")
    sw = spec.software
    why = missing(nvml)
    if why is not None:
        module = get(snap, "host", "nvidia_kernel_module")
        hint = f" (loaded kernel module: {module})" if isinstance(module, str) else ""
        j.check("gpu.nvml", "NVML").fail("unavailable", "NVML answers", f"{why}{hint}")
        want = spec.hardware.gpu_count
        j.check("gpu.count", "GPU count").fail(
            "0 visible", want, "no GPU can be seen: NVML unavailable (see gpu.nvml)"
        )
        for cid, name in (("gpu.driver", "driver version"), ("gpu.cuda_driver", "CUDA driver API")):
            j.check(cid, name).skip("NVML unavailable (see gpu.nvml)")
        return None
    gpus = [g for g in (nvml.get("gpus") or []) if isinstance(g, dict)]
    driver = nvml.get("driver_version")
    j.check("gpu.nvml", "NVML").ok(f"NVML {nvml.get('nvml_version')}, {len(gpus)} GPU(s)")

    # count, per model
    want_total = spec.hardware.gpu_count
    names = [g.get("name") if isinstance(g.get("name"), str) else "?" for g in gpus]
    observed = ", ".join(f"{names.count(n)} × {n}" for n in dict.fromkeys(names)) or "none"
    expected = ", ".join(f"{g.count} × {g.model}" for g in spec.hardware.gpus)
    short = []
    for g in spec.hardware.gpus:
        have = sum(1 for n in names if model_matches(g.model, n))
        if have < g.count:
            short.append(f"{g.count - have} × {g.model} missing")
    if len(gpus) < want_total or short:
        j.check("gpu.count", "GPU count").fail(
            observed, expected, "; ".join(short) or f"{want_total - len(gpus)} GPU(s) missing"
        )
    elif len(gpus) > want_total:
        j.check("gpu.count", "GPU count").warn(
            observed, expected, f"{len(gpus) - want_total} more GPU(s) than the spec"
        )
    else:
        j.check("gpu.count", "GPU count").ok(observed, expected)

    # driver: exact, or the branch when the spec gives "535"
    if not sw.nvidia_driver:
        j.check("gpu.driver", "driver version").skip("the spec does not pin a driver", driver)
    elif missing(driver):
        j.check("gpu.driver", "driver version").fail(
            None, sw.nvidia_driver, f"driver version unreadable: {missing(driver)}"
        )
    elif version_matches(sw.nvidia_driver, driver):
        j.check("gpu.driver", "driver version").ok(
            driver, sw.nvidia_driver, "" if "." in sw.nvidia_driver else f"branch {sw.nvidia_driver}"
        )
    else:
        what = "exact version" if sw.nvidia_driver.count(".") >= 2 else "branch"
        j.check("gpu.driver", "driver version").fail(
            driver, sw.nvidia_driver, f"the spec pins driver {what} {sw.nvidia_driver}"
        )

    cuda_drv = nvml.get("cuda_driver_version")
    if not sw.cuda:
        j.check("gpu.cuda_driver", "CUDA driver API").skip("the spec does not pin a CUDA toolkit", cuda_drv)
    elif missing(cuda_drv):
        j.check("gpu.cuda_driver", "CUDA driver API").fail(
            None, f">= {sw.cuda}", f"unreadable: {missing(cuda_drv)}"
        )
    elif vkey(cuda_drv)[:2] >= vkey(sw.cuda)[:2]:
        j.check("gpu.cuda_driver", "CUDA driver API").ok(cuda_drv, f">= {sw.cuda}")
    else:
        j.check("gpu.cuda_driver", "CUDA driver API").fail(
            cuda_drv,
            f">= {sw.cuda}",
            f"this driver runs CUDA up to {cuda_drv}; toolkit {sw.cuda} needs a newer driver",
        )
    return gpus


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


def _xid(spec: Spec, snap: dict[str, Any], j: Recorder) -> None:
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
    code = worst.get("xid")
    detail = (
        f"XID {code} ({XID_MEANING.get(code, 'see NVIDIA XID catalog')}) on {worst.get('pci')}: "
        f"{worst.get('text', '')} [{src}]"
    )
    observed = f"{len(events)} event(s): XID {shown}"
    if not hardware:
        j.check("gpu.xid", "XID errors").warn(observed, "none", "application-level XIDs only; " + detail)
    else:
        j.check("gpu.xid", "XID errors").policy(policy, observed, "none", detail)


def _card(spec: Spec, g: dict[str, Any], j: Recorder) -> None:
    c = spec.checks
    name = g.get("name")
    if "unavailable" in g:
        j.check("gpu.handle", "GPU handle").fail(None, None, str(g["unavailable"]))
        return
    gs = _spec_for(spec, name)
    # model
    if missing(name):
        j.check("gpu.model", "model").fail(None, None, f"name unreadable: {missing(name)}")
    elif gs is None:
        j.check("gpu.model", "model").fail(
            name, " | ".join(s.model for s in spec.hardware.gpus), "matches no GPU model of the spec"
        )
    else:
        j.check("gpu.model", "model").ok(name, gs.model)

    # memory
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
        # cards are sold in GB but report GiB after the driver's reserve (80GB -> ~79.6 GiB)
        low = gs.memory_gb * (1 - c.gpu_memory_tolerance)
        have = mem / 2**30
        if have >= low:
            j.check("gpu.memory", "memory").ok(gib(mem), f"{gs.memory_gb:g} GB")
        else:
            j.check("gpu.memory", "memory").fail(
                gib(mem),
                f"{gs.memory_gb:g} GB",
                f"below {low:.1f} GiB (tolerance {c.gpu_memory_tolerance:.0%})",
            )

    # persistence
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

    _ecc(c, g, j)
    _pcie(gs, c, g, j)
    _nvlink(gs, g, j)

    # temperature
    t = g.get("temperature_c")
    if missing(t):
        j.check("gpu.temperature", "temperature").skip(missing(t) or "")
    elif t >= c.gpu_temp_max_c:
        j.check("gpu.temperature", "temperature").fail(
            f"{t} C", f"< {c.gpu_temp_max_c} C", "at or above the maximum"
        )
    elif t >= c.gpu_temp_warn_c:
        j.check("gpu.temperature", "temperature").warn(f"{t} C", f"< {c.gpu_temp_warn_c} C", "running hot")
    else:
        j.check("gpu.temperature", "temperature").ok(f"{t} C", f"< {c.gpu_temp_warn_c} C")

    # clocks-event reasons
    reasons = g.get("clocks_event_reasons")
    if missing(reasons):
        j.check("gpu.clocks_event_reasons", "clocks-event reasons").skip(missing(reasons) or "")
    else:
        active = list(reasons)
        allowed_names = c.allowed_clock_event_reasons
        hard = [r for r in active if clocks.severity(r, allowed_names) is Status.FAIL]
        other = [r for r in active if clocks.severity(r, allowed_names) is Status.WARN]
        shown = ", ".join(active) or "none"
        allowed = "only " + ", ".join(c.allowed_clock_event_reasons)
        if hard:
            j.check("gpu.clocks_event_reasons", "clocks-event reasons").fail(
                shown, allowed, f"clocks held down by {', '.join(hard)}: check cooling and power delivery"
            )
        elif other:
            j.check("gpu.clocks_event_reasons", "clocks-event reasons").warn(
                shown, allowed, f"not in the allowed list: {', '.join(other)}"
            )
        else:
            j.check("gpu.clocks_event_reasons", "clocks-event reasons").ok(shown, allowed)

    # power limit vs default
    lim, dflt = g.get("power_limit_mw"), g.get("power_default_limit_mw")
    if missing(lim) or missing(dflt) or not dflt:
        j.check("gpu.power_limit", "power limit").skip(missing(lim) or missing(dflt) or "no default limit")
    else:
        ratio = lim / dflt
        obs, exp = f"{lim / 1000:.0f} W", f">= {c.power_limit_min_ratio:.0%} of {dflt / 1000:.0f} W"
        if ratio < c.power_limit_min_ratio:
            j.check("gpu.power_limit", "power limit").warn(
                obs, exp, f"capped at {ratio:.0%} of the default limit (nvidia-smi -pl)"
            )
        else:
            j.check("gpu.power_limit", "power limit").ok(obs, exp)

    # MIG
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


def _ecc(c: Any, g: dict[str, Any], j: Recorder) -> None:
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


def _pcie(gs: GpuSpec | None, c: Any, g: dict[str, Any], j: Recorder) -> None:
    if c.pcie == "ignore":
        for cid in ("gpu.pcie.gen", "gpu.pcie.width", "gpu.pcie.width_current"):
            j.check(cid, cid.removeprefix("gpu.")).skip("ignored by checks.pcie")
        return
    policy = c.pcie
    gen_max, gen_cur, gen_gpu = g.get("pcie_gen_max"), g.get("pcie_gen_current"), g.get("pcie_gen_gpu_max")
    want_gen = gs.pcie_gen if gs and gs.pcie_gen else (gen_gpu if isinstance(gen_gpu, int) else None)
    idle = f"current gen {gen_cur}" + (
        " (an idle GPU downclocks its link: not a fault)"
        if isinstance(gen_cur, int) and isinstance(gen_max, int) and gen_cur < gen_max
        else ""
    )
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
            f"the link can only train to Gen{gen_max}: slot, riser or BIOS setting; {idle}",
        )
    else:
        j.check("gpu.pcie.gen", "PCIe generation").ok(f"Gen{gen_max}", f"Gen{want_gen}", idle)

    w_max, w_cur = g.get("pcie_width_max"), g.get("pcie_width_current")
    info = _card_info(g.get("name"))
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


def _nvlink(gs: GpuSpec | None, g: dict[str, Any], j: Recorder) -> None:
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


def check_gpus(spec: Spec, snap: dict[str, Any]) -> list[CheckResult]:
    node = Recorder("gpu")
    if not spec.hardware.gpus:
        node.check("gpu.count", "GPU count").skip("the spec lists no GPUs")
        return node.results
    gpus = _node(spec, snap, node)
    _xid(spec, snap, node)
    if gpus is not None:
        check_fabric(snap, gpus, node)
    else:
        node.check("gpu.fabric", "NVSwitch fabric").skip("NVML unavailable (see gpu.nvml)")
    results = node.results
    for i, g in enumerate(gpus or []):
        j = Recorder(f"gpu{g.get('index', i)}")
        _card(spec, g, j)
        results += j.results
    return results
