"""The snapshot: everything the probes saw, as one plain, versioned JSON document.

Live check = probe -> snapshot -> JSON round trip -> checks; offline check = load snapshot -> checks. The
checks only ever see the JSON form, so a recorded snapshot and the live machine cannot be judged differently.
A missing value is ``{"unavailable": "<reason>"}`` everywhere. Reading one back checks every value's type
against the table of ``snapshot_fields.py``.
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
from dlverify.snapshot_fields import NonFinite, first_problem
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


def spec_frameworks(spec: Any) -> list[str] | None:
    """The distributions of the spec's frameworks the env probe does not ask for anyway (onnxruntime, ...)."""
    sw = getattr(spec, "software", None)
    if sw is None:
        return None
    usual = {"pytorch", "torch", "torchvision", "torchaudio", "tensorflow", "jax"}
    return [name for name in sw.frameworks if name not in usual]


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
            frameworks = spec_frameworks(spec)
            # which interpreter was asked: `check SPEC --snapshot` must not judge another env's torch
            snap["python_env_interpreter"] = interp if env else None
            software = pool.submit(
                _guarded,
                "software",
                lambda: {
                    **probe_software(root, interpreter=interp, tools=tools, env=env, frameworks=frameworks),
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
    problem = first_problem(doc)
    if problem:
        raise SnapshotError(f"{source}: {problem}")
    return doc


def loads(text: str, source: str = "<snapshot>") -> dict[str, Any]:
    try:
        doc = json.loads(text, parse_constant=NonFinite)
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
