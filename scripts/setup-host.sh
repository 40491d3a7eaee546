#!/usr/bin/env bash
# Installs the Debian packages given as arguments, only the ones missing, so a second run
# costs a dpkg query and nothing else. Also fetches what the arch profiles' `busybox:`
# sections name (configs/arch/*.yaml): a foreign-arch busybox-static .deb (source: deb; it
# would clash with the host's if installed), or Debian's busybox source package (source:
# build), and dropbear's source. A new arch needs no change here.
#   --print-busybox-fetches   only print what the profiles ask for (tests/test_profiles.py)
set -euo pipefail

repo="$(cd "$(dirname "$0")/.." && pwd)"

# profile_value FILE SECTION KEY: a scalar under a top-level section of an arch profile, as
# configs/arch/*.yaml write them ("section:" at column 0, "  key: value  # comment"). This
# runs before the venv (and PyYAML) exists; tests/test_profiles.py checks that it reads what
# orchestrator/config/arch.py loads, for every profile.
profile_value() {
  awk -v sec="$2" -v key="$3" '
    /^[^ #]/ { insec = ($0 ~ "^" sec ":"); next }
    insec && $0 ~ "^  " key ":" {
      v = $0; sub("^  " key ":[ \t]*", "", v); sub(/[ \t]+#.*$/, "", v)
      gsub(/^"|"$/, "", v); print v; exit
    }' "$1"
}

# One line per profile whose busybox comes from Debian: "deb ARCH PACKAGE:DEBARCH GLOB" (a
# .deb to download into <cache>/debs) or "src ARCH SOURCEPACKAGE GLOB" (a source package for
# <cache>/<package>/src). Debian's file names say which: <package>_<version>_<arch>.deb and
# <source>_<version>.dsc, so the profile's glob is all the data there is.
busybox_fetches() {
  local f arch glob
  for f in "$repo"/configs/arch/*.yaml; do
    arch=$(basename "$f" .yaml)
    case "$(profile_value "$f" busybox source)" in
      deb)
        glob=$(profile_value "$f" busybox deb)
        if [[ ! "$glob" =~ ^([a-z0-9][a-z0-9.+-]*)_\*_([a-z0-9-]+)\.deb$ ]]; then
          echo "setup: $f: busybox.deb '$glob' is not <package>_*_<debian arch>.deb" >&2
          return 1
        fi
        echo "deb $arch ${BASH_REMATCH[1]}:${BASH_REMATCH[2]} $glob"
        ;;
      build)
        glob=$(profile_value "$f" busybox dsc)
        if [[ ! "$glob" =~ ^([a-z0-9][a-z0-9.+-]*)_\*\.dsc$ ]]; then
          echo "setup: $f: busybox.dsc '$glob' is not <source package>_*.dsc" >&2
          return 1
        fi
        echo "src $arch ${BASH_REMATCH[1]} $glob"
        ;;
    esac
  done
}

fetches=$(busybox_fetches)  # set -e: a profile this cannot read stops setup here
if [ "${1:-}" = --print-busybox-fetches ]; then
  echo "$fetches"
  exit 0
fi

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

kto_cache="${KTO_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/kto}"

# Source packages (`apt-get source`) need a deb-src entry; Debian images often have none.
deb_src_ready=""
ensure_deb_src() {
  local pkg=$1
  [ -z "$deb_src_ready" ] || return 0
  if ! apt-get source --download-only --print-uris "$pkg" >/dev/null 2>&1; then
    echo "setup: adding a deb-src entry for bookworm main ($pkg source)"
    printf '%s\n' 'Types: deb-src' 'URIs: http://deb.debian.org/debian' \
      'Suites: bookworm' 'Components: main' \
      'Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg' |
      $SUDO tee /etc/apt/sources.list.d/kto-deb-src.sources >/dev/null
    $SUDO apt-get update -qq
  fi
  deb_src_ready=1
}

while read -r kind arch what glob; do
  case "$kind" in
    deb)
      # a foreign arch's busybox-static: downloaded, not installed (it would clash with the
      # host's); apt needs the arch's package lists for that
      cache="$kto_cache/debs"
      # $glob unquoted here and below: it is a glob, matched against the fetched files
      if ! ls "$cache"/$glob >/dev/null 2>&1; then
        debarch=${what#*:}
        if [ "$debarch" != "$(dpkg --print-architecture)" ] &&
          ! dpkg --print-foreign-architectures | grep -qx "$debarch"; then
          $SUDO dpkg --add-architecture "$debarch"
          $SUDO apt-get update -qq
        fi
        mkdir -p "$cache"
        (cd "$cache" && apt-get download -qq "$what")
        echo "setup: fetched $(ls "$cache"/$glob) ($arch busybox)"
      fi
      ;;
    src)
      # an arch Debian main does not ship (sparc64): kto cross-builds busybox-static from
      # Debian's own source package (same version and config as the other arches' binaries)
      # on first use; setup only fetches the source
      srcdir="$kto_cache/$what/src"
      if ! ls "$srcdir"/$glob >/dev/null 2>&1; then
        ensure_deb_src "$what"
        mkdir -p "$srcdir"
        (cd "$srcdir" && apt-get source --download-only -qq "$what")
        echo "setup: fetched $(ls "$srcdir"/$glob) ($arch busybox)"
      fi
      ;;
  esac
done <<<"$fetches"

# The guest's sshd for `kto boot --network`: kto cross-builds a static dropbear per arch from
# Debian's source package on first use; setup only fetches the source.
dbdir="$kto_cache/dropbear/src"
if ! ls "$dbdir"/dropbear_*.dsc >/dev/null 2>&1; then
  ensure_deb_src dropbear
  mkdir -p "$dbdir"
  (cd "$dbdir" && apt-get source --download-only -qq dropbear 2>&1 | grep -v "unsandboxed" || true)
  echo "setup: fetched $(ls "$dbdir"/dropbear_*.dsc)"
fi
