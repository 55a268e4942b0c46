"""The spec's key tables: every key the spec file may contain, its kind, and how it becomes the model.

The loader (``loader.py``) walks a YAML document with :data:`SPEC`; the JSON Schema (``schema.py``) is
``SPEC.schema()``. One table, two outputs: they cannot disagree about which keys exist.

Size: over 400 lines on purpose: it is one table (every key of the spec in file order), and a table split
across files would hide a key's neighbours.
"""

from __future__ import annotations

import dataclasses
import ipaddress
from dataclasses import dataclass
from typing import Any

from yaml import Node, ScalarNode

from dlverify import clocks
from dlverify.hwspec import parse
from dlverify.hwspec.kinds import (
    AsList,
    Bool,
    Context,
    Enum,
    Fields,
    Human,
    Int,
    Kind,
    ListOf,
    Num,
    OneOf,
    Str,
    Version,
)
from dlverify.hwspec.model import (
    DEPRECATED_POLICY,
    DOCKER_SOURCES,
    POLICY_LEVELS,
    BenchSpec,
    ChecksSpec,
    CpuSpec,
    FleetSpec,
    GpuSpec,
    HardwareSpec,
    JupyterSpec,
    MonitoringSpec,
    NetworkSpec,
    OsSpec,
    PythonEnvSpec,
    RamSpec,
    SoftwareSpec,
    Spec,
    StorageSpec,
)

# NVML's clocks-event reasons (nvmlClocksEventReason*), without the prefix, as snake_case
CLOCK_EVENT_REASONS = clocks.NAMES
ABS_PATH = r"^/"


def _size_gb(d: dict[str, Any], what: str) -> float:
    """``size`` (with unit) or ``size_gb`` (number): exactly one."""
    if "size" in d and "size_gb" in d:
        raise ValueError(f"{what}: give either 'size' or 'size_gb', not both")
    if "size" in d:
        return d["size"]
    if "size_gb" in d:
        return float(d["size_gb"])
    raise ValueError(f"{what}: 'size' (e.g. \"2TB\") or 'size_gb' is required")


def _build_gpu(d: dict[str, Any]) -> GpuSpec:
    named = parse.parse_gpu(d["model"])  # normalises the name, reads "80GB" from it
    if named.count != 1 and "count" in d:
        raise ValueError(f"count given twice: in model {d['model']!r} and as count: {d['count']}")
    return GpuSpec(
        model=named.model,
        count=d.get("count", named.count),
        memory_gb=d.get("memory_gb", named.memory_gb),
        architecture=d.get("architecture"),
        nvlink=d.get("nvlink"),
        pcie_gen=d.get("pcie_gen"),
        pcie_width=d.get("pcie_width"),
    )


def _build_ram(d: dict[str, Any]) -> RamSpec:
    kind = d.get("type")  # "DDR4-3200" pins the generation, as in the human form
    kind = kind.upper().split("-")[0] if kind else None
    return RamSpec(size_gib=_size_gb(d, "ram"), type=kind, ecc=d.get("ecc"))


def _build_storage(d: dict[str, Any]) -> StorageSpec:
    size = _size_gb(d, "storage")
    shown = f"{size / 1000:g}TB" if size >= 1000 else f"{size:g}GB"
    label = d.get("label") or f"{d['type']} {shown}"
    return StorageSpec(type=parse.storage_class(d["type"]), size_gb=size, mount=d.get("mount"), label=label)


def _storage_from_text(text: str) -> StorageSpec:
    size, cls = parse.parse_storage(text)
    return StorageSpec(type=cls, size_gb=size, label=text.strip())


def _build_network(d: dict[str, Any]) -> NetworkSpec:
    rdma = d.get("rdma")
    return NetworkSpec(
        speed_gbps=d["speed_gbps"],
        count=d.get("count", 1),
        rdma=None if rdma in (None, "none") else rdma,
        label=d.get("label"),
    )


def _build_python_env(d: dict[str, Any]) -> PythonEnvSpec:
    installer = d.get("installer", "conda")
    if installer == "venv" and "prefix" not in d:
        raise ValueError("python_env: installer 'venv' needs 'prefix' (the venv's directory)")
    prefix = d.get("prefix", {"conda": "/opt/miniconda3", "system": "/usr"}.get(installer, ""))
    name = d.get("name", "dl" if installer == "conda" else installer)
    return PythonEnvSpec(name=name, python=d.get("python", "3.10"), installer=installer, prefix=prefix)


@dataclass
class Policy(Enum):
    """A policy level, ``fail | warn | ignore``; an ``old`` spelling still loads (read as ``fail``) and
    `dlverify spec lint` warns about it. Messages name only the current levels."""

    values: tuple[str, ...] = POLICY_LEVELS
    old: tuple[str, ...] = ()

    def load(self, node: Node, key: str, ctx: Context) -> Any:
        if isinstance(node, ScalarNode) and node.value in self.old:
            return node.value  # ChecksSpec maps it to "fail" and remembers it for lint
        return super().load(node, key, ctx)

    def schema(self) -> dict[str, Any]:
        s = self._with_doc({"enum": [*self.values, *self.old]})
        if self.old:
            s["description"] = f"{' | '.join(self.values)}; {', '.join(self.old)}: deprecated, read as fail"
        return s


def _build_checks(d: dict[str, Any]) -> ChecksSpec:
    c = ChecksSpec(**d)
    if c.gpu_temp_warn_c > c.gpu_temp_max_c:
        raise ValueError(
            f"checks: gpu_temp_warn_c ({c.gpu_temp_warn_c}) is above gpu_temp_max_c ({c.gpu_temp_max_c})"
        )
    return c


def _listen_address(text: str) -> str:
    """An IP address JupyterLab binds to (``ServerApp.ip``), normalised (``::1``, ``0.0.0.0``)."""
    try:
        return str(ipaddress.ip_address(text.strip()))
    except ValueError:
        raise ValueError(
            f"expected an IP address like 127.0.0.1 (loopback) or 0.0.0.0 (all), got {text!r}"
        ) from None


def _build_jupyter(d: dict[str, Any]) -> JupyterSpec:
    d = {k: (None if v == "none" else v) for k, v in d.items()}
    if "users" in d:
        d["users"] = tuple(d["users"])
        if len(set(d["users"])) != len(d["users"]):
            raise ValueError("jupyter: a user is listed twice in users")
    if "root" in d.get("users", ()):
        raise ValueError("jupyter: 'root' in users; JupyterLab never runs as root (one unit per normal user)")
    if (d.get("tls_cert") is None) != (d.get("tls_key") is None):
        raise ValueError("jupyter: give both tls_cert and tls_key, or neither")
    return JupyterSpec(**d)


def _build_software(d: dict[str, Any]) -> SoftwareSpec:
    d = dict(d)
    containers = dict(d.get("containers", {}))
    source = containers.pop("docker_source", None)
    d["containers"] = containers
    return SoftwareSpec(**d, docker_source=source)


def _build_spec(d: dict[str, Any]) -> Spec:
    software = d.get("software", SoftwareSpec())
    jup = software.jupyter
    if jup is not None and jup.kernel_env is None and software.python_env is not None:
        # the kernel env defaults to the spec's python_env (its name, as `ipykernel install --name` takes)
        software = dataclasses.replace(
            software, jupyter=dataclasses.replace(jup, kernel_env=software.python_env.name)
        )
    return Spec(
        hardware=d.get("hardware", HardwareSpec()),
        software=software,
        checks=d.get("checks", ChecksSpec()),
        bench=d.get("bench", BenchSpec()),
        monitoring=d.get("monitoring", MonitoringSpec()),
        fleet=d.get("fleet", FleetSpec()),
    )


SIZE = Human(
    parse.parse_size,
    expect=parse.SIZE_HINT,
    pattern=parse.SIZE_PATTERN,
    description='with a unit: "2TB" (decimal, 1 TB = 1000 GB) or "480GiB" (binary)',
)
RAM_SIZE = Human(
    parse.parse_ram_size,
    expect=parse.SIZE_HINT,
    pattern=parse.SIZE_PATTERN,
    description='with a unit, binary as RAM is sold: "512GB" = "512GiB", "1TB" = 1024 GiB',
)
POSITIVE = Num(exclusive_minimum=0)
COUNT = Int(minimum=1, maximum=4096)
RATIO = Num(minimum=0, maximum=1)

CPU: Kind = OneOf(
    (
        Human(
            parse.parse_cpu,
            expect='a CPU like "AMD EPYC 7543, 32C/64T"',
            description="model, then optional cores/threads per CPU; '2x' prefix for sockets",
        ),
        Fields(
            {
                "model": Str(description="matched case-insensitively as a substring of the CPU's model name"),
                "cores": Int(minimum=1, description="physical cores, all sockets"),
                "threads": Int(minimum=1, description="logical CPUs, all sockets"),
                "sockets": Int(minimum=1),
            },
            build=lambda d: CpuSpec(**d),
        ),
    ),
    description="the CPU(s)",
)

GPU_ITEM: Kind = OneOf(
    (
        Human(parse.parse_gpu, expect='a GPU like "NVIDIA A100 80GB × 4" or "4x H100 80GB SXM"'),
        Fields(
            {
                "model": Str(description='marketing name as NVML reports it, e.g. "NVIDIA H100 80GB HBM3"'),
                "count": COUNT,
                "memory_gb": Num(exclusive_minimum=0, description="per card, decimal GB as sold"),
                "architecture": Str(description="derived from the model when not given"),
                "nvlink": Bool(description="expect NVLink links up (default: where the card has them)"),
                "pcie_gen": Int(minimum=1, maximum=6, description="expected max PCIe generation"),
                "pcie_width": Int(minimum=1, maximum=32, description="expected max PCIe link width"),
            },
            required=("model",),
            build=_build_gpu,
        ),
    )
)

RAM: Kind = OneOf(
    (
        Human(parse.parse_ram, expect='RAM like "512GB DDR4 ECC"'),
        Fields(
            {
                "size": RAM_SIZE,
                "size_gb": Num(exclusive_minimum=0, description="GiB, as RAM is sold (512 = 512 GiB)"),
                "type": Str(pattern=r"^(LP)?DDR[0-9]"),
                "ecc": Bool(),
            },
            build=_build_ram,
        ),
    )
)

STORAGE_ITEM: Kind = OneOf(
    (
        Human(_storage_from_text, expect='storage like "2TB NVMe SSD"'),
        Fields(
            {
                "type": Str(description='"NVMe SSD", "SATA SSD", "HDD" (normalised to nvme/ssd/hdd)'),
                "size": SIZE,
                "size_gb": POSITIVE,
                "mount": Str(
                    pattern=ABS_PATH,
                    expect="an absolute path like /data",
                    description="a mount point that must exist on this device class",
                ),
                "label": Str(),
            },
            required=("type",),
            build=_build_storage,
        ),
    )
)

NETWORK_ITEM: Kind = OneOf(
    (
        Human(parse.parse_network, expect='a network like "100GbE RoCE" or "2x 25GbE"'),
        Fields(
            {
                "speed_gbps": POSITIVE,
                "count": COUNT,
                "rdma": Enum(("roce", "infiniband", "none")),
                "label": Str(),
            },
            required=("speed_gbps",),
            build=_build_network,
        ),
    )
)

HARDWARE = Fields(
    {
        "cpu": CPU,
        "gpu": AsList(GPU_ITEM),
        "ram": RAM,
        "storage": AsList(STORAGE_ITEM),
        "network": AsList(NETWORK_ITEM),
    },
    build=lambda d: HardwareSpec(
        cpu=d.get("cpu"),
        gpus=d.get("gpu", ()),
        ram=d.get("ram"),
        storage=d.get("storage", ()),
        network=d.get("network", ()),
    ),
    description="what the machine is",
)

OS: Kind = OneOf(
    (
        Human(parse.parse_os, expect='an OS like "Ubuntu 22.04 LTS"'),
        Fields(
            {"name": Str(), "version": Version(example="22.04")},
            required=("name", "version"),
            build=lambda d: OsSpec(**d),
        ),
    )
)

VERSIONS = Fields(extra=Version(example="2.1.2"), description="name -> version string")

CONTAINERS = Fields(
    {
        "docker": Version(example="20.10.24", description="Docker engine version (upstream, e.g. 24.0.7)"),
        "docker_source": Enum(
            DOCKER_SOURCES,
            description="docker.io: Ubuntu's package; docker-ce: Docker's apt repo "
            "(unset: lint says which ships the version)",
        ),
        "nvidia_container_toolkit": Version(example="1.13.1", description="nvidia-container-toolkit version"),
    },
    extra=Version(example="1.7.2"),
    description="container engine and NVIDIA Container Toolkit versions (other names: name -> version)",
)

USER_NAME = Str(pattern=r"^[a-z_][a-z0-9_-]{0,31}$", expect="a Linux user name like alice")
PATH_OR_NONE = Str(pattern=r"^(/|none$)", expect="an absolute path like /etc/ssl/jupyter.pem, or none")

JUPYTER = Fields(
    {
        "enabled": Bool(description="run JupyterLab (default true when the section is present)"),
        "users": ListOf(USER_NAME, description="one jupyterlab@USER unit each; never root"),
        "listen": Human(
            _listen_address,
            expect="an IP address like 127.0.0.1",
            description="ServerApp.ip (default 127.0.0.1: reach it through an SSH tunnel); beyond loopback "
            "needs tls_cert and tls_key",
        ),
        "port": Int(minimum=1, maximum=65535, description="default 8888"),
        "tls_cert": PATH_OR_NONE,
        "tls_key": PATH_OR_NONE,
        "kernel_env": Str(
            pattern=r"^[A-Za-z0-9_.-]+$",
            expect="an env name like dl",
            description="the env registered as the kernel (default: python_env's name)",
        ),
    },
    build=_build_jupyter,
    description="JupyterLab as a service; a password is always required (vaulted, argon2)",
)

SOFTWARE = Fields(
    {
        "os": OS,
        "nvidia_driver": Version(
            pattern=r"^[0-9]{3}(\.[0-9]+){0,2}$",
            example="535.54.03",
            description='exact "535.54.03", or the branch "535"',
        ),
        "cuda": Version(
            pattern=r"^[0-9]+\.[0-9]+(\.[0-9]+)?$", example="12.1", description="CUDA toolkit major.minor"
        ),
        "cudnn": Version(pattern=r"^[0-9]+(\.[0-9]+){0,3}$", example="8.9.2"),
        "python_env": Fields(
            {
                "name": Str(pattern=r"^[A-Za-z0-9_.-]+$", expect="an env name like dl"),
                "python": Version(pattern=r"^3\.[0-9]+(\.[0-9]+)?$", example="3.10"),
                "installer": Enum(("conda", "venv", "system")),
                "prefix": Str(pattern=ABS_PATH, expect="an absolute path like /opt/miniconda3"),
            },
            build=_build_python_env,
            description="the Python environment the software probe runs",
        ),
        "frameworks": VERSIONS,
        "containers": CONTAINERS,
        "monitoring": VERSIONS,
        "jupyter": JUPYTER,
    },
    build=_build_software,
    description="what is installed",
)

CHECKS = Fields(
    {
        "gpu_temp_warn_c": Int(minimum=1, maximum=150),
        "gpu_temp_max_c": Int(minimum=1, maximum=150),
        "allowed_clock_event_reasons": ListOf(Enum(CLOCK_EVENT_REASONS)),
        "ecc": Policy(old=DEPRECATED_POLICY["ecc"]),
        "persistence_mode": Policy(old=DEPRECATED_POLICY["persistence_mode"]),
        "mig": Enum(("disabled", "enabled", "any")),
        "compute_mode": Enum(("default", "exclusive_process", "any")),
        "pcie": Policy(old=DEPRECATED_POLICY["pcie"]),
        "power_limit_min_ratio": RATIO,
        "xid": Policy(),
        "gpu_memory_tolerance": Num(minimum=0, maximum=0.5),
        "ram_tolerance": Num(minimum=0, maximum=0.5),
        "disk_tolerance": Num(minimum=0, maximum=0.5),
    },
    build=_build_checks,
    description="thresholds of the judges (defaults in brackets in the README)",
)

BENCH = Fields(
    {
        "min_train_img_s": POSITIVE,
        "min_infer_img_s": POSITIVE,
        "reference_tolerance": RATIO,
        "straggler_tolerance": RATIO,
        "soak_window_s": Num(minimum=0.1, maximum=3600),
        "soak_max_drift": RATIO,
        "soak_max_cv": RATIO,
        "soak_max_event_share": RATIO,
    },
    build=lambda d: BenchSpec(**d),
    description="performance floors for `dlverify bench`",
)


MONITORING = Fields(
    {
        "check_interval_min": Int(
            minimum=1, maximum=1440, description="dlverify-check.timer: the fast check every N minutes (5)"
        ),
        "check_missed_runs": Int(
            minimum=1, maximum=100, description="DlverifyCheckNotRun: no run for this many intervals (3)"
        ),
        "check_failing_for_min": Int(
            minimum=0,
            maximum=1440,
            description="DlverifyCheckFailing: failing this many minutes (0: at once)",
        ),
        "gpu_temp_alert_c": Int(minimum=1, maximum=150, description="GpuTemperatureHigh: above this (85)"),
        "gpu_temp_for_min": Int(minimum=0, maximum=1440, description="GpuTemperatureHigh: for this long (5)"),
        "xid_window_min": Int(minimum=1, maximum=1440, description="GpuXidError: a new XID within (15)"),
        "ecc_dbe_max": Int(
            minimum=0, maximum=1000000, description="GpuEccUncorrectable: volatile DBE count above this (0)"
        ),
        "exporter_down_for_min": Int(
            minimum=0, maximum=1440, description="ExporterDown: a target down this long (5)"
        ),
    },
    build=lambda d: MonitoringSpec(**d),
    description="the monitoring role's check interval and alert thresholds (versions: software.monitoring)",
)

FLEET = Fields(
    {
        "mad_threshold": Num(
            exclusive_minimum=0, maximum=1000, description="robust z (scaled MADs) below the median (3.5)"
        ),
        "min_gap": Num(exclusive_minimum=0, maximum=0.99, description="and this share below it (0.05)"),
        "min_peers": Int(minimum=2, maximum=100000, description="fewer values are not judged (3)"),
    },
    build=lambda d: FleetSpec(**d),
    description="outlier rules of `dlverify fleet report`",
)

SPEC = Fields(
    {
        "hardware": HARDWARE,
        "software": SOFTWARE,
        "checks": CHECKS,
        "bench": BENCH,
        "monitoring": MONITORING,
        "fleet": FLEET,
    },
    build=_build_spec,
    expect="a mapping of sections (hardware:, software:, checks:, bench:, monitoring:, fleet:)",
)
