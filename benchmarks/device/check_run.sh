#!/usr/bin/env bash
# One GPU-machine run for issue 2: `dlverify check` and `dlverify snapshot` on a real card, every value the
# NVML probe reports compared with `nvidia-smi -q -x` on the same card, and the verifier's speed measured.
# Run once on a GPU machine from the repo root:
#
#     OUT=/some/dir bash benchmarks/device/check_run.sh          # (the device tool sets $OUT)
#
# SPEC (default hwspec/examples/h200.yaml) is the spec judged. BENCH=1 adds, while BUDGET_S (default 270 s)
# lasts, one default `dlverify bench --gpus all` with an empty compile cache and one warm. Needs python3
# with pynvml, psutil, rich and pyyaml (torch for the env probe and the bench); no network, no pip: the
# package is staged from this working tree (benchmarks/device/stage.sh). Survives every step failing.
# Writes at most 8 files to $OUT (the device tool's limit):
#   check_run.log       everything printed, the check's table included
#   nvidia-smi-q.xml    `nvidia-smi -q -x`, the independent witness
#   snapshot.json       `dlverify snapshot --spec SPEC` (dlverify.snapshot/1)
#   check.json          `dlverify check SPEC --format json` (dlverify.report/1), the last warm run
#   smi-compare.json    `python -m dlverify.probes.smi`: NVML vs nvidia-smi, field by field
#   timings.json        wall ms and exit code of each step, and the in-process probe timings
#   bench_cold.json, bench_warm.json   with BENCH=1
#   bench_suites.json   with SUITES=1 (issue 12's bandwidth suites on every GPU; on one card the collectives
#                       are skipped); SUITES=1 with BENCH=1 would be 9 files: BENCH wins, SUITES is skipped
set -u
OUT=${OUT:?set OUT to a directory for the results}
PY=${PYTHON:-python3}
BUDGET_S=${BUDGET_S:-270}
REPO=$(cd "$(dirname "$0")/../.." && pwd)
SPEC=${SPEC:-$REPO/hwspec/examples/h200.yaml}
T0=$(date +%s)
mkdir -p "$OUT"
exec > >(tee -a "$OUT/check_run.log") 2>&1

. "$REPO/benchmarks/device/stage.sh"   # the package on PYTHONPATH; elapsed, left, say
export XDG_CACHE_HOME="$STAGE/cache"   # a known, empty compile cache for the bench's cold run
WORK="$STAGE/work"
mkdir -p "$WORK"
TIMES="$WORK/times.txt"
: >"$TIMES"

# step NAME LIMIT_S CMD...: run CMD with a time limit, log its wall ms and exit code
step() {
  local name=$1 limit=$2 t0 rc
  shift 2
  say "$name: $*"
  t0=$(date +%s%N)
  timeout -k 5 "$limit" "$@"
  rc=$?
  echo "$name $(( ($(date +%s%N) - t0) / 1000000 )) $rc" >>"$TIMES"
  say "$name: exit $rc"
}
DLV=("$PY" -m dlverify.cli)

uname -a
nvidia-smi -L || true
"$PY" -c 'import sys, pynvml, psutil, rich, yaml; print("python", sys.version.split()[0], "pynvml ok")' \
  || say "the machine's python lacks a dlverify dependency: the steps below will say which"

# 1. the witness first, before our probes touch anything
step smi_xml 60 sh -c "nvidia-smi -q -x >'$OUT/nvidia-smi-q.xml'"

# 2. a snapshot, then the check: once cold (first NVML init, first `import torch` in the env), three warm
step snapshot 60 "${DLV[@]}" snapshot --spec "$SPEC" -o "$OUT/snapshot.json"
step check_table 60 "${DLV[@]}" check "$SPEC"
for i in 1 2 3; do
  step "check_json_$i" 60 "${DLV[@]}" check "$SPEC" --format json -o "$WORK/check_$i.json"
done
cp "$WORK/check_3.json" "$OUT/check.json" 2>/dev/null || true
for i in 1 2 3; do   # the same without the env's torch probe: what host + NVML cost as a whole process
  step "check_host_gpu_$i" 60 "${DLV[@]}" check "$SPEC" --only host,gpu --format json -o "$WORK/hg_$i.json"
done

# 3. the probes in process: NVML and host together (the <= 0.5 s goal), each alone, first call and warm
step probe_timeit 120 "$PY" - "$WORK/probe_times.json" <<'EOF'
import json, statistics, sys, time
from dlverify.snapshot import take
from dlverify.probes.gpu import probe_nvml
from dlverify.probes.host import probe_host
def timed(fn, n):
    out = []
    for _ in range(n):
        t = time.perf_counter(); fn(); out.append((time.perf_counter() - t) * 1000)
    return out
res = {}
first = timed(lambda: take(only=("host", "gpu"), env=False), 1)[0]
for name, fn in (("host_and_nvml", lambda: take(only=("host", "gpu"), env=False)),
                 ("nvml", probe_nvml), ("host", lambda: probe_host("/"))):
    ms = timed(fn, 20)
    res[name] = {"median_ms": round(statistics.median(ms), 2), "min_ms": round(min(ms), 2),
                 "max_ms": round(max(ms), 2), "n": len(ms)}
res["host_and_nvml"]["first_call_ms"] = round(first, 2)
print(json.dumps(res, indent=1))
open(sys.argv[1], "w").write(json.dumps(res, indent=1) + "\n")
EOF

# 4. every value the NVML probe reports against nvidia-smi, live, on the same card
step smi_compare 60 "$PY" -m dlverify.probes.smi "$OUT/smi-compare.json"

# 5. the snapshot judged offline must give what the live check gave; a spec written from it must pass
step offline_check 60 "${DLV[@]}" check "$SPEC" --snapshot "$OUT/snapshot.json" --format json -o "$WORK/offline.json"
step spec_init 60 "${DLV[@]}" spec init --from-snapshot "$OUT/snapshot.json" -o "$WORK/spec-from-snapshot.yaml"
step spec_init_check 60 "${DLV[@]}" check "$WORK/spec-from-snapshot.yaml" --snapshot "$OUT/snapshot.json"

# 6. optional: the default bench, cold then warm (issue 5's follow-up: the batch-1024 default in a full run)
if [ "${BENCH:-0}" = 1 ]; then
  BENCH_ARGS=(bench --gpus all --format json -q)
  if [ "$(left)" -gt 110 ]; then
    step bench_cold $(( $(left) - 60 )) "${DLV[@]}" "${BENCH_ARGS[@]}" -o "$OUT/bench_cold.json"
  fi
  if [ "$(left)" -gt 70 ]; then
    step bench_warm $(( $(left) - 5 )) "${DLV[@]}" "${BENCH_ARGS[@]}" -o "$OUT/bench_warm.json"
  else
    say "skipped the warm bench: $(left) s left"
  fi
fi

# 7. optional: the bandwidth suites (h2d/d2h, HBM copy, bf16 matmul, all-reduce/all-gather, p2p)
if [ "${SUITES:-0}" = 1 ]; then
  if [ "${BENCH:-0}" = 1 ]; then
    say "skipped the suites: BENCH=1 already uses the last two of the 8 files"
  elif [ "$(left)" -gt 40 ]; then
    step bench_suites $(( $(left) - 5 )) "${DLV[@]}" bench --gpus all --suite h2d,hbm,matmul,allreduce,p2p \
      --format json -q -o "$OUT/bench_suites.json"
  else
    say "skipped the suites: $(left) s left"
  fi
fi

# -- collect -------------------------------------------------------------------------------------------
"$PY" - "$WORK" "$OUT" <<'EOF'
import json, pathlib, sys
work, out = pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2])
steps = {}
for line in (work / "times.txt").read_text().splitlines():
    name, ms, rc = line.split()
    steps[name] = {"wall_ms": int(ms), "exit": int(rc)}
doc = {"steps": steps}
try:
    doc["in_process"] = json.loads((work / "probe_times.json").read_text())
except (OSError, ValueError) as exc:
    doc["in_process"] = {"error": str(exc)}
try:  # the offline judgement of the snapshot vs the live check: same ids and statuses?
    live = {r["id"]: r["status"] for r in json.loads((work / "check_3.json").read_text())["results"]}
    offline = {r["id"]: r["status"] for r in json.loads((work / "offline.json").read_text())["results"]}
    doc["offline_vs_live"] = {
        "same": live == offline,
        "differ": {k: [live.get(k), offline.get(k)] for k in sorted(set(live) | set(offline))
                   if live.get(k) != offline.get(k)},
    }
except (OSError, ValueError, KeyError) as exc:
    doc["offline_vs_live"] = {"error": str(exc)}
(out / "timings.json").write_text(json.dumps(doc, indent=1) + "\n")
print(json.dumps(doc, indent=1))
EOF
say "done"
