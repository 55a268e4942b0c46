#!/bin/sh
# dlverify test STAND-IN (molecule/fleet) - NOT dlverify. The fleet playbook runs it as `dlverify snapshot|check|bench
# ... -o FILE`; it records its arguments in ./calls, copies the document the scenario's prepare step made on the
# controller for that subcommand (./<subcommand>.json, from the real recordings) to FILE and exits with the code
# the real dlverify gives for that document (./<subcommand>.rc).
dir=$(dirname "$0")
cmd=$1
echo "$*" >> "$dir/calls"
out=""
while [ $# -gt 0 ]; do
  [ "$1" = "-o" ] && out=$2
  shift
done
[ -n "$out" ] && [ -f "$dir/$cmd.json" ] || { echo "dlverify stand-in: no document for '$cmd' or no -o FILE" >&2; exit 2; }
cp "$dir/$cmd.json" "$out" || exit 2
exit "$(cat "$dir/$cmd.rc" 2>/dev/null || echo 0)"
