# shellcheck shell=bash
# Sourced by the GPU-machine scripts (benchmarks/device_run.sh, benchmarks/device/check_run.sh): puts the
# dlverify package of this working tree on PYTHONPATH exactly as pyproject.toml maps it (dlverify = verify/,
# dlverify.hwspec = hwspec/, dlverify.benchmarks = benchmarks/), because that machine has no network and no pip.
# Needs REPO (the repo root), PY (the python to use), T0 (start, epoch s) and BUDGET_S; sets STAGE (a fresh
# temporary folder) and defines elapsed / left (seconds since T0 / left of BUDGET_S) and say (a timed line).
elapsed() { echo $(( $(date +%s) - T0 )); }
left() { echo $(( BUDGET_S - $(elapsed) )); }
say() { echo "[$(printf '%4d' "$(elapsed)")s] $*"; }
STAGE=$(mktemp -d)
cp -r "$REPO/verify" "$STAGE/dlverify"
ln -s "$REPO/hwspec" "$STAGE/dlverify/hwspec"
ln -s "$REPO/benchmarks" "$STAGE/dlverify/benchmarks"
export PYTHONPATH="$STAGE${PYTHONPATH:+:$PYTHONPATH}"
# pure-Python fallbacks for what the machine's python may lack (pyyaml for dlverify.hwspec, nvidia-ml-py):
# a caller may carry them in .cache/devpy (the device tool's `carry`); used only where missing
for mod in yaml pynvml; do
  if ! "$PY" -c "import $mod" 2>/dev/null && [ -e "$REPO/.cache/devpy/$mod" -o -e "$REPO/.cache/devpy/$mod.py" ]; then
    mkdir -p "$STAGE/fallback"
    cp -r "$REPO/.cache/devpy/$mod"* "$STAGE/fallback/"
    export PYTHONPATH="$PYTHONPATH:$STAGE/fallback"
    echo "using the carried $mod"
  fi
done
