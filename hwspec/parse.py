"""Human forms of hardware and OS descriptions -> typed spec values.

The seed notes write specs the way people talk (``"NVIDIA A100 80GB × 4"``, ``"512GB DDR4 ECC"``,
``"100GbE RoCE"``). Each parser here accepts those forms and raises :class:`ValueError` with a message
that says what was expected, so the loader can point at the exact line. Disk and GPU sizes are returned in
decimal GB (1 TB = 1000 GB; 1 TiB = 1024**4 bytes), the unit they are sold in; RAM sizes in GiB, the
unit DIMMs are sold in whatever the label says (a \"32GB\" DIMM holds 32 GiB).
"""

from __future__ import annotations

import re
from collections.abc import Callable

from dlverify.hwspec.model import CpuSpec, GpuSpec, NetworkSpec, OsSpec, RamSpec

_UNIT_BYTES = {
    "kb": 1e3,
    "mb": 1e6,
    "gb": 1e9,
    "tb": 1e12,
    "pb": 1e15,
    "kib": 1024.0,
    "mib": 1024.0**2,
    "gib": 1024.0**3,
    "tib": 1024.0**4,
    "pib": 1024.0**5,
}
_SIZE_RE = re.compile(r"(?P<num>\d+(?:\.\d+)?)\s*(?P<unit>[kmgtp]i?b)", re.IGNORECASE)
SIZE_PATTERN = r"^\s*\d+(\.\d+)?\s*[KkMmGgTtPp][Ii]?[Bb]\s*$"  # for the JSON Schema
_COUNT_PREFIX = re.compile(r"^(?P<n>\d+)\s*[x×*]\s*", re.IGNORECASE)
_COUNT_SUFFIX = re.compile(r"(?:\s+[x×*]|\s*×)\s*(?P<n>\d+)$", re.IGNORECASE)

SIZE_HINT = 'a size like "2TB", "512 GB", "1.92TB" or "480GiB"'


def _num(text: str) -> float:
    value = float(text)
    return int(value) if value.is_integer() else value


def _scaled_size(text: str, per_unit: Callable[[str], float]) -> float:
    """The number of ``text`` ("2TB", "480 GiB") times ``per_unit(unit)``, rounded; refuses the unparseable
    and anything not above zero."""
    m = _SIZE_RE.fullmatch(text.strip()) if isinstance(text, str) else None
    if not m:
        raise ValueError(f"expected {SIZE_HINT}, got {text!r}")
    size = float(m["num"]) * per_unit(m["unit"].lower())
    if size <= 0:
        raise ValueError(f"size must be greater than zero, got {text!r}")
    return round(size, 3)


def parse_size(text: str) -> float:
    """``"2TB"`` -> 2000.0, ``"480GiB"`` -> 515.396 (decimal GB)."""
    return _scaled_size(text, lambda unit: _UNIT_BYTES[unit] / 1e9)


def parse_ram_size(text: str) -> float:
    """RAM is sold in binary units whatever the label says: ``"512GB"`` and ``"512GiB"`` -> 512.0 GiB,
    ``"1TB"`` -> 1024.0 GiB (a "32GB" DIMM holds 32 GiB)."""
    return _scaled_size(text, lambda unit: 1024.0 ** "kmgtp".index(unit[0]) / 1024.0**2)


MAX_TEXT = 200  # a human-form value is a short label; longer text is refused before any pattern runs
MAX_COUNT = 4096  # more GPUs/NICs/sockets than any one server has


def _split_count(text: str) -> tuple[int | None, str]:
    """Strip a ``4x``/``× 4`` count from either end; both ends at once is ambiguous."""
    if len(text) > MAX_TEXT:
        raise ValueError(f"too long for a label ({len(text)} characters, at most {MAX_TEXT})")
    count = None
    rest = text.strip()
    if re.match(r"-\s*\d+\s*[x×*]", rest, re.IGNORECASE):
        raise ValueError(f"count must be at least 1 in {text!r}")
    pre = _COUNT_PREFIX.match(rest)
    if pre:
        count = int(pre["n"])
        rest = rest[pre.end() :]
    suf = _COUNT_SUFFIX.search(rest)
    if suf:
        if count is not None:
            raise ValueError(f"count given twice in {text!r}")
        count = int(suf["n"])
        rest = rest[: suf.start()]
    if count is not None and not 1 <= count <= MAX_COUNT:
        raise ValueError(f"count must be from 1 to {MAX_COUNT}, got {count} in {text!r}")
    return count, rest.strip()


_RAM_TYPE = re.compile(r"(LP)?DDR\d[A-Z]?(-\d+)?", re.IGNORECASE)


def parse_ram(text: str) -> RamSpec:
    """``"512GB DDR4 ECC"`` -> RamSpec(512, "DDR4", True). ``non-ECC`` gives ecc=False."""
    hint = 'expected RAM like "512GB DDR4 ECC" or "256 GB DDR5"'
    m = _SIZE_RE.match(text.strip())
    if not m:
        raise ValueError(f"{hint}, got {text!r}")
    size = parse_ram_size(m.group(0))
    ram_type: str | None = None
    ecc: bool | None = None
    for token in re.split(r"[\s,]+", text.strip()[m.end() :].strip()):
        if not token:
            continue
        low = token.lower()
        if _RAM_TYPE.fullmatch(token):
            ram_type = token.upper().split("-")[0]
        elif low == "ecc":
            ecc = True
        elif low in ("non-ecc", "noecc", "no-ecc"):
            ecc = False
        elif low in ("rdimm", "lrdimm", "udimm", "registered", "memory", "ram"):
            continue
        else:
            raise ValueError(f"{hint}: don't know {token!r} in {text!r}")
    return RamSpec(size_gib=size, type=ram_type, ecc=ecc)


_GPU_MEM = re.compile(r"(?<![\w.])(?P<num>\d+(?:\.\d+)?)\s*(?P<unit>GB|GiB|G)(?![A-Za-z])", re.IGNORECASE)
_GPU_MODEL_TOKEN = re.compile(r"[A-Za-z]+-?\d+|\d{3,4}")
_VENDOR = re.compile(r"^(nvidia|amd|intel)\b", re.IGNORECASE)


def parse_gpu(text: str) -> GpuSpec:
    """``"NVIDIA A100 80GB × 4"``, ``"4x H100 80GB SXM"``, ``"NVIDIA H100 80GB HBM3"`` -> GpuSpec.

    The model is kept as written (whitespace collapsed, ``NVIDIA`` prefixed when no vendor is named) so
    it can be matched against NVML's product name; the memory is read from the ``80GB`` in the name.
    """
    hint = 'expected a GPU like "NVIDIA A100 80GB × 4", "4x H100 80GB SXM" or "NVIDIA L40S"'
    if not isinstance(text, str) or not text.strip():
        raise ValueError(f"{hint}, got {text!r}")
    count, model = _split_count(text)
    model = " ".join(model.split())
    if not model or not _GPU_MODEL_TOKEN.search(model):
        raise ValueError(f"{hint}, got {text!r}")
    mem = _GPU_MEM.search(model)
    memory_gb = None
    if mem:
        unit = mem["unit"].lower()
        memory_gb = _num(mem["num"]) if unit != "gib" else round(float(mem["num"]) * 1.073741824, 3)
        if memory_gb <= 0:
            raise ValueError(f"GPU memory must be greater than zero in {text!r}")
    if not _VENDOR.match(model):
        model = f"NVIDIA {model}"
    return GpuSpec(model=model, count=count or 1, memory_gb=memory_gb)


_NET_SPEED = re.compile(
    r"^(?P<num>\d+(?:\.\d+)?)\s*(?P<unit>GbE|Gbps|Gb/s|Gbit/s|Gbit|Gb|G|MbE|Mbps|Mb/s|Mb|M)(?![A-Za-z])",
    re.IGNORECASE,
)
_RDMA_WORDS = {
    "roce": "roce",
    "rocev2": "roce",
    "roce2": "roce",
    "rdma": None,
    "infiniband": "infiniband",
    "ib": "infiniband",
}
_NET_NOISE = {
    "ethernet",
    "nic",
    "nics",
    "port",
    "ports",
    "link",
    "links",
    "hdr",
    "ndr",
    "edr",
    "xdr",
    "qsfp",
    "qsfp28",
    "qsfp56",
    "qsfp112",
    "osfp",
    "sfp28",
    "sfp+",
    "sfp",
    "connectx",
    "mellanox",
    "with",
}


def parse_network(text: str) -> NetworkSpec:
    """``"100GbE RoCE"``, ``"2x 25GbE"``, ``"200Gb InfiniBand (HDR)"`` -> NetworkSpec."""
    hint = 'expected a network like "100GbE RoCE", "2x 25GbE" or "200Gb InfiniBand (HDR)"'
    if not isinstance(text, str):
        raise ValueError(f"{hint}, got {text!r}")
    count, rest = _split_count(text)
    m = _NET_SPEED.match(rest)
    if not m:
        raise ValueError(f"{hint}, got {text!r}")
    speed = float(m["num"])
    if m["unit"].lower().startswith("m"):
        speed = speed / 1000.0
    if speed <= 0:
        raise ValueError(f"link speed must be greater than zero in {text!r}")
    rdma: str | None = None
    saw_rdma_word = False
    for token in re.split(r"[\s,/()+]+", rest[m.end() :]):
        low = token.lower()
        if not low:
            continue
        if low in _RDMA_WORDS:
            saw_rdma_word = True
            rdma = _RDMA_WORDS[low] or rdma
        elif low in _NET_NOISE or re.fullmatch(r"connectx-?\d+|cx\d", low):
            continue
        else:
            raise ValueError(f"{hint}: don't know {token!r} in {text!r}")
    if saw_rdma_word and rdma is None:
        rdma = "infiniband" if "infiniband" in text.lower() else "roce"
    return NetworkSpec(speed_gbps=_num(str(speed)), count=count or 1, rdma=rdma, label=text.strip())


_CORES = re.compile(r"(?P<c>\d+)\s*C\s*/\s*(?P<t>\d+)\s*T", re.IGNORECASE)
_CORES_WORD = re.compile(r"(?P<n>\d+)[\s-]*(?P<what>cores?|threads?|sockets?)", re.IGNORECASE)


def parse_cpu(text: str) -> CpuSpec:
    """``"AMD EPYC 7543, 32C/64T"``, ``"2x Intel Xeon Gold 6338"`` -> CpuSpec.

    Core and thread counts written next to the model are per CPU, as on the datasheet; with ``2x`` they
    are multiplied by the socket count, because CpuSpec counts all sockets.
    """
    hint = 'expected a CPU like "AMD EPYC 7543, 32C/64T" or "2x Intel Xeon Gold 6338"'
    if not isinstance(text, str) or not text.strip():
        raise ValueError(f"{hint}, got {text!r}")
    sockets, rest = _split_count(text)
    cores = threads = None
    m = _CORES.search(rest)
    if m:
        cores, threads = int(m["c"]), int(m["t"])
        rest = rest[: m.start()] + rest[m.end() :]
    for w in list(_CORES_WORD.finditer(rest)):
        n, what = int(w["n"]), w["what"].lower()
        if what.startswith("core"):
            cores = n
        elif what.startswith("thread"):
            threads = n
        else:
            if sockets is not None and sockets != n:
                raise ValueError(f"socket count given twice in {text!r}")
            sockets = n
    rest = _CORES_WORD.sub("", rest)
    model = " ".join(re.sub(r"[,;]+|\(\s*\)", " ", rest).split())
    if not model or not re.search(r"[A-Za-z]", model):
        raise ValueError(f"{hint}, got {text!r}")
    if (cores is not None and cores < 1) or (threads is not None and threads < 1):
        raise ValueError(f"core and thread counts must be at least 1 in {text!r}")
    if cores is not None and threads is not None and threads < cores:
        raise ValueError(f"fewer threads than cores in {text!r}")
    per = sockets or 1
    return CpuSpec(
        model=model,
        cores=cores * per if cores is not None else None,
        threads=threads * per if threads is not None else None,
        sockets=sockets,
    )


_OS_RE = re.compile(r"^(?P<name>[A-Za-z][A-Za-z ._-]*?)\s+(?P<ver>\d+(?:\.\d+)*)(?P<rest>.*)$")


def parse_os(text: str) -> OsSpec:
    """``"Ubuntu 22.04 LTS"`` -> OsSpec("Ubuntu", "22.04"); ``"Debian 12"`` -> OsSpec("Debian", "12")."""
    hint = 'expected an OS like "Ubuntu 22.04 LTS" or "Debian 12"'
    m = _OS_RE.match(text.strip()) if isinstance(text, str) else None
    if not m:
        raise ValueError(f"{hint}, got {text!r}")
    rest = m["rest"].strip()
    if rest and not re.fullmatch(r"(LTS)?\s*(\([\w\s]+\))?|\w+ \w+", rest, re.IGNORECASE):
        raise ValueError(f"{hint}: don't know {rest!r} in {text!r}")
    return OsSpec(name=m["name"].strip(), version=m["ver"])


def storage_class(text: str) -> str:
    """``"NVMe SSD"`` -> ``nvme``, ``"SATA SSD"`` -> ``ssd``, ``"HDD"`` -> ``hdd`` (what the probe sees)."""
    low = text.lower() if isinstance(text, str) else ""
    if "nvme" in low:
        return "nvme"
    if re.search(r"\bhdd\b|hard ?dis[ck]|spinning|\brotational\b", low):
        return "hdd"
    if re.search(r"\bssd\b|solid", low):
        return "ssd"
    raise ValueError(f'expected a storage type like "NVMe SSD", "SATA SSD" or "HDD", got {text!r}')


def parse_storage(text: str) -> tuple[float, str]:
    """``"2TB NVMe SSD"`` -> (2000.0, "nvme")."""
    m = _SIZE_RE.match(text.strip()) if isinstance(text, str) else None
    if not m:
        raise ValueError(f'expected storage like "2TB NVMe SSD" or "8TB SATA SSD", got {text!r}')
    return parse_size(m.group(0)), storage_class(text.strip()[m.end() :])
