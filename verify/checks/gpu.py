"""GPU judges (pure: spec, snapshot): the node (group ``gpu``) and each card (groups ``gpu0``..``gpuN``).

This module judges what is about the node (NVML, GPU count, driver, CUDA driver API) and runs each
card's judges in report order. The judges live by what they judge:

- ``gpu_identity``: model, memory, persistence, MIG and compute mode
- ``gpu_health``: ECC, row remapping, retired pages, unrepairable memory, recovery action, and the node's
  XID errors
- ``gpu_links``: PCIe (generation, width, replays) and NVLink (links, error counters) (``fabric``: the
  NVSwitch fabric)
- ``gpu_clocks``: temperature, clocks-event reasons and counters, application clocks, power limit

A new GPU check goes into the module of what it judges, and into :func:`_card` (or :func:`check_gpus`).
"""

from __future__ import annotations

from typing import Any

from dlverify.checks import gpu_clocks, gpu_health, gpu_identity, gpu_links
from dlverify.checks.common import Json, get, missing, version_matches
from dlverify.checks.fabric import check_fabric
from dlverify.hwspec.compat import gpu_model_matches, vkey
from dlverify.hwspec.model import GpuSpec, Spec
from dlverify.results import CheckResult, Recorder


def _spec_for(spec: Spec, name: Any) -> GpuSpec | None:
    if not isinstance(name, str):
        return None
    return next((g for g in spec.hardware.gpus if gpu_model_matches(g.model, name)), None)


def _node(spec: Spec, snap: Json, j: Recorder) -> list[Json] | None:
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
    names: list[str] = [n if isinstance(n := g.get("name"), str) else "?" for g in gpus]
    observed = ", ".join(f"{names.count(n)} × {n}" for n in dict.fromkeys(names)) or "none"
    expected = ", ".join(f"{g.count} × {g.model}" for g in spec.hardware.gpus)
    short = []
    for model in spec.hardware.gpus:
        have = sum(1 for n in names if gpu_model_matches(model.model, n))
        if have < model.count:
            short.append(f"{model.count - have} × {model.model} missing")
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


def _card(spec: Spec, g: Json, j: Recorder) -> None:
    c = spec.checks
    if "unavailable" in g:
        j.check("gpu.handle", "GPU handle").fail(None, None, str(g["unavailable"]))
        return
    gs = _spec_for(spec, g.get("name"))
    gpu_identity.check_model(spec, gs, g, j)
    gpu_identity.check_memory(c, gs, g, j)
    gpu_identity.check_persistence(c, g, j)
    gpu_health.check_ecc(c, g, j)
    gpu_health.check_remap(g, j)
    gpu_health.check_unrepairable_memory(g, j)
    gpu_health.check_recovery_action(g, j)
    gpu_links.check_pcie(gs, c, g, j)
    gpu_links.check_pcie_replays(g, j)
    gpu_links.check_nvlink(gs, g, j)
    gpu_links.check_nvlink_errors(g, j)
    gpu_clocks.check_temperature(c, g, j)
    gpu_clocks.check_clock_events(c, g, j)
    gpu_clocks.check_clock_event_counters(c, g, j)
    gpu_clocks.check_application_clocks(g, j)
    gpu_clocks.check_power_limit(c, g, j)
    gpu_identity.check_mig(c, g, j)
    gpu_identity.check_compute_mode(c, g, j)


def check_gpus(spec: Spec, snap: Json) -> list[CheckResult]:
    node = Recorder("gpu")
    if not spec.hardware.gpus:
        node.check("gpu.count", "GPU count").skip("the spec lists no GPUs")
        return node.results
    gpus = _node(spec, snap, node)
    gpu_health.check_xid(spec, snap, node)
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
