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

# sparc64 busybox: Debian has no sparc64 packages, so kto cross-builds busybox-static from
# Debian's own busybox source package (same version and config as the x86_64/arm64 binaries)
# on first sparc64 use. Setup only fetches the source: needs a deb-src entry for bookworm.
kto_cache="${KTO_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/kto}"
srcdir="$kto_cache/busybox/src"
if ! ls "$srcdir"/busybox_*.dsc >/dev/null 2>&1; then
  if ! apt-get source --download-only --print-uris busybox >/dev/null 2>&1; then
    echo "setup: adding a deb-src entry for bookworm main (busybox source for sparc64)"
    printf '%s\n' 'Types: deb-src' 'URIs: http://deb.debian.org/debian' \
      'Suites: bookworm' 'Components: main' \
      'Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg' |
      $SUDO tee /etc/apt/sources.list.d/kto-deb-src.sources >/dev/null
    $SUDO apt-get update -qq
  fi
  mkdir -p "$srcdir"
  (cd "$srcdir" && apt-get source --download-only -qq busybox)
  echo "setup: fetched $(ls "$srcdir"/busybox_*.dsc)"
fi

# The guest's sshd for `kto boot --network`: kto cross-builds a static dropbear per arch from
# Debian's source package on first use; setup only fetches the source.
dbdir="$kto_cache/dropbear/src"
if ! ls "$dbdir"/dropbear_*.dsc >/dev/null 2>&1; then
  mkdir -p "$dbdir"
  (cd "$dbdir" && apt-get source --download-only -qq dropbear 2>&1 | grep -v "unsandboxed" || true)
  echo "setup: fetched $(ls "$dbdir"/dropbear_*.dsc)"
fi
