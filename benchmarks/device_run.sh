#!/usr/bin/env bash
# One device run for issue 5: `dlverify bench` and the hand-written reference recipes on the same GPU,
# in the same run, so the ratios mean something. Run once on a GPU machine from the repo root:
#
#     OUT=/some/dir bash benchmarks/device_run.sh        # (the device tool sets $OUT)
#
# Needs python3 with torch, torchvision and nvidia-ml-py (pynvml) on the machine; no network, no pip:
# the dlverify package is staged from this working tree onto PYTHONPATH. Self-limits to BUDGET_S
# seconds (default 520) and skips the remaining variants when time runs short.
# BENCH_EXTRA="--device cpu --image-size 32 --batch-size 2 --duration 0.2" dry-runs the plumbing on a CPU
# (the reference script then fails for want of CUDA, which the run survives).
# Writes at most 7 files to $OUT:
#   device_run.log   everything printed
#   bench_cold.json  `dlverify bench --gpus all` with an empty compile cache (report, meta.bench = record)
#   bench_warm.json  the same again: the compile cache warm (the <= 60 s wall goal is judged on this one)
#   baseline.json    benchmarks/device/reference_resnet18.py (the hand-written recipes), same card
#   variants.json    {name: report}: reduce-overhead inference, --no-telemetry, other batches, max-autotune
#   timings.json     wall seconds and exit code of each step
#   summary.json     ratios vs the best reference recipe, goals met or not (benchmarks/device/summarize.py)
set -u
OUT=${OUT:?set OUT to a directory for the results}
PY=${PYTHON:-python3}
BUDGET_S=${BUDGET_S:-520}
REPO=$(cd "$(dirname "$0")/.." && pwd)
T0=$(date +%s)
mkdir -p "$OUT"
exec > >(tee -a "$OUT/device_run.log") 2>&1

# -- stage the package from this working tree; elapsed, left, say (benchmarks/device/stage.sh) -------
. "$REPO/benchmarks/device/stage.sh"
# a fresh, known compile cache: the first run is cold by construction, the second warm
export XDG_CACHE_HOME="$STAGE/cache"
WORK="$STAGE/work"
mkdir -p "$WORK/variants"
TIMES="$WORK/times.txt"
: >"$TIMES"

nvidia-smi -L || true
"$PY" - <<'EOF' || { echo "python environment not usable for dlverify bench"; exit 3; }
import sys, torch, torchvision, pynvml
import dlverify.benchmarks.runner, dlverify.benchmarks.judge
print("python", sys.version.split()[0], "torch", torch.__version__, "cuda", torch.version.cuda,
      "cudnn", torch.backends.cudnn.version(), "torchvision", torchvision.__version__,
      "cuda available", torch.cuda.is_available())
EOF

# `dlverify bench` without the rest of the CLI (whose other commands need packages the GPU box may lack)
BENCH_MAIN='import argparse, sys
from dlverify import cmd_bench
p = argparse.ArgumentParser(prog="dlverify")
cmd_bench.register(p.add_subparsers())
a = p.parse_args(["bench", *sys.argv[1:]])
sys.exit(a.func(a))'

# bench NAME OUTFILE LIMIT_S ARGS... : one `dlverify bench` invocation, timed
bench() {
  local name=$1 file=$2 limit=$3
  shift 3
  say "bench $name: $*"
  local t0 rc
  t0=$(date +%s%N)
  timeout -k 15 "$limit" "$PY" -c "$BENCH_MAIN" --gpus all --format json -q -o "$file" \
    --timeout "$limit" "$@" ${BENCH_EXTRA:-}
  rc=$?
  echo "$name $(( ($(date +%s%N) - t0) / 1000000 )) $rc" >>"$TIMES"
  say "bench $name: exit $rc"
}

# PLAN=full (default): the product cold and warm, the reference, then variants.
# PLAN=train: the reference, then training variants only (batch and CUDA-graph sweep), for tuning.
PLAN=${PLAN:-full}

# 1-2: the product, cold then warm (both modes, defaults: what a user runs)
if [ "$PLAN" = full ]; then
  bench bench_cold "$OUT/bench_cold.json" 300
  bench bench_warm "$OUT/bench_warm.json" 200
fi

# 3: the reference recipes, same card, same run
if [ "$(left)" -gt 150 ]; then
  say "reference_resnet18.py"
  t0=$(date +%s%N)
  OUT="$WORK/ref" timeout -k 15 $(( $(left) - 100 )) "$PY" "$REPO/benchmarks/device/reference_resnet18.py"
  rc=$?
  echo "reference $(( ($(date +%s%N) - t0) / 1000000 )) $rc" >>"$TIMES"
  cp "$WORK/ref/baseline.json" "$OUT/baseline.json" 2>/dev/null || true
else
  say "skipped the reference: too little time left"
fi

# 4: variants, most informative first, while time lasts (each: cost estimate in seconds)
variant() {
  local name=$1 cost=$2
  shift 2
  if [ "$(left)" -lt "$cost" ]; then
    say "skipped variant $name: $(left) s left, needs ~$cost s"
    return
  fi
  bench "$name" "$WORK/variants/$name.json" $(( $(left) - 5 )) "$@"
}
if [ "$PLAN" = train ]; then
  variant train_bs512 60 --mode train --batch-size 512
  variant train_bs1024 60 --mode train --batch-size 1024
  variant train_bs512_reduce_overhead 60 --mode train --batch-size 512 --train-compile-mode reduce-overhead
  variant train_bs768 60 --mode train --batch-size 768
fi
[ "$PLAN" = full ] && variant infer_reduce_overhead 50 --mode infer --duration 5 --compile-mode reduce-overhead
[ "$PLAN" = full ] && variant no_telemetry 45 --no-telemetry
[ "$PLAN" = full ] && variant train_bs512 50 --mode train --duration 5 --batch-size 512
[ "$PLAN" = full ] && variant infer_bs2048 45 --mode infer --duration 5 --batch-size 2048
[ "$PLAN" = full ] && variant infer_bs512 45 --mode infer --duration 5 --batch-size 512
[ "$PLAN" = full ] && variant train_reduce_overhead 60 --mode train --duration 5 --train-compile-mode reduce-overhead
[ "$PLAN" = full ] && variant infer_max_autotune 120 --mode infer --duration 5 --compile-mode max-autotune-no-cudagraphs

# -- collect -------------------------------------------------------------------------------------------
"$PY" - "$WORK" "$OUT" <<'EOF'
import json, pathlib, sys
work, out = pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2])
variants = {}
for p in sorted((work / "variants").glob("*.json")):
    try:
        variants[p.stem] = json.loads(p.read_text())
    except ValueError as exc:
        variants[p.stem] = {"error": str(exc)}
(out / "variants.json").write_text(json.dumps(variants, indent=1) + "\n")
times = {}
for line in (work / "times.txt").read_text().splitlines():
    name, ms, rc = line.split()
    times[name] = int(ms) / 1000
    times[name + "_exit"] = int(rc)
(out / "timings.json").write_text(json.dumps(times, indent=1) + "\n")
EOF
"$PY" "$REPO/benchmarks/device/summarize.py" "$OUT"
say "done"
