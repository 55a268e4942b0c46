"""Render check results as Prometheus metrics, text exposition format (node_exporter textfile collector).

One series per check and GPU::

    dlverify_check_status{check="gpu.ecc.volatile_uncorrected",group="gpu0",gpu="0",uuid="GPU-..."} 2

Values (``STATUS_VALUE``, documented in the README): 0 pass, 1 warn, 2 fail, 3 skip, so ``max(...) >= 2``
means "something failed". ``gpu``/``uuid`` are set only on a GPU's checks and are the labels dcgm-exporter
uses (``gpu``, ``UUID``), so the two can be joined. Written by hand (the format is four lines of grammar),
so the verifier needs no extra runtime dependency; the tests parse it with prometheus_client and promtool.
"""

from __future__ import annotations

import re
import time
from collections.abc import Mapping, Sequence
from typing import Any

from dlverify import __version__
from dlverify.results import CheckResult, Status, exit_code, summarize

STATUS_VALUE = {Status.PASS: 0, Status.WARN: 1, Status.FAIL: 2, Status.SKIP: 3}
_GPU_GROUP = re.compile(r"gpu(\d+)\Z")


def _escape(value: object) -> str:
    return str(value).replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _labels(pairs: Mapping[str, object]) -> str:
    body = ",".join(f'{k}="{_escape(v)}"' for k, v in pairs.items() if v is not None and v != "")
    return "{" + body + "}" if body else ""


Sample = tuple[Mapping[str, Any], float]


def family(lines: list[str], name: str, help_text: str, samples: Sequence[Sample]) -> None:
    """One gauge family in the text exposition format (``None``/empty label values are left out)."""
    lines.append(f"# HELP {name} {help_text}")
    lines.append(f"# TYPE {name} gauge")
    for labels, value in samples:
        text = repr(float(value)) if isinstance(value, float) and not value.is_integer() else str(int(value))
        lines.append(f"{name}{_labels(labels)} {text}")


def status_samples(
    results: Sequence[CheckResult], uuids: Mapping[str, Any], uuid_label: str = "uuid"
) -> list[Sample]:
    """One sample per (check, group), the worst status of a repeated id; ``gpu`` and the UUID label (named
    ``uuid_label``) on a GPU group's checks (``gpu0`` -> ``gpu="0"``)."""
    status: dict[tuple[str, str], Status] = {}
    order = [Status.PASS, Status.SKIP, Status.WARN, Status.FAIL]
    for r in results:
        key = (r.id, r.group)
        if key not in status or order.index(r.status) > order.index(status[key]):
            status[key] = r.status
    samples: list[Sample] = []
    for (cid, group), st in status.items():
        gpu = gpu_index(group)
        labels = {"check": cid, "group": group, "gpu": gpu, uuid_label: uuids.get(gpu) if gpu else None}
        samples.append((labels, STATUS_VALUE[st]))
    return samples


def gpu_index(group: str) -> str | None:
    """``"gpu3"`` -> ``"3"`` (the NVML index, dcgm-exporter's ``gpu`` label); other groups: None."""
    m = _GPU_GROUP.match(group)
    return m.group(1) if m else None


def render_prometheus(
    results: Sequence[CheckResult],
    *,
    command: str,
    meta: Mapping[str, Any] | None = None,
    now: float | None = None,
) -> str:
    """The metrics for one run. ``meta["gpus"]`` ({"0": "GPU-uuid", ...}) supplies the ``uuid`` labels;
    ``meta["driver_version"]``/``["cuda_driver_version"]`` the info series; ``now`` the run's timestamp."""
    meta = meta or {}
    samples = status_samples(results, meta.get("gpus") or {})
    lines: list[str] = []
    family(
        lines,
        "dlverify_check_status",
        "dlverify check result per check and GPU: 0 pass, 1 warn, 2 fail, 3 skip.",
        samples,
    )
    counts = summarize(results)
    family(
        lines,
        "dlverify_check_results",
        "Number of checks per status in the last dlverify run.",
        [({"status": s.value}, counts[s.value]) for s in Status],
    )
    family(
        lines,
        "dlverify_check_exit_code",
        "Exit code of the last dlverify run: 0 no check failed, 1 a check failed.",
        [({}, exit_code(results))],
    )
    family(
        lines,
        "dlverify_check_last_run_timestamp_seconds",
        "Unix time the last dlverify run finished.",
        [({}, round(time.time() if now is None else now, 3))],
    )
    if meta.get("elapsed_seconds") is not None:
        family(
            lines,
            "dlverify_check_duration_seconds",
            "Seconds the last dlverify run took (probes and checks).",
            [({}, float(meta["elapsed_seconds"]))],
        )
    family(
        lines,
        "dlverify_info",
        "dlverify's version, the NVIDIA driver and the CUDA version the driver supports; always 1.",
        [
            (
                {
                    "version": __version__,
                    "command": command,
                    "driver": meta.get("driver_version"),
                    "cuda": meta.get("cuda_driver_version"),
                },
                1,
            )
        ],
    )
    return "\n".join(lines) + "\n"
