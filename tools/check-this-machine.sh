#!/usr/bin/env bash
# The quick start's first command: install dlverify into .venv (once), lint the spec, check this machine against it.
#
# Usage: tools/check-this-machine.sh [SPEC] [dlverify check options...]   (SPEC defaults to hwspec.yaml)
# Exit: dlverify's own codes (README "Exit codes"): the lint's when the spec's pins do not fit together (1) or the
#       spec is unreadable (2), the check is not run then; otherwise the check's (0 pass, 1 a check failed, 2 bad
#       input). 3: the virtual environment could not be set up. (`make check` does the same steps, but make turns
#       every failure into its own exit 2.)
# Env: VENV (default .venv), PYTHON (default python3).
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.." || exit 3
VENV=${VENV:-.venv}
PYTHON=${PYTHON:-python3}
spec=${1:-hwspec.yaml}
[ $# -gt 0 ] && shift

if [ ! -x "$VENV/bin/dlverify" ]; then
  echo "check-this-machine: installing dlverify into $VENV (once)" >&2
  { [ -x "$VENV/bin/python" ] || "$PYTHON" -m venv "$VENV"; } \
    && "$VENV/bin/python" -m pip install -q --disable-pip-version-check -e . \
    || { echo "check-this-machine: cannot set up $VENV (needs python3 with venv, and PyPI)" >&2; exit 3; }
fi
"$VENV/bin/dlverify" spec lint "$spec" || exit $?
exec "$VENV/bin/dlverify" check "$spec" "$@"
