"""`dlverify bench`: ResNet18 training and inference on every GPU at once, with telemetry and judgement.

Wiring only: the benchmark lives in :mod:`dlverify.benchmarks` (runner, worker, recipe, sampler, judge).
Exit codes as `dlverify check`: 0 no failure, 1 a failure, 2 bad usage / bad input / no GPU; 130/143/129
after Ctrl-C/SIGTERM/SIGHUP, once the partial report is written.
"""

from __future__ import annotations

import argparse
import dataclasses
import io
import json
import signal
import sys
from pathlib import Path
from typing import Any

from dlverify.output import load_spec_or_report, write_output
from dlverify.results import EXIT_USAGE, CheckResult, exit_code

FORMATS = ("table", "json", "junit", "prometheus")


def register(sub: argparse._SubParsersAction) -> None:
    from dlverify.benchmarks.config import COMPILE_MODES, PRECISIONS

    p = sub.add_parser(
        "bench",
        help="run ResNet18 training and inference on every GPU and judge the throughput",
        description="Run torchvision's ResNet18 (training and inference, synthetic data) on every GPU at "
        "once, one process per GPU, sample clocks/power/heat through NVML, and judge each GPU "
        "against its card's reference, the node's median (stragglers) and the spec's floors.",
    )
    p.add_argument(
        "--gpus", default="all", help="'all' (default) or NVML indices as nvidia-smi numbers them, e.g. '0,2'"
    )
    p.add_argument("--mode", choices=("both", "train", "infer"), default="both")
    p.add_argument(
        "--suite",
        default="resnet18",
        metavar="LIST",
        help="comma-separated: resnet18 (default), h2d (pinned host<->device, both directions), hbm (device "
        "copy), matmul (bf16 TFLOP/s), allreduce (all-reduce and all-gather busbw), p2p (pairwise matrix); "
        "or 'all'",
    )
    p.add_argument(
        "--precision",
        choices=PRECISIONS,
        default="auto",
        help="auto: fp16 weights for inference, bf16 autocast for training (fp32 on --device cpu)",
    )
    p.add_argument("--sequential", action="store_true", help="one GPU after another instead of all at once")
    p.add_argument(
        "--duration",
        type=float,
        metavar="S",
        help="timed seconds per mode, after warm-up and compilation (default 10; 1 on cpu)",
    )
    p.add_argument(
        "--batch-size",
        type=int,
        metavar="N",
        help="batch for both modes (default 1024; the default is halved on out-of-memory)",
    )
    p.add_argument("--image-size", type=int, metavar="PX", help="image side (default 224; 64 on cpu)")
    p.add_argument(
        "--compile",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="torch.compile the model (default: on for cuda, off for cpu)",
    )
    p.add_argument(
        "--compile-mode",
        choices=COMPILE_MODES,
        default="default",
        help="torch.compile mode for inference (reduce-overhead: CUDA graphs)",
    )
    p.add_argument(
        "--train-compile-mode",
        choices=COMPILE_MODES,
        default="default",
        help="torch.compile mode for training",
    )
    p.add_argument(
        "--no-freezing",
        dest="freezing",
        action="store_false",
        help="no inductor freezing (BN folding) for inference",
    )
    p.add_argument(
        "--device",
        choices=("cuda", "cpu"),
        default="cuda",
        help="cpu: the same code on the CPU with tiny sizes (tests, smoke runs)",
    )
    p.add_argument(
        "--no-telemetry",
        dest="telemetry",
        action="store_false",
        help="do not sample NVML (to measure the sampler's cost)",
    )
    p.add_argument(
        "--timeout",
        type=float,
        default=600.0,
        metavar="S",
        help="seconds per worker's whole life before it is killed and reported as hung (default 600)",
    )
    p.add_argument(
        "--watchdog-slack",
        type=float,
        metavar="S",
        help="seconds each phase may run beyond the limit derived from its settings before its worker is "
        "killed as hung (default 60; 10 on cpu)",
    )
    p.add_argument(
        "--soak",
        metavar="DURATION",
        help="after the timed windows, keep the first mode's load going this long (600, 90s, 10m, 1h) and "
        "judge its stability per window (spec: bench.soak_*)",
    )
    p.add_argument("--spec", metavar="SPEC", help="hwspec.yaml: bench floors and tolerances")
    p.add_argument(
        "--replay",
        metavar="FILE",
        help="judge a recorded run (a `--format json` report, or its meta.bench) instead of running",
    )
    p.add_argument(
        "--format",
        choices=FORMATS,
        default="table",
        help="prometheus: node_exporter textfile (per-GPU images/s, bandwidth, TFLOP/s; gpu/UUID labels)",
    )
    p.add_argument(
        "-o",
        "--output",
        metavar="FILE",
        help="write the report here instead of stdout (atomically: temp + rename)",
    )
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bars")
    p.set_defaults(func=_run)


def _err(msg: str) -> int:
    print(f"dlverify bench: {msg}", file=sys.stderr)
    return EXIT_USAGE


def _config(args: argparse.Namespace) -> Any:
    from dlverify.benchmarks.config import MODES, BenchConfig, parse_suites
    from dlverify.benchmarks.soak import parse_duration

    return BenchConfig(
        device=args.device,
        suites=parse_suites(args.suite),
        modes=MODES if args.mode == "both" else (args.mode,),
        precision=args.precision,
        train_batch=args.batch_size,
        infer_batch=args.batch_size,
        batch_forced=args.batch_size is not None,
        image_size=args.image_size,
        duration_s=args.duration,
        compile=args.compile,
        compile_mode_infer=args.compile_mode,
        compile_mode_train=args.train_compile_mode,
        freezing=args.freezing,
        telemetry=args.telemetry,
        watchdog_slack_s=args.watchdog_slack,
        soak_s=parse_duration(args.soak) if args.soak else None,
    )


def _load_record(path: str) -> dict[str, Any]:
    doc = json.loads(Path(path).read_text(encoding="utf-8"))
    if isinstance(doc, dict) and isinstance(doc.get("meta"), dict) and "bench" in doc["meta"]:
        doc = doc["meta"]["bench"]
    from dlverify.benchmarks.runner import RECORD_SCHEMA

    if not isinstance(doc, dict) or doc.get("schema") != RECORD_SCHEMA:
        raise ValueError(
            f"{path}: not a recorded bench run (expected schema {RECORD_SCHEMA!r} "
            "or a `dlverify bench --format json` report)"
        )
    return doc


def _validate(args: argparse.Namespace) -> str | None:
    if args.duration is not None and args.duration <= 0:
        return "--duration must be > 0 seconds"
    if args.batch_size is not None and args.batch_size < 1:
        return "--batch-size must be >= 1"
    if args.image_size is not None and args.image_size < 32:
        return "--image-size must be >= 32 (ResNet18 downsamples 32x)"
    if args.timeout <= 0:
        return "--timeout must be > 0 seconds"
    if args.watchdog_slack is not None and args.watchdog_slack < 0:
        return "--watchdog-slack must be >= 0 seconds"
    if args.soak is not None:
        from dlverify.benchmarks.soak import parse_duration

        try:
            parse_duration(args.soak)
        except ValueError as exc:
            return str(exc)
    from dlverify.benchmarks.config import parse_suites

    try:
        parse_suites(args.suite)
    except ValueError as exc:
        return str(exc)
    return None


def _run(args: argparse.Namespace) -> int:
    from dlverify.benchmarks import judge as judge_mod
    from dlverify.benchmarks import runner
    from dlverify.hwspec.model import ChecksSpec

    problem = _validate(args)
    if problem:
        return _err(problem)

    bench_spec = None
    allowed = ChecksSpec().allowed_clock_event_reasons
    if args.spec:
        spec = load_spec_or_report(args.spec)  # names file, line, column and key
        if spec is None:
            return EXIT_USAGE
        bench_spec = spec.bench
        allowed = spec.checks.allowed_clock_event_reasons

    interrupted = 0
    if args.replay:
        try:
            record = _load_record(args.replay)
        except (OSError, ValueError) as exc:
            return _err(f"cannot replay: {exc}")
    else:
        cfg = _config(args)
        if cfg.soak_s and args.spec and "bench.soak_window_s" in spec.locations:
            cfg = dataclasses.replace(cfg, soak_window_s=spec.bench.soak_window_s)
        try:
            if cfg.device == "cuda":
                slots = runner.discover_gpus(args.gpus)
                why = runner.torch_cuda_problem()
                if why:
                    raise runner.NoGpuError(f"no GPU to benchmark: {why}")
            else:
                slots = runner.cpu_slots(args.gpus)
                why = runner.torch_problem()
                if why:
                    return _err(f"cannot benchmark on the CPU: {why}")
        except runner.NoGpuError as exc:
            return _err(f"{exc} (use --device cpu for a CPU-only smoke run)")
        except runner.GpuSelectionError as exc:
            return _err(str(exc))
        from dlverify.benchmarks.progress import ProgressView

        res = cfg.resolved()
        with ProgressView(
            slots, res.timed_modes, float(res.duration_s or 0), enabled=False if args.quiet else None
        ) as view:
            try:
                record = runner.run_bench(
                    slots, cfg, sequential=args.sequential, timeout_s=args.timeout, on_event=view
                )
            except runner.Interrupted as exc:  # every worker is stopped: report what finished
                record, interrupted = exc.record, exc.signum

    try:
        references = judge_mod.load_references()
    except (OSError, ValueError) as exc:
        return _err(f"bad reference data: {exc}")
    results = judge_mod.judge(record, references=references, bench_spec=bench_spec, allowed_reasons=allowed)
    text = _render(results, record, args.format)
    if not write_output(text, args.output):
        return EXIT_USAGE
    if interrupted:
        where = args.output or "stdout"
        print(
            f"dlverify: interrupted by {signal.Signals(interrupted).name}: partial report on {where}",
            file=sys.stderr,
        )
        return 128 + interrupted
    return exit_code(results)


def _render(results: list[CheckResult], record: dict[str, Any], fmt: str) -> str:
    from dlverify.report import render

    title = "dlverify bench"
    if fmt == "prometheus":
        from dlverify.metrics_bench import render_bench_prometheus

        return render_bench_prometheus(results, record)
    if fmt == "table":
        tables = summary_table(record) + suites_table(record)
        return tables + render(results, fmt, command="bench", title=title)
    return render(results, fmt, command="bench", title=title, meta={"bench": record})


def summary_table(record: dict[str, Any]) -> str:
    """Per-GPU throughput at a glance, above the judged results."""
    from rich.console import Console
    from rich.table import Table

    buf = io.StringIO()
    console = Console(file=buf, width=120, highlight=False)
    cfg = record.get("config") or {}
    modes = cfg.get("modes", ["train", "infer"]) if "resnet18" in cfg.get("suites", ["resnet18"]) else []
    if not modes:
        return ""
    t = Table(title="ResNet18 images/s per GPU (median, spread)")
    t.add_column("GPU")
    t.add_column("card")
    for m in modes:
        t.add_column(f"{m} img/s", justify="right")
    t.add_column("SM MHz / W / C", justify="right")
    t.add_column("status")
    for w in record.get("workers") or []:
        res = w.get("result") or {}
        cells = []
        for m in modes:
            r = (res.get("modes") or {}).get(m)
            if not r:
                cells.append("-")
            else:
                flag = "" if (r.get("guard") or {}).get("ok") else " (broken)"
                cells.append(f"{r['img_s']:,.0f} ±{r.get('spread_pct', 0):.1f}%{flag}")
        tele = (w.get("telemetry") or {}).get("run") or {}

        def med(k: str, agg: str = "median", tele: dict = tele) -> str:
            v = tele.get(k)
            return f"{v[agg]:.0f}" if isinstance(v, dict) else "-"

        status = "ok" if w.get("status") == "ok" else (w.get("failure") or {}).get("kind", "failed")
        t.add_row(
            w.get("label", "?"),
            str(res.get("name") or w.get("name") or "?"),
            *cells,
            f"{med('sm_clock_mhz')} / {med('power_w', 'max')} / {med('temperature_c', 'max')}",
            status,
        )
    console.print(t)
    return buf.getvalue()


def suites_table(record: dict[str, Any]) -> str:
    """The bandwidth suites per GPU, and the collectives, when the run had them."""
    from rich.console import Console
    from rich.table import Table

    keys = [("h2d", "h2d GB/s"), ("d2h", "d2h GB/s"), ("hbm", "HBM GB/s"), ("matmul", "matmul TFLOP/s")]
    workers = record.get("workers") or []
    measured = {k for w in workers for k in ((w.get("result") or {}).get("suites") or {})}
    present = [(k, t) for k, t in keys if k in measured]
    coll = record.get("collectives") or {}
    if not present and not coll:
        return ""
    buf = io.StringIO()
    console = Console(file=buf, width=120, highlight=False)
    if present:
        t = Table(title="bandwidth suites per GPU (median)")
        t.add_column("GPU")
        for _, title in present:
            t.add_column(title, justify="right")
        for w in workers:
            s = (w.get("result") or {}).get("suites") or {}
            cells = [f"{s[k]['value']:,.1f}" if "value" in (s.get(k) or {}) else "-" for k, _ in present]
            t.add_row(w.get("label", "?"), *cells)
        console.print(t)
    for op in ("allreduce", "allgather"):
        if "busbw_gb_s" in (coll.get(op) or {}):
            console.print(
                f"{op} busbw {coll[op]['busbw_gb_s']:,.1f} GB/s over {coll.get('world_size')} "
                f"ranks ({coll.get('backend')})"
            )
    m = (coll.get("p2p") or {}).get("gb_s")
    if m:
        labels = coll.get("ranks") or []
        t = Table(title="peer-to-peer GB/s (row: sender, column: receiver)")
        t.add_column("")
        for lab in labels:
            t.add_column(lab, justify="right")
        for i, row in enumerate(m):
            t.add_row(labels[i], *("-" if i == j else f"{v:,.1f}" for j, v in enumerate(row)))
        console.print(t)
    return buf.getvalue()
