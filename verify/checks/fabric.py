"""NVSwitch fabric judge (group ``gpu``, id ``gpu.fabric``). Pure.

The GPUs' own fabric state (NVML, Hopper and later) is the authority where they report one; on older
boards with NVSwitches the fabric manager's service state is the only witness. A host without switches,
whose GPUs report no fabric, needs no fabric manager and the check is skipped saying so. On a board with
NVSwitches the service must also be running where the GPUs say they registered: they stay "completed"
after the fabric manager dies, which only the service state shows.
"""

from __future__ import annotations

from dlverify.checks.common import Json, get, missing
from dlverify.results import Recorder

NAME = "NVSwitch fabric"
# systemctl is-active words for a service that is up (or on its way up after a restart)
_RUNNING = frozenset({"active", "reloading", "activating"})
_CONSEQUENCE = (
    "CUDA programs fail with 'system not yet initialized' (error 802) until nvidia-fabricmanager registers "
    "the GPUs: see `systemctl status nvidia-fabricmanager`; its version must equal the driver's"
)


def check_fabric(snap: Json, gpus: list[Json], j: Recorder) -> None:
    host = get(snap, "host", "fabric")
    host_ok = isinstance(host, dict) and missing(host) is None
    switches = host.get("nvswitches") if host_ok else None
    service = host.get("fabricmanager") if host_ok else None
    service_word = service if isinstance(service, str) else None
    reporting = {
        g.get("index", i): g["fabric"]
        for i, g in enumerate(gpus)
        if isinstance(g.get("fabric"), dict) and missing(g["fabric"]) is None
    }
    if not reporting and not switches:
        why = "no NVSwitch on this host" if switches == [] else f"NVSwitches not probed ({missing(host)})"
        j.check("gpu.fabric", NAME).skip(f"{why} and no GPU reports a fabric: no fabric manager needed")
        return
    svc = f"; nvidia-fabricmanager {service_word}" if service_word else ""
    if reporting:
        bad = {
            i: f
            for i, f in reporting.items()
            if f.get("state") != "completed" or f.get("status") != "NVML_SUCCESS"
        }
        if not bad and switches and service_word and service_word not in _RUNNING:
            # registered before the service died: NVML still says completed, but nothing tends the
            # fabric any more (a GPU reset, a switch error or the next boot leaves CUDA at error 802)
            j.check("gpu.fabric", NAME).fail(
                f"registered on {len(reporting)} GPU(s){svc}",
                "completed, nvidia-fabricmanager active",
                f"the GPUs registered, but the nvidia-fabricmanager service is {service_word} on this "
                f"NVSwitch board: start it (`systemctl restart nvidia-fabricmanager`; "
                f"`journalctl -u nvidia-fabricmanager` says why it stopped); without it {_CONSEQUENCE}",
            )
            return
        if not bad:
            j.check("gpu.fabric", NAME).ok(f"registered on {len(reporting)} GPU(s){svc}", "completed")
            return
        seen = ", ".join(
            f"GPU {i}: {f.get('state')}"
            + ("" if f.get("status") == "NVML_SUCCESS" else f" ({f.get('status')})")
            for i, f in sorted(bad.items())
        )
        j.check("gpu.fabric", NAME).fail(seen + svc, "completed on every GPU", _CONSEQUENCE)
        return
    # NVSwitches, but GPUs that report no fabric state (Ampere and older): the service is the witness
    n = f"{len(switches or [])} NVSwitch(es)"
    if service_word == "active":
        j.check("gpu.fabric", NAME).ok(f"{n}; nvidia-fabricmanager active", "nvidia-fabricmanager active")
    elif service_word:
        j.check("gpu.fabric", NAME).fail(f"{n}; nvidia-fabricmanager {service_word}", "active", _CONSEQUENCE)
    else:
        why = f"service state unknown: {missing(service)}"
        j.check("gpu.fabric", NAME).warn(n, "nvidia-fabricmanager active", why)
