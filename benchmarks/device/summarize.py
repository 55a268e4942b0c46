"""Turn one device run's files into summary.json and a markdown block for benchmarks/results/.

Usage: python3 summarize.py OUTDIR   (reads OUTDIR/{baseline,bench_cold,bench_warm,variants}.json)

Ratios are dlverify bench's median images/s over the best hand-written recipe of reference_resnet18.py,
measured on the same card in the same run; the goal (issue 5) is >= 1.5x inference, >= 1.15x training.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

GOAL = {"infer": 1.5, "train": 1.15}
WALL_GOAL_S = 60.0


def _load(path: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def _modes(report: dict[str, Any] | None) -> dict[str, dict[str, Any]]:
    """mode -> the first GPU's result for it (a device run has one GPU)."""
    if not report:
        return {}
    workers = report.get("meta", {}).get("bench", {}).get("workers", [])
    for w in workers:
        if w.get("status") == "ok":
            return w["result"]["modes"]
    return {}


def _best_ref(baseline: dict[str, Any] | None, mode: str) -> tuple[str, float] | None:
    if not baseline:
        return None
    runs = {
        k: v
        for k, v in baseline.get("resnet18", {}).items()
        if k.startswith(mode + "_") and isinstance(v, dict) and "img_s" in v
    }
    if not runs:
        return None
    name = max(runs, key=lambda k: runs[k]["img_s"])
    return name, runs[name]["img_s"]


def main(out: Path) -> dict[str, Any]:
    baseline = _load(out / "baseline.json")
    cold, warm = _load(out / "bench_cold.json"), _load(out / "bench_warm.json")
    variants = _load(out / "variants.json") or {}
    timings = _load(out / "timings.json") or {}
    summary: dict[str, Any] = {
        "card": (baseline or {}).get("nvidia_smi_L", "").strip(),
        "torch": (baseline or {}).get("torch"),
        "cuda": (baseline or {}).get("torch_cuda"),
        "cudnn": (baseline or {}).get("cudnn"),
        "wall_s": timings,
        "modes": {},
        "variants": {},
    }
    ours = _modes(warm) or _modes(cold)
    for mode in ("infer", "train"):
        ref = _best_ref(baseline, mode)
        m = ours.get(mode)
        row: dict[str, Any] = {"reference_best": ref and {"recipe": ref[0], "img_s": ref[1]}}
        if m:
            row.update(
                img_s=m["img_s"],
                spread_pct=m.get("spread_pct"),
                batch=m.get("batch_size"),
                precision=m.get("precision"),
                recipe=m.get("recipe"),
                compile_s=m.get("compile_s"),
                guard=m.get("guard", {}).get("ok"),
            )
            if ref:
                row["ratio"] = m["img_s"] / ref[1]
                row["goal"] = GOAL[mode]
                row["goal_met"] = row["ratio"] >= GOAL[mode]
        summary["modes"][mode] = row
    for name, rep in variants.items():
        summary["variants"][name] = {}
        for mode, v in _modes(rep).items():
            ref = _best_ref(baseline, mode)
            summary["variants"][name][mode] = {
                "img_s": v.get("img_s"),
                "batch": v.get("batch_size"),
                "recipe": v.get("recipe"),
                "compile_s": v.get("compile_s"),
                "spread_pct": v.get("spread_pct"),
                "ratio": v["img_s"] / ref[1] if ref else None,
            }
    warm_wall = timings.get("bench_warm")
    summary["wall_goal_met"] = warm_wall is not None and warm_wall <= WALL_GOAL_S
    if warm and "no_telemetry" in variants:
        a, b = _modes(warm), _modes(variants["no_telemetry"])
        summary["sampler_cost_pct"] = {
            mode: 100.0 * (1 - a[mode]["img_s"] / b[mode]["img_s"]) for mode in a if mode in b
        }
        sampler = warm.get("meta", {}).get("bench", {}).get("sampler") or {}
        summary["sampler_cpu_ms_per_sweep"] = sampler.get("cpu_ms_per_sweep")
    (out / "summary.json").write_text(json.dumps(summary, indent=1) + "\n")
    print(markdown(summary))
    return summary


def markdown(s: dict[str, Any]) -> str:
    lines = [
        f"card: {s['card']}; torch {s['torch']} (CUDA {s['cuda']}, cuDNN {s['cudnn']})",
        "",
        "| mode | dlverify bench img/s | best reference recipe | ratio | goal |",
        "| --- | --- | --- | --- | --- |",
    ]
    for mode, r in s["modes"].items():
        ref = r.get("reference_best") or {}
        ratio = f"{r['ratio']:.2f}x" if "ratio" in r else "-"
        ours = f"{r['img_s']:,.0f} (batch {r.get('batch')}, {r.get('precision')})" if "img_s" in r else "-"
        refs = f"{ref.get('img_s', 0):,.0f} ({ref.get('recipe')})" if ref else "-"
        met = "" if "goal" not in r else ("met" if r["goal_met"] else f"missed (>= {r['goal']}x)")
        lines.append(f"| {mode} | {ours} | {refs} | {ratio} | {met} |")
    for name, modes in s["variants"].items():
        for mode, v in modes.items():
            ratio = f"{v['ratio']:.3f}x" if v.get("ratio") else "-"
            ours = f"{v['img_s']:,.0f} (batch {v['batch']})"
            lines.append(f"| {mode} (variant {name}) | {ours} | | {ratio} | |")
    lines.append("")
    lines.append(f"wall (s): {json.dumps(s['wall_s'])}; <= 60 s warm: {s['wall_goal_met']}")
    if "sampler_cost_pct" in s:
        lines.append(
            f"sampler cost (throughput lost vs --no-telemetry, %): {s['sampler_cost_pct']}; "
            f"CPU per sweep {s.get('sampler_cpu_ms_per_sweep')} ms"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    main(Path(sys.argv[1] if len(sys.argv) > 1 else "."))
