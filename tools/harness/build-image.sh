#!/usr/bin/env bash
# Build the Molecule test-host image: Debian 12 (bookworm) with systemd as PID 1.
#
# No container registry is reachable here or in CI, so the rootfs comes from Debian's own apt registry via
# debootstrap, is cached as a .tar.zst named after this script's hash (edit the script => rebuild), and is
# imported into podman as localhost/dlv-bookworm-systemd with the hash as a label.
#
# Usage: tools/harness/build-image.sh [--force]
# Env:   DLV_HARNESS_CACHE (default /var/cache/dlv-harness), DLV_IMAGE (default localhost/dlv-bookworm-systemd),
#        DLV_DEBIAN_MIRROR (default http://deb.debian.org/debian)
# Exit:  0 image ready, 1 build failed, 2 usage / missing host tool.
set -euo pipefail

CACHE=${DLV_HARNESS_CACHE:-/var/cache/dlv-harness}
IMAGE=${DLV_IMAGE:-localhost/dlv-bookworm-systemd}
DEBIAN_MIRROR=${DLV_DEBIAN_MIRROR:-http://deb.debian.org/debian}
SUITE=bookworm
# What every test host has, on top of minbase (the contract with the role scenarios).
INCLUDE=systemd,systemd-sysv,dbus,python3,sudo,ca-certificates,gnupg,python3-venv,python3-apt,procps,iproute2

force=0
case "${1:-}" in
  --force) force=1 ;;
  "") ;;
  -h|--help) sed -n '2,/^set -eu/{/^#/s/^# \{0,1\}//p}' "$0"; exit 0 ;;
  *) echo "build-image: unknown argument '$1' (try --help)" >&2; exit 2 ;;
esac

for tool in podman debootstrap zstd tar sha256sum; do
  command -v "$tool" >/dev/null || { echo "build-image: '$tool' is missing (apt-get install podman debootstrap zstd)" >&2; exit 2; }
done
[ "$(id -u)" = 0 ] || { echo "build-image: must run as root (debootstrap, rootful podman)" >&2; exit 2; }

build_hash=$(sha256sum "$0" | cut -c1-16)
images_dir=$CACHE/images
tarball=$images_dir/dlv-bookworm-systemd-$build_hash.tar.zst
mkdir -p "$images_dir"

current=$(podman image inspect --format '{{ index .Labels "dlv.build-hash" }}' "$IMAGE" 2>/dev/null || true)
if [ "$force" = 0 ] && [ "$current" = "$build_hash" ]; then
  echo "build-image: $IMAGE is up to date (build hash $build_hash)"
  exit 0
fi

if [ "$force" = 1 ] || [ ! -s "$tarball" ]; then
  rootfs=$(mktemp -d "$images_dir/rootfs.XXXXXX")
  trap 'rm -rf "$rootfs"' EXIT
  echo "build-image: debootstrap $SUITE from $DEBIAN_MIRROR into $rootfs"
  start=$(date +%s)
  debootstrap --variant=minbase --include="$INCLUDE" "$SUITE" "$rootfs" "$DEBIAN_MIRROR" \
    > "$images_dir/debootstrap.log" 2>&1 || {
      echo "build-image: debootstrap failed; last lines of $images_dir/debootstrap.log:" >&2
      tail -n 20 "$images_dir/debootstrap.log" >&2
      exit 1
    }
  # A 0700 root directory breaks dbus inside the container (see shared/molecule-notes.md).
  chmod 0755 "$rootfs"
  # The sources of a real bookworm install (deb822), so apt upgrade/unattended-upgrades see security updates.
  rm -f "$rootfs/etc/apt/sources.list"
  cat > "$rootfs/etc/apt/sources.list.d/debian.sources" <<SOURCES
Types: deb
URIs: $DEBIAN_MIRROR
Suites: $SUITE $SUITE-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: ${DEBIAN_MIRROR%/debian}/debian-security
Suites: $SUITE-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SOURCES
  # Empty machine-id: systemd makes a fresh one per container, as on a freshly installed host.
  : > "$rootfs/etc/machine-id"
  rm -f "$rootfs/var/lib/dbus/machine-id"
  # No consoles in a container: these units would only fail and make the system 'degraded'.
  for unit in getty@tty1.service console-getty.service systemd-firstboot.service; do
    ln -sf /dev/null "$rootfs/etc/systemd/system/$unit"
  done
  chroot "$rootfs" apt-get update -qq >/dev/null
  chroot "$rootfs" apt-get clean
  echo "dlv-bookworm-systemd $build_hash $(date -u +%FT%TZ)" > "$rootfs/etc/dlv-test-host"
  tar --numeric-owner --xattrs -C "$rootfs" -c . | zstd -q -T0 -3 -o "$tarball.tmp"
  mv "$tarball.tmp" "$tarball"
  rm -f "$images_dir"/dlv-bookworm-systemd-*.tar.zst.tmp
  find "$images_dir" -name 'dlv-bookworm-systemd-*.tar.zst' ! -name "$(basename "$tarball")" -delete
  echo "build-image: rootfs built in $(( $(date +%s) - start ))s -> $tarball ($(du -h "$tarball" | cut -f1))"
fi

old_id=$(podman image inspect --format '{{.Id}}' "$IMAGE" 2>/dev/null || true)
zstd -dc "$tarball" | podman import \
  --change 'CMD ["/sbin/init"]' \
  --change 'ENV container=podman' \
  --change "LABEL dlv.build-hash=$build_hash" \
  --quiet - "$IMAGE" >/dev/null
echo "build-image: imported $IMAGE (build hash $build_hash)"
# The previous build is now untagged: remove it unless a container still uses it.
new_id=$(podman image inspect --format '{{.Id}}' "$IMAGE")
if [ -n "$old_id" ] && [ "$old_id" != "$new_id" ]; then podman rmi "$old_id" >/dev/null 2>&1 || true; fi
