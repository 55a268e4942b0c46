#!/usr/bin/env bash
# Run Molecule scenarios on real systemd test hosts (podman), with the offline signed mirror up.
#
# Usage: tools/harness/molecule-run.sh [-j N] [--keep] [--list | --dry-run] [ROLE | ROLE/SCENARIO | SCENARIO ...]
#   no argument      every scenario: roles/*/molecule/*/ and molecule/*/
#   ROLE             every scenario of roles/ROLE/molecule/
#   ROLE/SCENARIO    roles/ROLE/molecule/SCENARIO
#   SCENARIO         molecule/SCENARIO (repo-level scenario)
#   -j N             run N scenarios side by side (default 1: sequential; output then goes to the logs only)
#   --keep           leave the test hosts running after a scenario (molecule test --destroy=never)
#   --list           print the scenarios that would run, and exit
#   --dry-run        as --list, with each scenario's test-host image, after probing Ubuntu's archive (no root needed)
# Platforms: a scenario named `jammy` or `*-jammy` (molecule/site-jammy) runs on an Ubuntu 22.04 host built from
# Ubuntu's archive; every other one on Debian 12. Ubuntu's archive is not promised: when it does not answer
# (DLV_UBUNTU_MIRROR/dists/jammy/Release, DLV_UBUNTU_PROBE_TIMEOUT seconds), the jammy scenarios are left out with
# the banner "UBUNTU ARCHIVE UNREACHABLE: the jammy scenario did not run" (at the start and in the summary), the
# rest run, and the exit code is theirs.
# First sets up what the host needs (podman runc debootstrap zstd dpkg-dev gnupg openssh-client curl,
# /etc/containers/containers.conf), builds the test-host image once (cached), builds and serves the mirror.
# Env: DLV_HARNESS_CACHE (default /var/cache/dlv-harness), DLV_MIRROR_PORT (8765), DLV_VENV (.venv),
#      DLV_IMAGE (localhost/dlv-bookworm-systemd), DLV_DEBIAN_MIRROR (http://deb.debian.org/debian),
#      DLV_JAMMY_IMAGE (localhost/dlv-jammy-systemd), DLV_UBUNTU_MIRROR (http://archive.ubuntu.com/ubuntu),
#      DLV_UBUNTU_PROBE_TIMEOUT (10).
# Exit: 0 all scenarios passed, 1 a scenario failed, 2 usage error or the host cannot run the harness.
set -uo pipefail

REPO_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
HARNESS=$REPO_ROOT/tools/harness
CACHE=${DLV_HARNESS_CACHE:-/var/cache/dlv-harness}
VENV=${DLV_VENV:-$REPO_ROOT/.venv}
BASE_CONFIG=$REPO_ROOT/.config/molecule/config.yml
export DLV_HARNESS_CACHE=$CACHE DLV_REPO_ROOT=$REPO_ROOT
# The test-host image build-image.sh makes and .config/molecule/config.yml runs.
export DLV_TEST_IMAGE=${DLV_IMAGE:-localhost/dlv-bookworm-systemd}
export DLV_IMAGE=$DLV_TEST_IMAGE
export DLV_JAMMY_IMAGE=${DLV_JAMMY_IMAGE:-localhost/dlv-jammy-systemd}
UBUNTU_MIRROR=${DLV_UBUNTU_MIRROR:-http://archive.ubuntu.com/ubuntu}
UNREACHABLE_BANNER="UBUNTU ARCHIVE UNREACHABLE: the jammy scenario did not run"
# Plain logs when not on a terminal (CI, tee to a log file).
[ -t 1 ] || export NO_COLOR=1 ANSIBLE_NOCOLOR=1

rel() { [ "$1" = "$REPO_ROOT" ] && echo . || echo "${1#"$REPO_ROOT"/}"; }
say() { printf 'molecule-run: %s\n' "$*"; }
die() { printf 'molecule-run: ERROR: %s\n' "$*" >&2; exit 2; }

jobs=1 keep=0 list=0 dry_run=0 targets=() given="$*"
while [ $# -gt 0 ]; do
  case "$1" in
    -j|--jobs) [[ "${2:-}" =~ ^[1-9][0-9]*$ ]] || die "-j needs a positive number"; jobs=$2; shift 2 ;;
    --keep) keep=1; shift ;;
    --list) list=1; shift ;;
    --dry-run) dry_run=1; shift ;;
    -h|--help) sed -n '2,/^set -uo/{/^#/s/^# \{0,1\}//p}' "$0"; exit 0 ;;
    -*) die "unknown option '$1' (try --help)" ;;
    *) targets+=("$1"); shift ;;
  esac
done

# --- which scenarios ----------------------------------------------------------------------------
# Each scenario is "ID|PROJECT_DIR|SCENARIO_NAME"; ID names the test host (dlv-ID) and the log.
scenarios=()
declare -A seen=()
add_scenario() {  # $1 id, $2 project dir, $3 scenario name; each scenario once
  [ -n "${seen[$1]:-}" ] && return 0
  seen[$1]=1
  scenarios+=("$1|$2|$3")
}
add_role_scenarios() {  # $1 role, $2 optional scenario
  local role=$1 dir
  for dir in "$REPO_ROOT/roles/$role/molecule/"${2:-*}; do
    [ -f "$dir/molecule.yml" ] || continue
    local name; name=$(basename "$dir")
    local id=$role; [ "$name" = default ] || id=$role-$name
    add_scenario "$id" "$REPO_ROOT/roles/$role" "$name"
  done
}
if [ ${#targets[@]} -eq 0 ]; then
  # repo-level scenarios first: `site` converges every role and is the longest, so with -j it starts first
  for file in "$REPO_ROOT"/molecule/*/molecule.yml; do
    [ -f "$file" ] && { name=$(basename "$(dirname "$file")"); add_scenario "$name" "$REPO_ROOT" "$name"; }
  done
  for dir in "$REPO_ROOT"/roles/*/molecule; do
    [ -d "$dir" ] && add_role_scenarios "$(basename "$(dirname "$dir")")"
  done
  [ ${#scenarios[@]} -gt 0 ] || die "no scenario found under roles/*/molecule/ or molecule/"
else
  for target in "${targets[@]}"; do
    before=${#scenarios[@]}
    if [[ "$target" == */* ]]; then
      add_role_scenarios "${target%%/*}" "${target#*/}"
    elif [ -d "$REPO_ROOT/roles/$target/molecule" ]; then
      add_role_scenarios "$target"
    elif [ -f "$REPO_ROOT/molecule/$target/molecule.yml" ]; then
      add_scenario "$target" "$REPO_ROOT" "$target"
    fi
    [ ${#scenarios[@]} -gt "$before" ] || [ -n "${seen[$target]:-}${seen[${target/\//-}]:-}" ] || [ -n "${seen[${target%/default}]:-}" ] || die "no scenario '$target' (looked for roles/$target/molecule/*/, roles/<role>/molecule/<scenario>/ and molecule/$target/)"
  done
fi
if [ "$list" = 1 ]; then
  for s in "${scenarios[@]}"; do IFS='|' read -r id dir name <<<"$s"; echo "$id  $(rel "$dir")  $name"; done
  exit 0
fi

# --- platforms: Debian 12 for all but the jammy scenarios, which need Ubuntu's archive ---------------
is_jammy() { [ "$1" = jammy ] || [[ "$1" == *-jammy ]]; }
image_of() { if is_jammy "$1"; then echo "$DLV_JAMMY_IMAGE"; else echo "$DLV_TEST_IMAGE"; fi; }
banner() {
  local line; line=$(printf '%*s' $(( ${#UNREACHABLE_BANNER} + 8 )) '' | tr ' ' '!')
  printf '%s\n!!! %s !!!\n%s\n' "$line" "$UNREACHABLE_BANNER" "$line"
}
want_jammy=0 unreachable=0 skipped=() kept=()
for s in "${scenarios[@]}"; do IFS='|' read -r _ _ name <<<"$s"; is_jammy "$name" && want_jammy=1; done
if [ "$want_jammy" = 1 ]; then
  probe_url=$UBUNTU_MIRROR/dists/jammy/Release probe_err=$(mktemp)
  if ! curl -fsS -o /dev/null -I --max-time "${DLV_UBUNTU_PROBE_TIMEOUT:-10}" "$probe_url" 2>"$probe_err"; then
    unreachable=1
    banner
    say "$probe_url did not answer ($(head -c 200 "$probe_err")); running the other scenarios"
    for s in "${scenarios[@]}"; do
      IFS='|' read -r id _ name <<<"$s"
      if is_jammy "$name"; then skipped+=("$id"); else kept+=("$s"); fi
    done
    scenarios=("${kept[@]}")
  fi
  rm -f "$probe_err"
fi
if [ "$dry_run" = 1 ]; then
  for s in "${scenarios[@]}"; do IFS='|' read -r id dir name <<<"$s"; echo "$id  $(rel "$dir")  $name  $(image_of "$name")"; done
  for id in "${skipped[@]}"; do echo "$id  SKIPPED: Ubuntu's archive did not answer"; done
  [ "$unreachable" = 1 ] && banner
  exit 0
fi
[ ${#scenarios[@]} -gt 0 ] || { say "no scenario left to run"; exit 0; }

# --- host requirements --------------------------------------------------------------------------
[ "$(uname -s)" = Linux ] || die "the harness needs Linux (podman with systemd test hosts)"
[ "$(id -u)" = 0 ] || die "must run as root: rootful podman (systemd test hosts) and debootstrap. Try: sudo $0 $given"
declare -A tool_pkg=([podman]=podman [runc]=runc [debootstrap]=debootstrap [zstd]=zstd
                     [dpkg-scanpackages]=dpkg-dev [dpkg-deb]=dpkg [gpg]=gnupg [ssh]=openssh-client [curl]=curl)
mkdir -p "$CACHE/logs" || die "cannot create the cache dir $CACHE (set DLV_HARNESS_CACHE)"
missing=()
for tool in "${!tool_pkg[@]}"; do command -v "$tool" >/dev/null || missing+=("${tool_pkg[$tool]}"); done
if [ ${#missing[@]} -gt 0 ]; then
  command -v apt-get >/dev/null || die "missing ${missing[*]} and no apt-get to install them: install them by hand (Debian/Ubuntu package names)"
  say "installing host packages: ${missing[*]}"
  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}"; } >"$CACHE/logs/host-apt.log" 2>&1 \
    || { tail -n 20 "$CACHE/logs/host-apt.log" >&2; die "apt-get install ${missing[*]} failed (log: $CACHE/logs/host-apt.log)"; }
fi
command -v podman >/dev/null || die "podman is still missing after apt-get; the harness cannot run here"

# crun fails on this machine kind (cgroups v1 hybrid); runc with explicit ulimits works.
conf=/etc/containers/containers.conf
if [ ! -e "$conf" ]; then
  mkdir -p /etc/containers
  cat >"$conf" <<'CONF'
# Written by dlverify tools/harness/molecule-run.sh: crun fails on this machine kind (cgroups v1 hybrid,
# setrlimit NOFILE not permitted), runc with explicit ulimits works. nproc >= 65536 fails; 32768 works.
[containers]
default_ulimits = ["nofile=20000:20000", "nproc=32768:32768"]

[engine]
runtime = "runc"
CONF
  say "wrote $conf (runtime runc, ulimits)"
fi
runtime=$(podman info --format '{{.Host.OCIRuntime.Name}}' 2>/dev/null) || die "podman does not work here: $(podman info 2>&1 | tail -n 3)"
[ "$runtime" = runc ] || die "podman uses the OCI runtime '$runtime'; set runtime = \"runc\" under [engine] in $conf (crun fails on cgroups v1 hybrid hosts)"

# The Ansible/Molecule toolchain: the repo's venv unless one is active.
if ! command -v molecule >/dev/null || ! command -v ansible-config >/dev/null; then
  [ -f "$VENV/bin/activate" ] || die "molecule not found and no venv at $VENV: pip install -e '.[harness]'"
  # shellcheck disable=SC1091
  . "$VENV/bin/activate"
fi
command -v molecule >/dev/null || die "molecule is not installed in $VENV: pip install -e '.[harness]'"

t_setup=$(date +%s)

# --- image and mirror ---------------------------------------------------------------------------
need_bookworm=0
for s in "${scenarios[@]}"; do IFS='|' read -r _ _ name <<<"$s"; is_jammy "$name" || need_bookworm=1; done
[ "$need_bookworm" = 0 ] || "$HARNESS/build-image.sh" || die "building the test-host image failed"
if [ "$want_jammy" = 1 ] && [ "$unreachable" = 0 ]; then
  "$HARNESS/build-image.sh" --platform jammy || die "building the jammy test-host image failed"
fi
t_image=$(date +%s)

python3 "$HARNESS/mirror.py" build || die "building the offline mirror failed"
t_mirror=$(date +%s)
# --user: several runners may share one server; the last one to finish stops it.
python3 "$HARNESS/mirror.py" serve --user $$ || die "serving the offline mirror failed"
trap 'python3 "$HARNESS/mirror.py" stop --user $$ || true' EXIT
mirror_env=$(python3 "$HARNESS/mirror.py" env) || die "mirror.py env failed"
eval "$mirror_env"
say "mirror at $DLV_MIRROR_URL; image and mirror ready in $((t_mirror - t_setup))s (image $((t_image - t_setup))s)"

# --- scenarios ----------------------------------------------------------------------------------
declare -A result seconds
run_one() {  # $1 id, $2 project dir, $3 scenario, $4 log
  local id=$1 dir=$2 name=$3 log=$4 args=(test -s "$3")
  [ "$keep" = 1 ] && args+=(--destroy=never)
  (cd "$dir" && DLV_SCENARIO_ID=$id DLV_TEST_IMAGE=$(image_of "$name") molecule --base-config "$BASE_CONFIG" "${args[@]}") >"$log" 2>&1
}

start_all=$(date +%s)
if [ "$jobs" = 1 ]; then
  for s in "${scenarios[@]}"; do
    IFS='|' read -r id dir name <<<"$s"
    log=$CACHE/logs/$id.log
    say "=== $id: molecule test ($(rel "$dir"), scenario $name), log $log"
    t0=$(date +%s)
    args=(test -s "$name"); [ "$keep" = 1 ] && args+=(--destroy=never)
    (cd "$dir" && DLV_SCENARIO_ID=$id DLV_TEST_IMAGE=$(image_of "$name") molecule --base-config "$BASE_CONFIG" "${args[@]}") 2>&1 | tee "$log"
    rc=${PIPESTATUS[0]}
    seconds[$id]=$(( $(date +%s) - t0 )); result[$id]=$([ "$rc" = 0 ] && echo PASS || echo "FAIL(rc=$rc)")
  done
else
  declare -A pid_of
  running=0
  for s in "${scenarios[@]}"; do
    IFS='|' read -r id dir name <<<"$s"
    while [ "$running" -ge "$jobs" ]; do wait -n; running=$((running - 1)); done
    say "=== $id: started (log $CACHE/logs/$id.log)"
    ( t0=$(date +%s); run_one "$id" "$dir" "$name" "$CACHE/logs/$id.log"; rc=$?
      echo "$rc $(( $(date +%s) - t0 ))" >"$CACHE/logs/$id.status" ) &
    pid_of[$id]=$!; running=$((running + 1))
  done
  wait
  for id in "${!pid_of[@]}"; do
    read -r rc secs <"$CACHE/logs/$id.status"
    seconds[$id]=$secs; result[$id]=$([ "$rc" = 0 ] && echo PASS || echo "FAIL(rc=$rc)")
  done
fi

# --- summary ------------------------------------------------------------------------------------
failed=0
echo
printf '%-28s %-12s %8s  %s\n' SCENARIO RESULT SECONDS LOG
for s in "${scenarios[@]}"; do
  IFS='|' read -r id _ _ <<<"$s"
  printf '%-28s %-12s %8s  %s\n' "$id" "${result[$id]}" "${seconds[$id]}" "$CACHE/logs/$id.log"
  [ "${result[$id]}" = PASS ] || failed=$((failed + 1))
done
printf '%-28s %-12s %8s\n' "(image + mirror setup)" "" "$((t_mirror - t_setup))"
printf '%-28s %-12s %8s\n' "(all scenarios)" "" "$(( $(date +%s) - start_all ))"
for id in "${skipped[@]}"; do printf '%-28s %-12s\n' "$id" "SKIPPED"; done
[ "$unreachable" = 1 ] && banner
if [ "$failed" -gt 0 ]; then
  if [ "$jobs" != 1 ]; then  # side by side, the output went to the logs only: show where each failed
    for s in "${scenarios[@]}"; do
      IFS='|' read -r id _ _ <<<"$s"
      [ "${result[$id]}" = PASS ] && continue
      say "--- the last 60 lines of $CACHE/logs/$id.log"
      tail -n 60 "$CACHE/logs/$id.log"
    done
  fi
  say "$failed of ${#scenarios[@]} scenario(s) FAILED"
  exit 1
fi
say "all ${#scenarios[@]} scenario(s) passed"
