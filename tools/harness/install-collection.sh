#!/usr/bin/env bash
# Molecule's dependency step for a scenario that provisions through the Ansible collection (molecule/site-jammy),
# as a user would: build the collection from this checkout, install the tarball with no network into the
# scenario's ephemeral folder (outside the checkout), and copy the scenario's user-project/ beside it. The scenario
# then runs that copy with ANSIBLE_COLLECTIONS_PATH on the installed collection and the checkout's roles/ out of reach.
set -euo pipefail
: "${MOLECULE_EPHEMERAL_DIRECTORY:?run by Molecule}" "${MOLECULE_SCENARIO_DIRECTORY:?run by Molecule}"
: "${DLV_REPO_ROOT:?set by tools/harness/molecule-run.sh}"
eph=$MOLECULE_EPHEMERAL_DIRECTORY
rm -rf "$eph/collection-build" "$eph/collections" "$eph/user-project"
mkdir -p "$eph/collection-build"
(cd "$DLV_REPO_ROOT" && ansible-galaxy collection build --output-path "$eph/collection-build" .)
ansible-galaxy collection install --offline -p "$eph/collections" "$eph"/collection-build/dlverify-gpu_server-*.tar.gz
cp -R "$MOLECULE_SCENARIO_DIRECTORY/user-project" "$eph/user-project"
echo "install-collection: dlverify.gpu_server installed into $eph/collections, the user project copied to $eph/user-project"
