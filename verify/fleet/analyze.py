"""Judge a fleet: who fails, who drifted from its peers, which GPU or host is slow among its peers, where
XIDs and ECC errors are, and who could not be judged. Every finding is a :class:`CheckResult` whose group
is the host, so the report speaks the same vocabulary as `dlverify check`."""

from __future__ import annotations

import statistics
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Any

from dlverify.fleet.facts import VERSION_FIELDS, GpuRun, HostFacts, load_hosts
from dlverify.fleet.reader import FleetInput
from dlverify.hwspec.model import ChecksSpec, FleetSpec, Spec
from dlverify.results import CheckResult, Status

SECTIONS = {
    "failing": "hosts failing checks",
    "drift": "drift among hosts that should be the same",
    "outlier": "throughput outliers among GPUs of the same model",
    "health": "XID and ECC errors",
    "unreachable": "unreachable hosts",
    "no_result": "hosts without a usable result",
    "input": "input problems",
}
APP_XIDS = frozenset({13, 31, 43, 45})  # raised by applications, not the GPU: warn (as gpu.xid does)
ALLOWED_REASONS = ChecksSpec().allowed_clock_event_reasons
MAD_SCALE = 1.4826  # MAD of a normal distribution -> its standard deviation
_DEFAULT = FleetSpec()
MIN_PEERS = _DEFAULT.min_peers
_MODE = {"train": "training", "infer": "inference"}


@dataclass(frozen=True)
class Thresholds:
    """The outlier rules; defaults are the spec's (``fleet:`` in hwspec.yaml, :class:`FleetSpec`)."""

    mad: float = _DEFAULT.mad_threshold  # robust z (median / scaled MAD) below which a GPU or host is slow
    # ... and at least this far (share) below the median: the MAD of near-equal cards is tiny
    min_gap: float = _DEFAULT.min_gap
    min_peers: int = _DEFAULT.min_peers  # fewer values (GPUs, or hosts by their mean) are not judged
    # clocks-event reasons that explain nothing (checks.allowed_clock_event_reasons)
    allowed_reasons: tuple[str, ...] = ALLOWED_REASONS
    source: str = "defaults"  # where they came from: "defaults", the spec's file:line, "--mad-threshold"...

    @classmethod
    def from_spec(cls, spec: Spec) -> Thresholds:
        f = spec.fleet
        where = spec.where("fleet") if "fleet" in spec.locations else f"{spec.path} (defaults)"
        return cls(f.mad_threshold, f.min_gap, f.min_peers, spec.checks.allowed_clock_event_reasons, where)


@dataclass
class Finding:
    section: str
    host: str
    result: CheckResult


@dataclass
class Population:
    """The throughput of one GPU model in one mode and config across the fleet."""

    model: str
    mode: str
    config: tuple[str, int, int]
    runs: list[GpuRun]
    median: float = 0.0
    mad: float = 0.0
    cutoff: float | None = None  # below this a GPU is an outlier; None: too few to judge
    slow: list[GpuRun] = field(default_factory=list)


@dataclass
class FleetReport:
    root: str
    thresholds: Thresholds
    hosts: list[HostFacts]
    state: dict[str, str]  # host -> ok | failing | unreachable | no_result
    groups: dict[str, list[str]]  # "model xN, spec" -> hosts
    findings: list[Finding]
    populations: list[Population]
    problems: list[str]


def _fail(section: str, host: str, cid: str, name: str, status: Status = Status.FAIL, **kw: Any) -> Finding:
    return Finding(section, host, CheckResult(cid, host, name, status, **kw))


def group_key(f: HostFacts) -> str:
    model = f.gpu_model or "unknown GPU"
    count = f" x{f.gpu_count}" if f.gpu_count else ""
    return f"{model}{count}, spec {f.spec or '?'}"


def _drift(groups: dict[str, list[HostFacts]]) -> list[Finding]:
    out = []
    for key, members in groups.items():
        for fld in VERSION_FIELDS:
            seen = Counter(f.versions[fld] for f in members if fld in f.versions)
            if len(seen) < 2:
                continue
            (common, n), total = seen.most_common(1)[0], sum(seen.values())
            tie = sum(1 for c in seen.values() if c == n) > 1
            others = ", ".join(f"{v} on {c}" for v, c in seen.most_common()[1:])
            for f in members:
                v = f.versions.get(fld)
                if v is None or v == common:
                    continue
                out.append(
                    _fail(
                        "drift",
                        f.name,
                        f"fleet.drift.{fld}",
                        f"{fld} version",
                        observed=v,
                        expected=common,
                        detail=f"{n} of {total} hosts of {key} have {common} ({others})"
                        + ("; no majority: the most common value is taken as expected" if tie else ""),
                    )
                )
    return out


def _cutoff(values: list[float], th: Thresholds) -> tuple[float, float, float | None]:
    med = statistics.median(values)
    mad = statistics.median(abs(v - med) for v in values)
    if len(values) < th.min_peers:
        return med, mad, None
    return med, mad, min(med - th.mad * MAD_SCALE * mad, med * (1 - th.min_gap))


def _health_text(f: HostFacts) -> str:
    parts = []
    if f.xid:
        codes = Counter(e.get("xid") for e in f.xid)
        parts.append("XID " + ", ".join(f"{c} x{n}" for c, n in sorted(codes.items(), key=str)))
    if f.ecc:
        parts.append("uncorrected ECC " + ", ".join(f"{g} {v}/{a}" for g, (v, a) in f.ecc.items()))
    return "; ".join(parts) or "no XID, no uncorrected ECC"


def _outliers(facts: list[HostFacts], th: Thresholds) -> tuple[list[Population], list[Finding]]:
    from dlverify.benchmarks.judge import likely_cause

    by_host = {f.name: f for f in facts}
    pops: dict[tuple[str, str, tuple[str, int, int]], list[GpuRun]] = defaultdict(list)
    for f in facts:
        for r in f.runs:
            pops[(r.model, r.mode, r.config)].append(r)
    populations, findings = [], []
    for (model, mode, cfg), runs in sorted(pops.items()):
        p = Population(model, mode, cfg, runs)
        p.median, p.mad, p.cutoff = _cutoff([r.img_s for r in runs], th)
        populations.append(p)
        if p.cutoff is None:
            continue
        p.slow = [r for r in runs if r.img_s < p.cutoff]
        slow_ids = {id(r) for r in p.slow}
        peers = [r.worker for r in runs if id(r) not in slow_ids][:64]
        for r in p.slow:
            cause = likely_cause(r.worker, mode, peers, th.allowed_reasons)
            findings.append(
                _fail(
                    "outlier",
                    r.host,
                    f"fleet.outlier.{mode}",
                    f"{r.gpu}: {_MODE.get(mode, mode)} throughput",
                    observed=f"{r.img_s:,.0f} img/s",
                    expected=f">= {p.cutoff:,.0f} img/s",
                    detail=f"{1 - r.img_s / p.median:.0%} below the median {p.median:,.0f} img/s "
                    f"of {len(runs)} "
                    f"{model} GPUs; likely cause: {cause}; host: {_health_text(by_host[r.host])}",
                )
            )
        findings += _host_outliers(runs, model, mode, th)
    return populations, findings


def _host_outliers(runs: list[GpuRun], model: str, mode: str, th: Thresholds) -> list[Finding]:
    """Hosts of several GPUs whose mean per-GPU throughput is an outlier among such hosts."""
    per_host: dict[str, list[float]] = defaultdict(list)
    for r in runs:
        per_host[r.host].append(r.img_s)
    means = {h: statistics.fmean(v) for h, v in per_host.items() if len(v) > 1}
    if not means:
        return []
    med, _mad, cut = _cutoff(list(means.values()), th)
    return [
        _fail(
            "outlier",
            h,
            f"fleet.outlier.host.{mode}",
            f"host {_MODE.get(mode, mode)} throughput",
            observed=f"{m:,.0f} img/s per GPU",
            expected=f">= {cut:,.0f} img/s per GPU",
            detail=f"{1 - m / med:.0%} below the median host ({med:,.0f} img/s per GPU) of {len(means)} "
            f"{model} hosts",
        )
        for h, m in means.items()
        if cut is not None and m < cut
    ]


def _health(f: HostFacts) -> list[Finding]:
    out = []
    if f.xid:
        codes = Counter(e.get("xid") for e in f.xid)
        hard = {c for c in codes if c not in APP_XIDS}
        first = next(e for e in f.xid if e.get("xid") in (hard or codes))
        out.append(
            _fail(
                "health",
                f.name,
                "fleet.xid",
                "XID errors",
                Status.FAIL if hard else Status.WARN,
                observed=", ".join(f"XID {c} x{n}" for c, n in sorted(codes.items(), key=str)),
                expected="none",
                detail=f"{len(f.xid)} XID event(s) in the kernel log since boot; e.g. {first.get('pci')}: "
                f"XID {first.get('xid')} {str(first.get('text') or '')[:120]}".rstrip(),
            )
        )
    for gpu, (vol, agg) in f.ecc.items():
        out.append(
            _fail(
                "health",
                f.name,
                "fleet.ecc",
                f"{gpu}: uncorrected ECC errors",
                Status.FAIL if vol else Status.WARN,
                observed=f"{vol} since boot, {agg} lifetime",
                expected="0",
                detail="uncorrected ECC errors since the driver loaded" if vol else "lifetime count only",
            )
        )
    return out


def _missing(h: HostFacts) -> list[Finding]:
    if h.unreachable is not None:
        return [
            _fail(
                "unreachable",
                h.name,
                "fleet.unreachable",
                "host reachable",
                observed="unreachable",
                expected="reachable",
                detail=h.unreachable,
            )
        ]
    out = []
    if not h.has_check:
        rc = h.status.get("check_rc")
        why = [*h.problems] or [f"{h.path / 'check.json'}: missing"]
        if rc is not None:
            why.append(f"`dlverify check` exited {rc}: {str(h.status.get('check_stderr') or '')[:200]}")
        out.append(
            _fail(
                "no_result",
                h.name,
                "fleet.no_result",
                "check result",
                observed="none",
                expected="check.json",
                detail="; ".join(why).strip("; :"),
            )
        )
    else:
        for p in h.problems:
            out.append(_fail("no_result", h.name, "fleet.input", "result file", Status.WARN, detail=p))
        if not h.has_snapshot and not any("snapshot.json" in p for p in h.problems):
            out.append(
                _fail(
                    "no_result",
                    h.name,
                    "fleet.input",
                    "snapshot",
                    Status.WARN,
                    detail=f"{h.path / 'snapshot.json'}: missing: versions, ECC and XID not compared",
                )
            )
    return out


def _state(h: HostFacts, mine: list[Finding]) -> str:
    if h.unreachable is not None:
        return "unreachable"
    if any(x.section == "no_result" and x.result.status is Status.FAIL for x in mine):
        return "no_result"
    return "failing" if any(x.result.status is Status.FAIL for x in mine) else "ok"


def analyze(fleet: FleetInput, th: Thresholds | None = None, jobs: int | None = None) -> FleetReport:
    th = th or Thresholds()
    facts = load_hosts(fleet.hosts, jobs)
    findings: list[Finding] = []
    judged = [f for f in facts if f.unreachable is None and (f.has_check or f.has_snapshot or f.has_bench)]
    for f in facts:
        findings += _missing(f)
    for f in judged:
        findings += [
            _fail(
                "failing",
                f.name,
                r["id"],
                f"{r.get('group', '?')}: {r.get('name') or r['id']}",
                observed=r.get("observed"),
                expected=r.get("expected"),
                detail=str(r.get("detail") or "failed"),
            )
            for r in f.failed
        ]
        findings += _health(f)
    groups: dict[str, list[HostFacts]] = defaultdict(list)
    for f in judged:
        groups[group_key(f)].append(f)
    findings += _drift(groups)
    populations, slow = _outliers(judged, th)
    findings += slow
    findings += [
        _fail("input", "DIR", "fleet.input", "folder entry", Status.WARN, detail=p) for p in fleet.problems
    ]
    mine: dict[str, list[Finding]] = defaultdict(list)
    for x in findings:
        mine[x.host].append(x)
    state = {f.name: _state(f, mine[f.name]) for f in facts}
    order = list(SECTIONS)
    findings.sort(key=lambda x: (order.index(x.section), x.host))
    return FleetReport(
        str(fleet.root),
        th,
        facts,
        state,
        {k: [f.name for f in v] for k, v in sorted(groups.items())},
        findings,
        populations,
        [*fleet.problems, *(p for f in facts for p in f.problems)],
    )


def exit_code(report: FleetReport) -> int:
    return 1 if any(x.result.status is Status.FAIL for x in report.findings) else 0
