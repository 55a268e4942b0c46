#!/usr/bin/env bash
# Molecule's dependency step for a scenario that provisions through the Ansible collection (molecule/site-jammy),
# as a user would: build the collection from this checkout, install the tarball with no network into the
# scenario's ephemeral folder (outside the checkout), and copy the scenario's user-project/ beside it. The scenario
# then runs that copy with ANSIBLE_COLLECTIONS_PATH on the installed collection and the checkout's roles/ out of reach.
#   install-collection.sh EPHEMERAL_DIR SCENARIO_DIR
# (arguments, not Molecule's variables: Molecule runs a shell dependency without its MOLECULE_* environment)
set -euo pipefail
[ $# = 2 ] || { echo "usage: install-collection.sh EPHEMERAL_DIR SCENARIO_DIR" >&2; exit 2; }
eph=$1 scenario=$2
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
rm -rf "$eph/collection-build" "$eph/collections" "$eph/user-project"
mkdir -p "$eph/collection-build"
(cd "$repo" && ansible-galaxy collection build --output-path "$eph/collection-build" .)
ansible-galaxy collection install --offline -p "$eph/collections" "$eph"/collection-build/dlverify-gpu_server-*.tar.gz
cp -R "$scenario/user-project" "$eph/user-project"
echo "install-collection: dlverify.gpu_server installed into $eph/collections, the user project copied to $eph/user-project"
