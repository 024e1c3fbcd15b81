#!/usr/bin/env bash
# Prints, one a line, the Debian packages that hold the shared libraries BINARY links (ldd, then dpkg -S): what
# the container image's runtime stage installs. Usage: scripts/runtime-packages.sh BINARY
set -euo pipefail
binary=${1:?usage: scripts/runtime-packages.sh BINARY}
owner() {
  # usrmerge: a library ldd finds under /lib may be registered under /usr/lib, or the other way round.
  local path=$1 real found
  real=$(realpath "$path")
  for candidate in "$path" "$real" "/usr$path" "/usr$real" "${path#/usr}" "${real#/usr}"; do
    if found=$(dpkg -S "$candidate" 2>/dev/null); then echo "${found%%:*}"; return; fi
  done
  echo "runtime-packages: no Debian package holds $path (linked by $binary)" >&2
  return 1
}
ldd "$binary" | awk '$2 == "=>" && $3 ~ /^\// { print $3 }' | while read -r library; do owner "$library"; done | sort -u
