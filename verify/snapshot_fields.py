"""What a snapshot's values must be: the type of each value the judges read (``FIELDS``), checked by one walk
of the document that refuses NaN/Infinity and deep nesting. ``snapshot.validate`` calls ``first_problem``; a
snapshot that passes can be judged without a type check in any judge.
"""

from __future__ import annotations

from typing import Any

MAX_DEPTH = 64  # the deepest a real snapshot nests is about 8


class _Problem(Exception):
    """The first problem the walk met; ``first_problem`` returns its message."""


# The type of each value the judges read, by path ("[]" = every item of a list). A value may also be
# null or {"unavailable": "<reason>"} (missing); anything else of the wrong type is a malformed snapshot.
def _split(words: str) -> list[str]:
    return words.split()


# numbers are counts, sizes, clocks, watts, °C and seconds: NVML and /proc give none below zero
_NUM, _BOOL, _STR, _LIST, _OBJ = "number", "true/false", "string", "list", "object"
FIELDS: dict[str, str] = {
    "hostname": _STR,
    "python_env_interpreter": _STR,
    "taken_at": _STR,
    "tool": _STR,
    "areas": _LIST,
    "areas[]": _STR,
    "probe_seconds": _OBJ,
    **{f"probe_seconds.{k}": _NUM for k in ("nvml", "host", "software")},
    "nvml.nvml_version": _STR,
    "nvml.driver_version": _STR,
    "nvml.cuda_driver_version": _STR,
    "nvml.gpu_count": _NUM,
    "nvml.gpus": _LIST,
    "nvml.gpus[]": _OBJ,
    **{
        f"nvml.gpus[].{k}": _NUM
        for k in _split(
            "index memory_total_bytes ecc_volatile_uncorrected ecc_aggregate_uncorrected "
            "remapped_rows_correctable remapped_rows_uncorrectable retired_pages_dbe_count "
            "retired_pages_sbe_count temperature_c power_usage_mw power_limit_mw power_default_limit_mw "
            "clock_sm_mhz clock_sm_max_mhz clock_mem_mhz clock_mem_max_mhz clocks_event_reasons_mask "
            "pcie_gen_current pcie_gen_max pcie_gen_gpu_max pcie_width_current pcie_width_max "
            "utilization_gpu_pct utilization_memory_pct pcie_replay_count app_clock_graphics_mhz "
            "app_clock_graphics_default_mhz app_clock_mem_mhz app_clock_mem_default_mhz"
        )
    },
    "nvml.gpus[].nvlink_errors": _OBJ,
    **{f"nvml.gpus[].nvlink_errors.{k}": _NUM for k in ("replay", "recovery", "crc_flit", "crc_data")},
    "nvml.gpus[].clocks_event_counters_ns": _OBJ,
    **{
        f"nvml.gpus[].clocks_event_counters_ns.{k}": _NUM
        for k in _split(
            "sw_power_cap sync_boost sw_thermal_slowdown hw_thermal_slowdown hw_power_brake_slowdown"
        )
    },
    "nvml.gpus[].recovery_action": _STR,
    **{
        f"nvml.gpus[].{k}": _BOOL
        for k in _split(
            "ecc_mode_current ecc_mode_pending remapped_rows_pending remapped_rows_failure "
            "retired_pages_pending persistence_mode mig_mode_current mig_mode_pending unrepairable_memory"
        )
    },
    **{
        f"nvml.gpus[].{k}": _STR
        for k in _split(
            "name uuid pci_bus_id compute_mode compute_capability serial vbios_version perf_state"
        )
    },
    "nvml.gpus[].fabric": _OBJ,
    "nvml.gpus[].clocks_event_reasons": _LIST,
    "nvml.gpus[].clocks_event_reasons[]": _STR,
    "nvml.gpus[].nvlink": _LIST,
    "host.os": _OBJ,
    "host.cpu": _OBJ,
    "host.cpu.model": _STR,
    "host.cpu.cores": _NUM,
    "host.cpu.threads": _NUM,
    "host.cpu.sockets": _NUM,
    "host.ram": _OBJ,
    "host.ram.total_bytes": _NUM,
    "host.disks": _LIST,
    "host.disks[]": _OBJ,
    "host.disks[].size_bytes": _NUM,
    "host.mounts": _LIST,
    "host.mounts[]": _OBJ,
    "host.nics": _LIST,
    "host.nics[]": _OBJ,
    "host.rdma": _LIST,
    "software.python_env": _OBJ,
    "software.python_env.interpreter": _STR,
    "software.python_env.python_version": _STR,
    "software.python_env.torch": _STR,
    "software.python_env.torch_cuda": _STR,
    "software.python_env.cuda_available": _BOOL,
    "software.python_env.device_count": _NUM,
    "software.python_env.tensorflow_gpus": _NUM,
    "software.python_env.nccl": _STR,
    **{
        f"software.python_env.{k}": _STR
        for k in _split("executable torch_cudnn torchvision torchaudio tensorflow jax")
    },
    "software.python_env.device_names": _LIST,
    "software.python_env.device_names[]": _STR,
    "software.cuda_toolkit": _OBJ,
    "software.cuda_toolkit.default": _STR,
    "software.cuda_toolkit.installs": _OBJ,
    "software.cuda_toolkit.nvcc": _OBJ,
    **{f"software.cuda_toolkit.nvcc.{k}": _STR for k in ("path", "release", "build", "version")},
    "software.cudnn": _OBJ,
    "software.tools": _OBJ,
    "software.services": _OBJ,
    "software.services.docker": _OBJ,
    "software.services.docker.active": _STR,
    "software.services.docker.runtimes": _OBJ,
    "software.services.docker.runtimes.*": _STR,
    "software.services.docker.cdi": _LIST,
    "software.services.docker.cdi[]": _STR,
    "software.services.jupyter": _OBJ,
    "software.services.jupyter.version": _STR,
    "software.services.jupyter.units": _OBJ,
    "software.services.jupyter.units.*": _OBJ,
    "software.services.jupyter.units.*.active": _STR,
    "software.services.jupyter.units.*.port": _NUM,
    "software.services.jupyter.units.*.listen": _LIST,
    "software.services.jupyter.units.*.listen[]": _STR,
    "software.services.jupyter.units.*.anon_status": _NUM,
}


class NonFinite:
    """NaN/Infinity in the JSON text (Python's json accepts them): kept to be refused by path."""

    def __init__(self, text: str) -> None:
        self.text = text


def _type_ok(kind: str, v: Any) -> bool:
    if kind == _NUM:
        return isinstance(v, (int, float)) and not isinstance(v, bool)
    if kind == _BOOL:
        return isinstance(v, bool)
    if kind == _STR:
        return isinstance(v, str)
    if kind == _LIST:
        return isinstance(v, list)
    return isinstance(v, dict)


def _shape(v: Any) -> str:
    if isinstance(v, bool):
        return f"{str(v).lower()}"
    if isinstance(v, str):
        return f"the string {v[:40]!r}"
    if isinstance(v, (int, float)):
        return f"the number {v!r}"
    names: dict[type, str] = {dict: "an object", list: "a list"}
    return names.get(type(v), type(v).__name__)


class _Node:
    """FIELDS as a tree, so the walk looks a child up by its key instead of building a pattern string for
    every value (the fleet report validates a thousand snapshots: the strings were most of its time)."""

    __slots__ = ("any", "children", "item", "kind")

    def __init__(self) -> None:
        self.kind: str | None = None
        self.children: dict[str, _Node] = {}
        self.item: _Node | None = None  # a list's items ("[]")
        self.any: _Node | None = None  # every key of an object (cuda_toolkit.installs: path -> version)


def _field_tree() -> _Node:
    root = _Node()
    for pattern, kind in FIELDS.items():
        node = root
        for part in pattern.split("."):
            name = part.rstrip("[]")
            if name == "*":  # a key that is a name (a runtime, a user): every key of the object
                node.any = node.any or _Node()
                node = node.any
            else:
                node = node.children.setdefault(name, _Node())
            for _ in range((len(part) - len(name)) // 2):
                node.item = node.item or _Node()
                node = node.item
        node.kind = kind
    installs = root.children["software"].children["cuda_toolkit"].children["installs"]
    installs.any = _Node()
    installs.any.kind = _STR
    return root


_TREE = _field_tree()
_LEAF = (str, int, float, bool, type(None))


def _path(parts: list[str | int]) -> str:
    return "".join(f"[{p}]" if isinstance(p, int) else (f".{p}" if i else p) for i, p in enumerate(parts))


def first_problem(doc: dict[str, Any]) -> str | None:
    """Every value's type against FIELDS, NaN/Infinity anywhere, nesting depth: the first problem in document
    order, naming its path, or None. Recursive, but never deeper than MAX_DEPTH (refused before it goes
    further), so a hostile document cannot exhaust the stack."""
    parts: list[str | int] = []
    try:
        for k, v in doc.items():
            parts.append(k)
            _walk(v, _TREE.children.get(k), 1, parts)
            parts.pop()
    except _Problem as problem:
        return str(problem)
    return None


def _walk(v: Any, node: _Node | None, depth: int, parts: list[str | int]) -> None:
    if depth > MAX_DEPTH:
        raise _Problem(f"{_path(parts)}: nested more than {MAX_DEPTH} levels deep")
    if isinstance(v, NonFinite):
        raise _Problem(f"{_path(parts)}: {v.text} is not a value a probe records")
    if isinstance(v, dict) and len(v) == 1 and "unavailable" in v:
        if not isinstance(v["unavailable"], str):
            raise _Problem(
                f"{_path(parts)}: the reason it is unavailable must be a string, "
                f"got {_shape(v['unavailable'])}"
            )
        return
    kind = node.kind if node is not None else None
    if kind is not None and v is not None and not _type_ok(kind, v):
        raise _Problem(f"{_path(parts)}: expected {kind}, got {_shape(v)}")
    if kind == _NUM and v is not None and v < 0:
        where = _path(parts)
        raise _Problem(f"{where}: expected {kind} >= 0, got {v!r} (no probe records that)")
    if isinstance(v, dict):
        for k, x in v.items():
            child = None if node is None else (node.children.get(k) or node.any)
            if type(x) in _LEAF and (child is None or child.kind is None) and depth < MAX_DEPTH:
                continue  # an untyped leaf: nothing to judge (the common case, so no call)
            parts.append(k)
            _walk(x, child, depth + 1, parts)
            parts.pop()
    elif isinstance(v, list):
        item = None if node is None else node.item
        for i, x in enumerate(v):
            if type(x) in _LEAF and (item is None or item.kind is None) and depth < MAX_DEPTH:
                continue
            parts.append(i)
            _walk(x, item, depth + 1, parts)
            parts.pop()
