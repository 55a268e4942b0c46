"""The snapshot: everything the probes saw, as one plain, versioned JSON document.

Live check = probe -> snapshot -> JSON round trip -> checks; offline check = load snapshot -> checks. The
checks only ever see the JSON form, so a recorded snapshot and the live machine cannot be judged differently.
A missing value is ``{"unavailable": "<reason>"}`` everywhere.
"""

from __future__ import annotations

import concurrent.futures
import datetime as _dt
import json
import os
import shutil
import socket
import time
from collections.abc import Callable, Iterable
from typing import Any

from dlverify import __version__
from dlverify.unavailable import Unavailable

SCHEMA_ID = "dlverify.snapshot/1"
AREAS = ("host", "gpu", "software")


class SnapshotError(ValueError):
    """A snapshot file that cannot be read or is not a dlverify snapshot; the message names the file."""


def to_jsonable(value: Any) -> Any:
    if isinstance(value, Unavailable):
        return value.to_json()
    if isinstance(value, dict):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_jsonable(v) for v in value]
    if isinstance(value, bytes):
        return value.decode(errors="replace")
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    return str(value)


def _guarded(name: str, fn: Callable[[], Any], timings: dict[str, float]) -> Any:
    """Run one probe; an unexpected exception becomes an Unavailable with its text, never a traceback."""
    start = time.perf_counter()
    try:
        return fn()
    except Exception as exc:
        return Unavailable(f"{name} probe failed unexpectedly: {type(exc).__name__}: {exc}")
    finally:
        timings[name] = round(time.perf_counter() - start, 4)


def env_interpreter(spec: Any) -> str | None:
    env = getattr(getattr(spec, "software", None), "python_env", None)
    return env.interpreter if env is not None else None


def spec_tools(spec: Any) -> list[str] | None:
    sw = getattr(spec, "software", None)
    if sw is None:
        return None
    return [*sw.containers, *sw.monitoring]


def default_interpreter() -> str:
    """The interpreter probed when no spec names an env: python3 on PATH."""
    return shutil.which("python3") or "/usr/bin/python3"


def mismatched_env(snap: dict[str, Any], spec: Any) -> dict[str, Any]:
    """The snapshot, with its Python env replaced by the reason when it probed another interpreter than the
    spec's env: a snapshot taken without ``--spec`` asked python3 on PATH, and its torch is not the env's."""
    want = env_interpreter(spec)
    software = snap.get("software")
    if want is None or not isinstance(software, dict):
        return snap
    env = software.get("python_env")
    got = snap.get("python_env_interpreter")
    if got is None and isinstance(env, dict):
        got = env.get("interpreter")  # snapshots from before python_env_interpreter was recorded
    if not isinstance(got, str) or os.path.normpath(got) == os.path.normpath(want):
        return snap
    why = (
        f"the snapshot probed {got}, not the spec's env {want}: take it with "
        "`dlverify snapshot --spec SPEC` so the env's own torch is recorded"
    )
    return {**snap, "software": {**software, "python_env": Unavailable(why).to_json()}}


def take(
    spec: Any = None,
    *,
    only: Iterable[str] = AREAS,
    env: bool = True,
    root: str = "/",
) -> dict[str, Any]:
    """Probe this machine. ``spec`` (optional) says where the Python env is and which tools to ask."""
    from dlverify.probes.gpu import probe_nvml
    from dlverify.probes.host import probe_host
    from dlverify.probes.services import probe_services
    from dlverify.probes.software import probe_software

    areas = set(only)
    timings: dict[str, float] = {}
    snap: dict[str, Any] = {
        "schema": SCHEMA_ID,
        "tool": f"dlverify {__version__}",
        "taken_at": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "hostname": socket.gethostname(),
        "areas": [a for a in AREAS if a in areas],
    }
    not_probed = Unavailable("not probed (--only)")
    # the software probe mostly waits on the env's `import torch` in a subprocess: let it run alongside
    # NVML and the host probe, so a check costs the slowest probe, not the sum
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        software = None
        if "software" in areas:
            interp, tools = env_interpreter(spec) or default_interpreter(), spec_tools(spec)
            # which interpreter was asked: `check SPEC --snapshot` must not judge another env's torch
            snap["python_env_interpreter"] = interp if env else None
            software = pool.submit(
                _guarded,
                "software",
                lambda: {
                    **probe_software(root, interpreter=interp, tools=tools, env=env),
                    **({"services": probe_services(spec, root)} if spec is not None else {}),
                },
                timings,
            )
        snap["nvml"] = _guarded("nvml", probe_nvml, timings) if "gpu" in areas else not_probed
        snap["host"] = _guarded("host", lambda: probe_host(root), timings) if "host" in areas else not_probed
        snap["software"] = software.result() if software is not None else not_probed
    snap["probe_seconds"] = {k: timings[k] for k in ("nvml", "host", "software") if k in timings}
    return to_jsonable(snap)


def dumps(snapshot: dict[str, Any]) -> str:
    return json.dumps(snapshot, indent=2, sort_keys=False) + "\n"


MAX_BYTES = 64 * 1024 * 1024  # a snapshot of a 16-GPU host is well under 1 MiB
MAX_DEPTH = 64  # the deepest a real snapshot nests is about 8


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


class _NonFinite:
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


def _check_fields(doc: dict[str, Any], source: str) -> None:
    """Every value's type against FIELDS, NaN/Infinity anywhere, nesting depth. Recursive, but never deeper
    than MAX_DEPTH (refused before it goes further), so a hostile document cannot exhaust the stack. The
    first problem in document order is raised, naming its path."""
    parts: list[str | int] = []
    for k, v in doc.items():
        parts.append(k)
        _walk(v, _TREE.children.get(k), 1, parts, source)
        parts.pop()


def _walk(v: Any, node: _Node | None, depth: int, parts: list[str | int], source: str) -> None:
    if depth > MAX_DEPTH:
        raise SnapshotError(f"{source}: {_path(parts)}: nested more than {MAX_DEPTH} levels deep")
    if isinstance(v, _NonFinite):
        raise SnapshotError(f"{source}: {_path(parts)}: {v.text} is not a value a probe records")
    if isinstance(v, dict) and len(v) == 1 and "unavailable" in v:
        if not isinstance(v["unavailable"], str):
            raise SnapshotError(
                f"{source}: {_path(parts)}: the reason it is unavailable must be a string, "
                f"got {_shape(v['unavailable'])}"
            )
        return
    kind = node.kind if node is not None else None
    if kind is not None and v is not None and not _type_ok(kind, v):
        raise SnapshotError(f"{source}: {_path(parts)}: expected {kind}, got {_shape(v)}")
    if kind == _NUM and v is not None and v < 0:
        where = _path(parts)
        raise SnapshotError(f"{source}: {where}: expected {kind} >= 0, got {v!r} (no probe records that)")
    if isinstance(v, dict):
        for k, x in v.items():
            child = None if node is None else (node.children.get(k) or node.any)
            if type(x) in _LEAF and (child is None or child.kind is None) and depth < MAX_DEPTH:
                continue  # an untyped leaf: nothing to judge (the common case, so no call)
            parts.append(k)
            _walk(x, child, depth + 1, parts, source)
            parts.pop()
    elif isinstance(v, list):
        item = None if node is None else node.item
        for i, x in enumerate(v):
            if type(x) in _LEAF and (item is None or item.kind is None) and depth < MAX_DEPTH:
                continue
            parts.append(i)
            _walk(x, item, depth + 1, parts, source)
            parts.pop()


def validate(doc: Any, source: str = "<snapshot>") -> dict[str, Any]:
    """The snapshot if it is one this tool can judge, else :class:`SnapshotError` naming the field."""
    if not isinstance(doc, dict):
        raise SnapshotError(f"{source}: not a dlverify snapshot (expected a JSON object)")
    schema = doc.get("schema")
    if not isinstance(schema, str) or not schema.startswith("dlverify.snapshot/"):
        raise SnapshotError(f"{source}: not a dlverify snapshot (schema is {schema!r}, want {SCHEMA_ID!r})")
    if schema != SCHEMA_ID:
        raise SnapshotError(
            f"{source}: snapshot schema {schema!r} is not supported (this tool reads {SCHEMA_ID})"
        )
    for key in ("nvml", "host", "software"):
        if key not in doc:
            raise SnapshotError(f"{source}: snapshot lacks the {key!r} section")
        if not isinstance(doc[key], dict):
            raise SnapshotError(f"{source}: snapshot section {key!r} must be an object")
    _check_fields(doc, source)
    return doc


def loads(text: str, source: str = "<snapshot>") -> dict[str, Any]:
    try:
        doc = json.loads(text, parse_constant=_NonFinite)
    except RecursionError:
        raise SnapshotError(f"{source}: nested too deeply to be a snapshot") from None
    except ValueError as exc:
        raise SnapshotError(f"{source}: not valid JSON: {exc}") from None
    return validate(doc, source)


def load(path: str) -> dict[str, Any]:
    """The one snapshot reader (``check --snapshot`` and ``spec init --from-snapshot``): a regular file
    of at most MAX_BYTES, UTF-8 JSON, a dlverify snapshot whose values have the types the probes write."""
    from dlverify.hwspec.fileread import InputFileError, decode_text, read_bytes

    try:
        text = decode_text(read_bytes(path, MAX_BYTES, "snapshot"), path, "snapshot")
    except InputFileError as exc:
        raise SnapshotError(f"{path}: cannot read snapshot: {exc.reason}") from None
    return loads(text, path)
