"""The one NVML query layer: every call to nvidia-ml-py goes through :func:`query`.

NVML answers "not supported", "no permission", "GPU is lost" and friends with exceptions. A probe must
record *why* a value is missing rather than crash or invent one, so :func:`query` turns those into a
:class:`Unavailable` sentinel carrying the reason (in the style of nvitop's NA). Probes store the sentinel
in the snapshot as ``{"unavailable": "<reason>"}`` and judges turn it into a skip or a failure.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

# the sentinel lives in dlverify.unavailable; re-exported here for the probes' long-standing import
from dlverify.unavailable import Unavailable as Unavailable
from dlverify.unavailable import is_unavailable as is_unavailable

T = TypeVar("T")

try:  # nvidia-ml-py is a hard dependency, but the verifier must still speak when it is broken
    import pynvml as _pynvml
except Exception:  # pragma: no cover - exercised only on a broken install
    _pynvml = None


class NvmlInitError(RuntimeError):
    """NVML could not start: no library, no driver loaded, driver/library mismatch, no permission."""


def _reason(exc: BaseException) -> str:
    if _pynvml is not None and isinstance(exc, _pynvml.NVMLError):
        code = getattr(exc, "value", None)
        known = {
            getattr(_pynvml, "NVML_ERROR_NOT_SUPPORTED", -1): "not supported on this GPU",
            getattr(_pynvml, "NVML_ERROR_NO_PERMISSION", -1): "no permission (run as root)",
            getattr(_pynvml, "NVML_ERROR_GPU_IS_LOST", -1): "GPU is lost (fell off the bus)",
            getattr(_pynvml, "NVML_ERROR_FUNCTION_NOT_FOUND", -1): "not in this driver's NVML",
            getattr(_pynvml, "NVML_ERROR_NOT_FOUND", -1): "not found",
        }
        if code in known:
            return known[code]
        return str(exc) or type(exc).__name__
    if isinstance(exc, AttributeError):
        return "not in this nvidia-ml-py version"
    return f"{type(exc).__name__}: {exc}"


def query(fn: Callable[..., T] | str, *args: Any) -> T | Unavailable:
    """Call an NVML function (or its name in pynvml) and return its value or an :class:`Unavailable`."""
    try:
        if isinstance(fn, str):
            if _pynvml is None:
                return Unavailable("nvidia-ml-py is not importable")
            call = getattr(_pynvml, fn)
        else:
            call = fn
        value = call(*args)
    except Exception as exc:  # NVMLError and its many subclasses, AttributeError for old bindings
        return Unavailable(_reason(exc))
    if isinstance(value, bytes):
        return value.decode(errors="replace")  # type: ignore[return-value]
    return value


def field_values(handle: Any, field_ids: list[int]) -> dict[int, Any] | Unavailable:
    """``nvmlDeviceGetFieldValues`` through :func:`query`: each field's value, or an :class:`Unavailable`
    with NVML's per-field reason (a field newer than the driver answers NOT_SUPPORTED in its slot while the
    call as a whole succeeds)."""
    got = query("nvmlDeviceGetFieldValues", handle, list(field_ids))
    if isinstance(got, Unavailable):
        return got
    out: dict[int, Any] = {}
    for fid, fv in zip(field_ids, got, strict=False):
        ret = int(getattr(fv, "nvmlReturn", 0))
        if ret != 0:
            err = _pynvml.NVMLError(ret) if _pynvml is not None else RuntimeError(f"NVML return {ret}")
            out[fid] = Unavailable(_reason(err))
            continue
        kind = int(getattr(fv, "valueType", 3))
        attr = {0: "dVal", 1: "uiVal", 2: "ulVal", 3: "ullVal", 4: "sllVal", 5: "siVal", 6: "usVal"}.get(
            kind, "ullVal"
        )
        out[fid] = getattr(fv.value, attr)
    return out


def pynvml() -> Any:
    """The pynvml module, for constants; raises NvmlInitError if the bindings are missing."""
    if _pynvml is None:
        raise NvmlInitError("the nvidia-ml-py package (module pynvml) is not importable")
    return _pynvml


@contextlib.contextmanager
def session() -> Iterator[Any]:
    """Initialise NVML for the duration of the block; raise :class:`NvmlInitError` with a clear reason."""
    nv = pynvml()
    try:
        nv.nvmlInit()
    except Exception as exc:
        text = str(exc)
        lower = text.lower()
        if "library not found" in lower or "libnvidia-ml" in lower or "shared library" in lower:
            why = "NVML library (libnvidia-ml.so.1) not found: the NVIDIA driver is not installed"
        elif "driver not loaded" in lower:
            why = "NVIDIA driver not loaded (no nvidia kernel module): install the driver or reboot"
        elif "mismatch" in lower:
            why = (
                "driver/library version mismatch: the loaded kernel module differs from the "
                "user-space driver (reboot after a driver upgrade)"
            )
        elif "permission" in lower:
            why = "no permission to open the NVIDIA device nodes"
        else:
            why = f"NVML failed to initialise: {text or type(exc).__name__}"
        raise NvmlInitError(why) from exc
    try:
        yield nv
    finally:
        with contextlib.suppress(Exception):
            nv.nvmlShutdown()
