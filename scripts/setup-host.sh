#!/usr/bin/env bash
# Installs the Debian packages given as arguments, only the ones missing, so a second run
# costs a dpkg query and nothing else. Also fetches the arm64 busybox-static .deb that the
# arm64 initramfs needs (Debian has no foreign-arch install of it without multiarch).
set -euo pipefail

missing=()
for pkg in "$@"; do
  if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed'; then
    missing+=("$pkg")
  fi
done

SUDO=""
if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi

if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing ${#missing[@]} Debian package(s): ${missing[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

# arm64 busybox for the arm64 initramfs: downloaded, not installed (it would clash with amd64's).
cache="${KTO_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/kto}/debs"
if ! ls "$cache"/busybox-static_*_arm64.deb >/dev/null 2>&1; then
  if ! dpkg --print-foreign-architectures | grep -qx arm64; then
    $SUDO dpkg --add-architecture arm64
    $SUDO apt-get update -qq
  fi
  mkdir -p "$cache"
  (cd "$cache" && apt-get download -qq busybox-static:arm64)
  echo "setup: fetched $(ls "$cache"/busybox-static_*_arm64.deb)"
fi
