"""Compatibility knowledge (``hwspec/data/*.yaml``) and the questions lint and the verifier ask of it.

Each table names its sources and an ``as_of`` date; a version the tables do not know is reported as
"can't judge", never guessed. Tables are read once per process (``functools.cache``).
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from importlib import resources
from typing import Any

import yaml

TABLES = ("cuda_driver", "cudnn", "pytorch", "tensorflow", "gpus", "containers")


@functools.cache
def table(name: str) -> dict[str, Any]:
    """One data table as loaded from YAML (``sources``, ``as_of`` and its entries)."""
    if name not in TABLES:
        raise KeyError(f"no compatibility table {name!r}")
    data = resources.files("dlverify.hwspec").joinpath("data")
    text = data.joinpath(f"{name}.yaml").read_text(encoding="utf-8")
    return yaml.safe_load(text)


def as_of(name: str) -> str:
    return str(table(name)["as_of"])


def row_source(name: str, section: str, key: str) -> str | list[str] | None:
    """The primary source of one data row: its own ``source:``, else its section's ``row_sources`` entry."""
    t = table(name)
    row = (t.get(section) or {}).get(key)
    if isinstance(row, dict) and row.get("source"):
        return row["source"]
    return (t.get("row_sources") or {}).get(section)


def unsourced_reason(cards: list[GpuInfo] | tuple[GpuInfo, ...], field: str) -> str | None:
    """Why the value of ``field`` lint would judge these cards by has no source (None when it has one)."""
    reasons = [r for g in cards if (r := g.unsourced_reason(field))]
    return reasons[0] if reasons else None


def vkey(version: str) -> tuple[int, ...]:
    """``"535.54.03"`` -> (535, 54, 3); a local tag (``+cu121``) and suffixes are ignored."""
    public = str(version).split("+", 1)[0]
    parts = []
    for piece in public.lstrip("v").split("."):
        m = re.match(r"\d+", piece)
        if not m:
            break
        parts.append(int(m.group(0)))
    return tuple(parts)


def major_minor(version: str) -> str:
    k = vkey(version)
    return ".".join(str(p) for p in k[:2])


def split_local(version: str) -> tuple[str, str | None]:
    """``"2.1.2+cu121"`` -> ("2.1.2", "cu121")."""
    public, _, local = str(version).partition("+")
    return public, local or None


def cuda_from_tag(tag: str | None) -> str | None:
    """``"cu121"`` -> "12.1", ``"cu130"`` -> "13.0"; None for ``cpu``/``rocm..`` or no tag."""
    m = re.fullmatch(r"cu(\d{2,3})", tag or "")
    if not m:
        return None
    digits = m.group(1)
    return f"{digits[:-1]}.{digits[-1]}"


def cuda_tag(cuda: str) -> str:
    return "cu" + "".join(str(p) for p in vkey(cuda)[:2])


# --- CUDA toolkit <-> driver -------------------------------------------------------------------------


def cuda_driver_entry(cuda: str) -> dict[str, str] | None:
    return table("cuda_driver")["toolkits"].get(major_minor(cuda))


def minor_compat_driver(cuda_major: str) -> str | None:
    return table("cuda_driver")["minor_compat"].get(str(cuda_major))


def branch_max_cuda(driver: str) -> str | None:
    """Newest CUDA toolkit the driver's branch runs natively (``"535.54.03"`` or ``"535"`` -> "12.2")."""
    k = vkey(driver)
    return table("cuda_driver")["driver_branches"].get(str(k[0])) if k else None


def is_branch_only(driver: str) -> bool:
    return len(vkey(driver)) == 1


# --- cuDNN, PyTorch, TensorFlow ----------------------------------------------------------------------


def cudnn_entry(version: str) -> dict[str, Any] | None:
    releases = table("cudnn")["releases"]
    k = vkey(version)
    for n in (3, 2):
        key = ".".join(str(p) for p in k[:n])
        if len(k) >= n and key in releases:
            return releases[key]
    return None


def cudnn_apt_build(cudnn: str, cuda: str) -> str | None:
    """The CUDA MAJOR.MINOR of NVIDIA's libcudnn8 build of ``cudnn`` for ``cuda``'s major (its ``+cudaM.N``).

    ``("8.9.7", "12.1")`` -> "12.2": NVIDIA publishes 8.9.4-8.9.7 for CUDA 12 only as ``+cuda12.2``, so the
    spec's own CUDA minor is the wrong suffix. None when the data has no such build (unknown release, or
    no build for that major); ``apt_builds`` in ``data/cudnn.yaml`` is the one list, read by the role's gate
    and by the test mirror.
    """
    k = vkey(cudnn)
    if len(k) < 3:
        return None
    row = (table("cudnn").get("apt_builds") or {}).get(".".join(str(p) for p in k[:3]))
    if not row:
        return None
    build = row.get(str(vkey(cuda)[0])) if vkey(cuda) else None
    return str(build) if build else None


def cudnn_apt_known(cudnn: str) -> bool:
    """Does the data list NVIDIA's apt builds of this cuDNN release (X.Y.Z)?"""
    k = vkey(cudnn)
    return len(k) >= 3 and ".".join(str(p) for p in k[:3]) in (table("cudnn").get("apt_builds") or {})


@dataclass(frozen=True)
class TorchRelease:
    series: str  # "2.1"
    cuda: tuple[str, ...]
    python: tuple[str, ...]
    cudnn: dict[str, str]
    patch: dict[str, str] | None  # torchvision/torchaudio of this exact patch release, if known


def torch_release(version: str) -> TorchRelease | None:
    public, _ = split_local(version)
    series = major_minor(public)
    entry = table("pytorch")["releases"].get(series)
    if entry is None:
        return None
    patch_key = ".".join(str(p) for p in ((*vkey(public), 0, 0, 0))[:3])
    return TorchRelease(
        series,
        tuple(entry["cuda"]),
        tuple(entry["python"]),
        dict(entry.get("cudnn") or {}),
        entry["patches"].get(patch_key),
    )


def first_torch_with_cuda(cuda: str) -> str | None:
    """The oldest PyTorch series published with a build for this CUDA version (``"12.1"`` -> "2.1")."""
    found = [s for s, e in table("pytorch")["releases"].items() if major_minor(cuda) in e["cuda"]]
    return min(found, key=vkey) if found else None


def tf_release(version: str) -> dict[str, Any] | None:
    return table("tensorflow")["releases"].get(major_minor(version))


# --- containers --------------------------------------------------------------------------------------


def toolkit_min_driver(toolkit: str) -> tuple[str, list[str]] | None:
    """The NVIDIA driver a Container Toolkit release needs at least and where that is written (by major)."""
    k = vkey(toolkit)
    entry = table("containers")["toolkit"].get(str(k[0])) if k else None
    return (str(entry["min_driver"]), list(entry["source"])) if entry else None


def docker_sources(os_name: str, os_version: str) -> dict[str, dict[str, Any]] | None:
    """``{"docker.io": {...}, "docker-ce": {...}}`` for an OS, or None when the data has none for it."""
    os_key = f"{os_name.lower()}-{'.'.join(str(os_version).split('.')[:2])}"  # "22.04", not vkey's 22.4
    found = {}
    for key, entry in table("containers")["docker"].items():
        where, _, source = key.partition("/")
        if where == os_key:
            found[source] = entry
    return found or None


def docker_ships(entry: dict[str, Any], version: str) -> bool:
    """Does a source (a ``docker`` entry of the data) ship this upstream docker version? A pin of
    major.minor ("24.0") is shipped when any release of that series is."""
    want = vkey(version)
    if "first" in entry:
        return want >= vkey(entry["first"])[: len(want)]
    return any(vkey(v)[: len(want)] == want for v in entry["versions"])


# --- GPUs --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class GpuInfo:
    key: str
    name: str
    architecture: str
    compute_capability: str
    memory_gb: float
    min_driver: str
    min_cuda: str
    nvml_names: tuple[str, ...]
    aliases: tuple[str, ...] = ()
    nvlink: bool | None = None  # None: not in the data; the verifier uses what NVML reports
    pcie_gen: int | None = None
    pcie_width: int | None = None
    nvlink_links: int = 0
    max_cuda: str | None = None
    max_driver_branch: str | None = None
    memory_type: str | None = None
    # the exact total NVML reports (MiB), as recorded on a real card: judged instead of the marketed size
    memory_mib: int | None = None
    # the link stays at its maximum generation when idle (seen on a real card): a lower current gen is a fault
    pcie_gen_holds_at_idle: bool | None = None
    note: str | None = None
    source: tuple[str, ...] = ()  # the NVIDIA documents this card's facts come from
    unsourced: tuple[tuple[str, str], ...] = ()  # (field, why) for values no document was found for

    def unsourced_reason(self, field: str) -> str | None:
        return dict(self.unsourced).get(field)


_VENDOR_WORDS = {"nvidia", "tesla", "geforce", "quadro"}


def _tokens(text: str) -> frozenset[str]:
    low = re.sub(r"(\d+)\s*gi?b\b", r"\1gb", text.lower())
    return frozenset(t for t in re.split(r"[^a-z0-9]+", low) if t and t not in _VENDOR_WORDS)


@functools.cache
def gpus() -> tuple[GpuInfo, ...]:
    out = []
    for key, e in table("gpus")["gpus"].items():
        e = dict(e)
        e["nvml_names"] = tuple(e.get("nvml_names", ()))
        e["aliases"] = tuple(e.get("aliases", ()))
        e["source"] = tuple(e.get("source", ()))
        e["unsourced"] = tuple((str(k), str(v)) for k, v in (e.get("unsourced") or {}).items())
        out.append(GpuInfo(key=key, **e))
    return tuple(out)


def _all_tokens(info: GpuInfo) -> frozenset[str]:
    toks: set[str] = set(_tokens(info.name))
    for n in info.nvml_names + info.aliases:
        toks |= _tokens(n)
    return frozenset(toks)


def find_gpus(model: str) -> list[GpuInfo]:
    """Every known card a spec's model text can mean (``"NVIDIA A100 80GB"`` -> SXM4 and PCIe 80GB)."""
    exact = [g for g in gpus() if any(_tokens(n) == _tokens(model) for n in g.nvml_names + g.aliases)]
    if len(exact) == 1:
        return exact
    want = _tokens(model)
    return [g for g in gpus() if want and want <= _all_tokens(g)]


def find_gpu(model: str) -> GpuInfo | None:
    """The one card a model text means; when it could be several that share an architecture (an A100 80GB
    that is SXM4 or PCIe), the first of them, which is enough for architecture-level questions."""
    found = find_gpus(model)
    if len(found) == 1:
        return found[0]
    if found and len({g.architecture for g in found}) == 1:
        return found[0]
    return None


def gpu_info(nvml_name: str) -> GpuInfo | None:
    """Look up a card by the name NVML reports (``nvmlDeviceGetName``), e.g. "NVIDIA H100 80GB HBM3"."""
    low = nvml_name.strip().lower()
    for g in gpus():
        if any(low == n.lower() for n in g.nvml_names):
            return g
    found = find_gpus(nvml_name)
    return found[0] if len(found) == 1 else None


def gpu_model_matches(spec_model: str, nvml_name: str) -> bool:
    """Does the card NVML reports satisfy the spec's model text? Every word of the spec's model must be
    in NVML's name or in the known aliases of that card ("H100 80GB SXM" matches "NVIDIA H100 80GB HBM3").

    Where the data knows both the reported card and what the spec's text can mean, the card must be one of
    those: NVIDIA names the H200 NVL "H200 NVL" and the SXM board plain "H200", so a spec for an "H200" is
    not met by an H200 NVL although every word of it is in the NVL's name.
    """
    want = _tokens(spec_model)
    have = set(_tokens(nvml_name))
    info = gpu_info(nvml_name)
    if info is not None and want:
        meant = find_gpus(spec_model)
        if meant:
            return info.key in {g.key for g in meant}
    if info is not None:
        have |= _all_tokens(info)
    return bool(want) and want <= have
