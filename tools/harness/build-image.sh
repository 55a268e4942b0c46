#!/usr/bin/env bash
# Build a Molecule test-host image with systemd as PID 1: Debian 12 (bookworm, the default) or Ubuntu 22.04 (jammy).
#
# No container registry is reachable here or in CI, so the rootfs comes from the distribution's own apt archive via
# debootstrap, is cached as a .tar.zst named after the platform and this script's hash (edit the script => rebuild),
# and is imported into podman as the platform's image with the hash as a label.
# Jammy's Release files are signed by Ubuntu's archive key, which Debian 12 does not ship (its archive has no
# ubuntu-keyring package): the keyring comes from Ubuntu's ubuntu-keyring .deb, checked against the sha256 below and
# the 2018 archive key's fingerprint before debootstrap trusts it.
#
# Usage: tools/harness/build-image.sh [--force] [--platform bookworm|jammy]
# Env:   DLV_HARNESS_CACHE (default /var/cache/dlv-harness),
#        DLV_IMAGE (bookworm image, default localhost/dlv-bookworm-systemd),
#        DLV_JAMMY_IMAGE (jammy image, default localhost/dlv-jammy-systemd),
#        DLV_DEBIAN_MIRROR (default http://deb.debian.org/debian), DLV_UBUNTU_MIRROR (http://archive.ubuntu.com/ubuntu)
# Exit:  0 image ready, 1 build failed, 2 usage / missing host tool.
set -euo pipefail

CACHE=${DLV_HARNESS_CACHE:-/var/cache/dlv-harness}
DEBIAN_MIRROR=${DLV_DEBIAN_MIRROR:-http://deb.debian.org/debian}
UBUNTU_MIRROR=${DLV_UBUNTU_MIRROR:-http://archive.ubuntu.com/ubuntu}
# What every test host has, on top of minbase (the contract with the role scenarios).
INCLUDE=systemd,systemd-sysv,dbus,python3,sudo,ca-certificates,gnupg,python3-venv,python3-apt,procps,iproute2
# ubuntu-keyring 2021.03.26 (jammy main: pool/main/u/ubuntu-keyring/) and the key that signs jammy's Release files:
# "Ubuntu Archive Automatic Signing Key (2018) <ftpmaster@ubuntu.com>".
UBUNTU_KEYRING_DEB=pool/main/u/ubuntu-keyring/ubuntu-keyring_2021.03.26_all.deb
UBUNTU_KEYRING_SHA256=0d0e7ed6b112f5d03eabf3c7eb01ebdacf9c57714b279e90495cfc58c8c4520f
UBUNTU_ARCHIVE_KEY_FPR=F6ECB3762474EDA9D21B7022871920D1991BC93C

force=0 platform=bookworm
while [ $# -gt 0 ]; do
  case "$1" in
    --force) force=1; shift ;;
    --platform) platform=${2:-}; shift 2 || shift ;;
    -h|--help) sed -n '2,/^set -eu/{/^#/s/^# \{0,1\}//p}' "$0"; exit 0 ;;
    *) echo "build-image: unknown argument '$1' (try --help)" >&2; exit 2 ;;
  esac
done
case "$platform" in
  bookworm) IMAGE=${DLV_IMAGE:-localhost/dlv-bookworm-systemd} MIRROR=$DEBIAN_MIRROR ;;
  jammy) IMAGE=${DLV_JAMMY_IMAGE:-localhost/dlv-jammy-systemd} MIRROR=$UBUNTU_MIRROR ;;
  *) echo "build-image: --platform must be bookworm or jammy, not '$platform'" >&2; exit 2 ;;
esac
SUITE=$platform

for tool in podman debootstrap zstd tar sha256sum curl gpg dpkg-deb; do
  command -v "$tool" >/dev/null || { echo "build-image: '$tool' is missing (apt-get install podman debootstrap zstd)" >&2; exit 2; }
done
[ "$(id -u)" = 0 ] || { echo "build-image: must run as root (debootstrap, rootful podman)" >&2; exit 2; }

build_hash=$(sha256sum "$0" | cut -c1-16)
images_dir=$CACHE/images
tarball=$images_dir/dlv-$platform-systemd-$build_hash.tar.zst
mkdir -p "$images_dir"

# Ubuntu's archive keyring, from Ubuntu's own ubuntu-keyring package, trusted only when the .deb's sha256 and the
# 2018 archive key's fingerprint are the ones written above. Prints the keyring's path.
ubuntu_keyring() {
  local dir=$CACHE/keyrings deb keyring
  deb=$dir/$(basename "$UBUNTU_KEYRING_DEB") keyring=$dir/ubuntu-archive-keyring.gpg
  mkdir -p "$dir"
  if [ ! -s "$keyring" ]; then
    curl -fsS --max-time 60 -o "$deb.tmp" "$UBUNTU_MIRROR/$UBUNTU_KEYRING_DEB" \
      || { echo "build-image: cannot download $UBUNTU_MIRROR/$UBUNTU_KEYRING_DEB" >&2; return 1; }
    echo "$UBUNTU_KEYRING_SHA256  $deb.tmp" | sha256sum -c --quiet - >&2 \
      || { echo "build-image: $(basename "$deb") does not have the sha256 $UBUNTU_KEYRING_SHA256: refusing it" >&2; rm -f "$deb.tmp"; return 1; }
    mv "$deb.tmp" "$deb"
    dpkg-deb --fsys-tarfile "$deb" | tar -xO ./usr/share/keyrings/ubuntu-archive-keyring.gpg > "$keyring.tmp"
    gpg --batch --show-keys --with-colons "$keyring.tmp" 2>/dev/null \
      | grep -qx "fpr:::::::::$UBUNTU_ARCHIVE_KEY_FPR:" \
      || { echo "build-image: Ubuntu's keyring lacks the archive key $UBUNTU_ARCHIVE_KEY_FPR: refusing it" >&2; rm -f "$keyring.tmp"; return 1; }
    mv "$keyring.tmp" "$keyring"
  fi
  echo "$keyring"
}

current=$(podman image inspect --format '{{ index .Labels "dlv.build-hash" }}' "$IMAGE" 2>/dev/null || true)
if [ "$force" = 0 ] && [ "$current" = "$build_hash" ]; then
  echo "build-image: $IMAGE is up to date (build hash $build_hash)"
  exit 0
fi

if [ "$force" = 1 ] || [ ! -s "$tarball" ]; then
  rootfs=$(mktemp -d "$images_dir/rootfs.XXXXXX")
  trap 'rm -rf "$rootfs"' EXIT
  echo "build-image: debootstrap $SUITE from $MIRROR into $rootfs"
  start=$(date +%s)
  bootstrap_args=(--variant=minbase --include="$INCLUDE")
  if [ "$platform" = jammy ]; then
    keyring=$(ubuntu_keyring) || exit 1
    bootstrap_args+=(--components=main,restricted,universe,multiverse --keyring="$keyring")
  fi
  debootstrap "${bootstrap_args[@]}" "$SUITE" "$rootfs" "$MIRROR" \
    > "$images_dir/debootstrap-$platform.log" 2>&1 || {
      echo "build-image: debootstrap failed; last lines of $images_dir/debootstrap-$platform.log:" >&2
      tail -n 20 "$images_dir/debootstrap-$platform.log" >&2
      exit 1
    }
  # A 0700 root directory breaks dbus inside the container (see shared/molecule-notes.md).
  chmod 0755 "$rootfs"
  # The sources of a real install (deb822), so apt upgrade/unattended-upgrades see updates and security updates.
  rm -f "$rootfs/etc/apt/sources.list"
  if [ "$platform" = jammy ]; then
    # Ubuntu's archive for everything, with the components a default Ubuntu 22.04 server install enables (nvtop,
    # which the base role installs, is in multiverse); the stand-in NVIDIA packages come from the harness mirror.
    cat > "$rootfs/etc/apt/sources.list.d/ubuntu.sources" <<SOURCES
Types: deb
URIs: $UBUNTU_MIRROR
Suites: $SUITE $SUITE-updates $SUITE-security
Components: main restricted universe multiverse
Signed-By: /usr/share/keyrings/ubuntu-archive-keyring.gpg
SOURCES
  else
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
  fi
  # Empty machine-id: systemd makes a fresh one per container, as on a freshly installed host.
  : > "$rootfs/etc/machine-id"
  rm -f "$rootfs/var/lib/dbus/machine-id"
  # No consoles in a container: these units would only fail and make the system 'degraded'.
  for unit in getty@tty1.service console-getty.service systemd-firstboot.service; do
    ln -sf /dev/null "$rootfs/etc/systemd/system/$unit"
  done
  chroot "$rootfs" apt-get update -qq >/dev/null
  if [ "$platform" = jammy ]; then
    # debootstrap takes the release pocket only (22.04 of April 2022); bring the host up to jammy-updates and
    # -security as a maintained server is, once here instead of in every scenario's first `apt upgrade`.
    mount -t proc proc "$rootfs/proc"
    trap 'umount "$rootfs/proc" 2>/dev/null || true; rm -rf "$rootfs"' EXIT  # set -e holds in traps too
    DEBIAN_FRONTEND=noninteractive chroot "$rootfs" apt-get -y -qq -o Dpkg::Use-Pty=0 upgrade \
      > "$images_dir/upgrade-$platform.log" 2>&1 || {
        echo "build-image: apt-get upgrade in the jammy rootfs failed; last lines of $images_dir/upgrade-$platform.log:" >&2
        tail -n 20 "$images_dir/upgrade-$platform.log" >&2
        exit 1
      }
    umount "$rootfs/proc"
  fi
  chroot "$rootfs" apt-get clean
  echo "dlv-$platform-systemd $build_hash $(date -u +%FT%TZ)" > "$rootfs/etc/dlv-test-host"
  tar --numeric-owner --xattrs -C "$rootfs" -c . | zstd -q -T0 -3 -o "$tarball.tmp"
  mv "$tarball.tmp" "$tarball"
  rm -f "$images_dir/dlv-$platform-systemd-"*.tar.zst.tmp
  find "$images_dir" -maxdepth 1 -name "dlv-$platform-systemd-*.tar.zst" ! -name "$(basename "$tarball")" -delete
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
