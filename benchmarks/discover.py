"""Which GPUs a run benchmarks: NVML indices as nvidia-smi numbers them, an inherited CUDA_VISIBLE_DEVICES
respected, or CPU slots for `--device cpu`; and whether torch can run there at all. Said before any worker
starts, so a run that cannot happen ends with the reason (exit 2), not with a worker's traceback.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from dlverify.probes import nvml as nvml_probe


class NoGpuError(RuntimeError):
    """Nothing to benchmark on: no NVML, no GPUs, or torch without CUDA."""


class GpuSelectionError(ValueError):
    """--gpus names GPUs this host does not have, or is malformed."""


@dataclass(frozen=True)
class Slot:
    slot: int  # position in this run, and the worker's id
    index: int  # NVML index (nvidia-smi order); for CPU runs, just the worker number
    label: str  # report group: gpu0.. / cpu0..
    name: str | None = None
    uuid: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "slot": self.slot,
            "index": self.index,
            "label": self.label,
            "name": self.name,
            "uuid": self.uuid,
        }


def parse_gpus(text: str, available: Sequence[int]) -> list[int]:
    if text.strip().lower() == "all":
        return list(available)
    out: list[int] = []
    for part in text.split(","):
        part = part.strip()
        if not part.isdigit():
            raise GpuSelectionError(f"--gpus: {part!r} is not a GPU index (use 'all' or e.g. '0,2')")
        i = int(part)
        if i not in available:
            have = f"{available[0]}-{available[-1]}" if available else "none"
            raise GpuSelectionError(f"--gpus: there is no GPU {i} on this host (indices: {have})")
        if i not in out:
            out.append(i)
    if not out:
        raise GpuSelectionError("--gpus: no GPU selected")
    return out


def discover_gpus(gpus: str, nvml: Any = nvml_probe) -> list[Slot]:
    """GPUs by NVML index, as nvidia-smi numbers them; raises NoGpuError with the reason."""
    try:
        with nvml.session() as nv:
            count = nvml.query(nv.nvmlDeviceGetCount)
            if not isinstance(count, int):
                raise NoGpuError(f"NVML could not count GPUs: {getattr(count, 'reason', count)}")
            infos = []
            for i in range(count):
                h = nvml.query(nv.nvmlDeviceGetHandleByIndex, i)
                name = nvml.query(nv.nvmlDeviceGetName, h)
                uuid = nvml.query(nv.nvmlDeviceGetUUID, h)
                infos.append(
                    (i, name if isinstance(name, str) else None, uuid if isinstance(uuid, str) else None)
                )
    except nvml_probe.NvmlInitError as exc:
        raise NoGpuError(f"no GPU to benchmark: {exc}") from exc
    if not infos:
        raise NoGpuError("no GPU to benchmark: NVML works but reports 0 GPUs")
    chosen = parse_gpus(gpus, visible_indices(infos, os.environ.get("CUDA_VISIBLE_DEVICES")))
    by_index = {i: (n, u) for i, n, u in infos}
    return [Slot(k, i, f"gpu{i}", *by_index[i]) for k, i in enumerate(chosen)]


def visible_indices(infos: Sequence[tuple[int, str | None, str | None]], visible: str | None) -> list[int]:
    """The NVML indices an inherited CUDA_VISIBLE_DEVICES leaves to this run (Slurm, a container, a user).

    Unset: every GPU. Entries are NVML indices (nvidia-smi numbers; Slurm's gres numbering) or GPU UUIDs
    (a prefix is enough, as CUDA accepts). CUDA stops at the first entry it cannot resolve; so does this.
    MIG instances are refused by name: the bench times whole GPUs.
    """
    all_idx = [i for i, _, _ in infos]
    if visible is None:
        return all_idx
    out: list[int] = []
    for raw in visible.split(","):
        entry = raw.strip()
        if entry.startswith("MIG-"):
            raise NoGpuError(
                f"CUDA_VISIBLE_DEVICES names a MIG instance ({entry}): dlverify bench times "
                "whole GPUs; unset it or name the parent GPU by index or UUID"
            )
        if entry.isdigit() and int(entry) in all_idx:
            i = int(entry)
        else:
            hits = [i for i, _, u in infos if entry.startswith("GPU-") and u and u.startswith(entry)]
            if len(hits) != 1:
                break  # as CUDA does: the rest of the list is ignored
            i = hits[0]
        if i not in out:
            out.append(i)
    if not out:
        raise NoGpuError(
            f"no GPU to benchmark: CUDA_VISIBLE_DEVICES={visible!r} leaves no GPU of this "
            f"host visible (NVML indices: {', '.join(map(str, all_idx))})"
        )
    return out


def cpu_slots(gpus: str) -> list[Slot]:
    """--device cpu: one worker, or one per listed number (they share the CPU; for tests and smoke runs)."""
    idx = [0] if gpus.strip().lower() == "all" else parse_gpus(gpus, list(range(64)))
    return [Slot(k, i, f"cpu{i}", "cpu") for k, i in enumerate(idx)]


def torch_problem() -> str | None:
    """Why the workers could not import torch and torchvision here, or None: said before any is started."""
    try:
        import torch  # noqa: F401
        import torchvision  # noqa: F401
    except ImportError as exc:
        return (
            f"torch/torchvision are not importable ({exc}): install the bench extra, "
            f"`pip install 'dlverify[bench]'`, in this environment ({sys.executable})"
        )
    return None


def torch_cuda_problem() -> str | None:
    """Why this process's torch cannot use CUDA, or None. Imports torch (never initialises a GPU)."""
    missing = torch_problem()
    if missing:
        return missing
    import torch

    if not torch.cuda.is_available():
        build = torch.version.cuda or "CPU-only build"
        return f"torch {torch.__version__} ({build}) cannot use CUDA: torch.cuda.is_available() is False"
    return None
