#!/usr/bin/env bash
# Lint the repo's Ansible content: yamllint (strict: warnings fail) and ansible-lint --profile production.
#
# Usage: tools/harness/lint.sh [PATH...]
#   default: roles/ playbooks/ site.yml inventory/ molecule/ .config/molecule/ requirements.yml
# Exit:  0 both clean, 1 a linter found problems, 2 a linter is not installed.
set -uo pipefail

REPO_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
VENV=${DLV_VENV:-$REPO_ROOT/.venv}
cd "$REPO_ROOT" || exit 2

if ! command -v ansible-lint >/dev/null || ! command -v yamllint >/dev/null; then
  # shellcheck disable=SC1091
  [ -f "$VENV/bin/activate" ] && . "$VENV/bin/activate"
fi
for tool in yamllint ansible-lint; do
  command -v "$tool" >/dev/null || { echo "lint: $tool is not installed: pip install -e '.[harness]'" >&2; exit 2; }
done

if [ $# -gt 0 ]; then
  targets=("$@")
else
  targets=()
  for path in roles playbooks site.yml inventory molecule .config/molecule requirements.yml galaxy.yml meta; do
    [ -e "$path" ] && targets+=("$path")
  done
fi
[ ${#targets[@]} -gt 0 ] || { echo "lint: nothing to lint" >&2; exit 2; }
export ANSIBLE_ROLES_PATH=$REPO_ROOT/roles ANSIBLE_HOME=${ANSIBLE_HOME:-$REPO_ROOT/.cache/ansible}
# A user's playbook (molecule/site-jammy/user-project/) names the collection's plays: ansible-lint's syntax check
# needs the collection installed. Build it from this checkout and install it offline into a scratch path.
coll=$(mktemp -d)
trap 'rm -rf "$coll"' EXIT
{ ansible-galaxy collection build --output-path "$coll" . \
    && ansible-galaxy collection install --offline -p "$coll/collections" "$coll"/*.tar.gz; } >"$coll/log" 2>&1 \
  || { cat "$coll/log" >&2; echo "lint: the collection did not build or install" >&2; exit 1; }
export ANSIBLE_COLLECTIONS_PATH=$coll/collections

echo "lint: yamllint --strict ${targets[*]}"
yamllint --strict -f standard "${targets[@]}"
yaml_rc=$?

echo "lint: ansible-lint --profile production ${targets[*]}"
echo "lint: (its \"Failed to find ... playbook\" line is molecule/site/converge.yml's templated import; both playbooks it may name, site.yml and the user project's, are linted as targets)"
ansible-lint --profile production --offline --nocolor "${targets[@]}"
al_rc=$?

status() { [ "$1" = 0 ] && echo clean || echo "FAILED (rc=$1)"; }
echo
echo "lint summary: yamllint $(status $yaml_rc); ansible-lint (production) $(status $al_rc)"
[ "$yaml_rc" = 0 ] && [ "$al_rc" = 0 ] && exit 0
exit 1
