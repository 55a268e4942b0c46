"""The spec model: what a deep-learning server must be, after the loader has normalised it.

The YAML may use the notes' human form (``"NVIDIA A100 80GB × 4"``, ``"512GB DDR4 ECC"``) or the
structured form; both load into these dataclasses. Units are in the field names (``_gb``, ``_gbps``,
``_c``) so that no judge has to guess. ``None`` means "the spec does not pin this": the matching check
is skipped with that reason, never silently passed.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Location:
    """Where a value came from: file, 1-based line and column, dotted key path."""

    file: str
    line: int
    column: int
    key: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.column}: {self.key}"


@dataclass(frozen=True)
class CpuSpec:
    model: str | None = None  # substring matched case-insensitively, e.g. "AMD EPYC 7543"
    cores: int | None = None  # physical cores, all sockets
    threads: int | None = None  # logical CPUs
    sockets: int | None = None


@dataclass(frozen=True)
class GpuSpec:
    model: str  # normalised marketing name, e.g. "NVIDIA A100 80GB" (matched against NVML's name)
    count: int = 1
    memory_gb: float | None = None  # per card, decimal GB as sold (80GB card reports ~79.6 GiB usable)
    architecture: str | None = None  # derived from the model via compat data when not given
    nvlink: bool | None = None  # expect NVLink links up (None: expect them where the card has them)
    pcie_gen: int | None = None  # expected max link generation (None: the card's own maximum)
    pcie_width: int | None = None  # expected max link width


@dataclass(frozen=True)
class RamSpec:
    size_gib: float  # binary, as DIMMs are sold: "512GB" of RAM is 512 GiB
    type: str | None = None  # "DDR4", "DDR5"
    ecc: bool | None = None


@dataclass(frozen=True)
class StorageSpec:
    type: str  # "nvme" | "ssd" | "hdd"
    size_gb: float  # decimal GB as sold ("2TB" -> 2000)
    mount: str | None = None  # a mount point that must exist on this device class, e.g. "/data"
    label: str | None = None  # the human text as written, for reports


@dataclass(frozen=True)
class NetworkSpec:
    speed_gbps: float
    count: int = 1
    rdma: str | None = None  # None | "roce" | "infiniband"
    label: str | None = None


@dataclass(frozen=True)
class HardwareSpec:
    cpu: CpuSpec | None = None
    gpus: tuple[GpuSpec, ...] = ()
    ram: RamSpec | None = None
    storage: tuple[StorageSpec, ...] = ()
    network: tuple[NetworkSpec, ...] = ()

    @property
    def gpu_count(self) -> int:
        return sum(g.count for g in self.gpus)


@dataclass(frozen=True)
class OsSpec:
    name: str  # "Ubuntu"
    version: str  # "22.04"


@dataclass(frozen=True)
class PythonEnvSpec:
    name: str = "dl"
    python: str = "3.10"
    installer: str = "conda"  # "conda" | "venv" | "system"
    prefix: str = "/opt/miniconda3"  # conda base prefix; the venv's path (venv); "/usr" (system)

    @property
    def interpreter(self) -> str:
        """Path of the env's own python, which the software probe runs."""
        if self.installer in ("venv", "system"):
            return f"{self.prefix}/bin/python3"
        return f"{self.prefix}/envs/{self.name}/bin/python"


@dataclass(frozen=True)
class JupyterSpec:
    """JupyterLab as a service (role ``jupyterlab``): one unit per user, never root, a password always."""

    enabled: bool = True
    users: tuple[str, ...] = ()  # one jupyterlab@USER unit each
    listen: str = "127.0.0.1"  # ServerApp.ip; anything but loopback needs tls_cert + tls_key (lint)
    port: int = 8888
    tls_cert: str | None = None  # absolute path, or None ("none" in the spec)
    tls_key: str | None = None
    kernel_env: str | None = None  # the env registered as the kernel; None in the spec: python_env's name

    @property
    def loopback(self) -> bool:
        import ipaddress

        return ipaddress.ip_address(self.listen).is_loopback


DOCKER_SOURCES = ("docker.io", "docker-ce")  # Ubuntu's package | Docker's apt repo


@dataclass(frozen=True)
class SoftwareSpec:
    os: OsSpec | None = None
    nvidia_driver: str | None = None  # "535.54.03" exact, or "535" for the branch
    cuda: str | None = None  # toolkit "12.1"
    cudnn: str | None = None  # "8.9.2"
    python_env: PythonEnvSpec | None = None
    frameworks: dict[str, str] = field(default_factory=dict)  # pytorch -> "2.1.2+cu121", tensorflow, ...
    containers: dict[str, str] = field(default_factory=dict)  # docker, nvidia_container_toolkit, ...
    monitoring: dict[str, str] = field(default_factory=dict)
    # where docker comes from (software.containers.docker_source): "docker.io" | "docker-ce" | None (unsaid)
    docker_source: str | None = None
    jupyter: JupyterSpec | None = None


# One vocabulary for the policy keys (checks.ecc, persistence_mode, pcie, xid): what a failed condition is.
POLICY_LEVELS = ("fail", "warn", "ignore")
POLICY_KEYS = ("ecc", "persistence_mode", "pcie", "xid")
# old spellings, still read as "fail"; `dlverify spec lint` warns naming key and line (spec.checks.policy)
DEPRECATED_POLICY = {"ecc": ("required",), "persistence_mode": ("required",), "pcie": ("max",)}


@dataclass(frozen=True)
class ChecksSpec:
    """Thresholds of the judges, with defaults a fleet operator would choose."""

    gpu_temp_warn_c: int = 80
    gpu_temp_max_c: int = 87
    # clocks-event reasons that are not faults (NVML names without the prefix)
    allowed_clock_event_reasons: tuple[str, ...] = (
        "gpu_idle",
        "applications_clocks_setting",
        "sw_power_cap",
    )
    ecc: str = "fail"  # ECC off: "fail" | "warn" | "ignore" (POLICY_LEVELS)
    persistence_mode: str = "fail"  # persistence mode off: "fail" | "warn" | "ignore"
    mig: str = "disabled"  # "disabled" | "enabled" | "any"
    compute_mode: str = "default"  # "default" | "exclusive_process" | "any"
    pcie: str = "fail"  # link capability below the card's max: "fail" | "warn" | "ignore"
    power_limit_min_ratio: float = 0.95  # enforced power limit / default limit below this warns
    xid: str = "fail"  # XID errors in the kernel log since boot: "fail" | "warn" | "ignore"
    gpu_memory_tolerance: float = 0.08  # reported total may be this much below the spec's size
    ram_tolerance: float = 0.06  # firmware-reserved RAM
    disk_tolerance: float = 0.10  # decimal vs binary units and partitioning
    # (key, old spelling) of each policy written the old way ("required", "max"), now read as "fail";
    # set by __post_init__, read by lint; not a spec key
    deprecated: tuple[tuple[str, str], ...] = field(
        default=(), compare=False, repr=False, metadata={"spec_key": False}
    )

    def __post_init__(self) -> None:
        seen = dict(self.deprecated)
        for key, old in DEPRECATED_POLICY.items():
            value = getattr(self, key)
            if value in old:
                object.__setattr__(self, key, "fail")
                seen[key] = value
        object.__setattr__(self, "deprecated", tuple(seen.items()))


@dataclass(frozen=True)
class BenchSpec:
    """Optional performance floors for `dlverify bench` (images/s per GPU)."""

    min_train_img_s: float | None = None
    min_infer_img_s: float | None = None
    reference_tolerance: float = 0.15  # below the per-model reference by more than this fails
    straggler_tolerance: float = 0.08  # below the node's median by more than this is a straggler
    # --soak: one window's seconds; the most the last window may be slower than the first (drift), the most
    # the windows may spread (coefficient of variation), the most of a window's samples under a fault reason
    soak_window_s: float = 60.0
    soak_max_drift: float = 0.05
    soak_max_cv: float = 0.03
    soak_max_event_share: float = 0.05


@dataclass(frozen=True)
class MonitoringSpec:
    """The monitoring role's check timer and alert thresholds (top-level ``monitoring:``; the versions to
    install are ``software.monitoring``). Defaults are the role's (``roles/monitoring/defaults/main.yml``)."""

    check_interval_min: int = 5  # dlverify-check.timer: the fast check every N minutes
    check_missed_runs: int = 3  # DlverifyCheckNotRun: no run for this many intervals (or never)
    check_failing_for_min: int = 0  # DlverifyCheckFailing: a check failing this long (0: at once)
    gpu_temp_alert_c: int = 85  # GpuTemperatureHigh: DCGM's GPU temperature above this...
    gpu_temp_for_min: int = 5  # ...for this long
    xid_window_min: int = 15  # GpuXidError: a new XID within this window
    ecc_dbe_max: int = 0  # GpuEccUncorrectable: volatile double-bit (uncorrectable) ECC errors above this
    exporter_down_for_min: int = 5  # ExporterDown: a scrape target down this long


@dataclass(frozen=True)
class FleetSpec:
    """Outlier rules of `dlverify fleet report` (top-level ``fleet:``): a GPU (or a host, by its mean per
    GPU) is slow when it is more than ``mad_threshold`` scaled MADs *and* more than ``min_gap`` below the
    median of its peers; fewer than ``min_peers`` values are never judged (a median of two says nothing)."""

    mad_threshold: float = 3.5
    min_gap: float = 0.05
    min_peers: int = 3


@dataclass(frozen=True)
class Spec:
    hardware: HardwareSpec
    software: SoftwareSpec
    checks: ChecksSpec = field(default_factory=ChecksSpec)
    bench: BenchSpec = field(default_factory=BenchSpec)
    monitoring: MonitoringSpec = field(default_factory=MonitoringSpec)
    fleet: FleetSpec = field(default_factory=FleetSpec)
    path: str = "<memory>"
    # dotted key path ("software.frameworks.pytorch", "hardware.gpu[0]") -> where it was written
    locations: dict[str, Location] = field(default_factory=dict, compare=False, repr=False)

    def where(self, key: str) -> str:
        """``file:line`` of a key (or its nearest written parent), for messages."""
        probe = key
        while probe:
            loc = self.locations.get(probe)
            if loc:
                return f"{loc.file}:{loc.line}"
            probe = probe.rsplit(".", 1)[0] if "." in probe else ""
        return self.path
