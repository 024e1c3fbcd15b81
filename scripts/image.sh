#!/usr/bin/env bash
# Builds the Phalanx container image (Containerfile) with podman, without any registry: the Debian 12 base comes
# from debootstrap and is imported as a local image once. Prints the image's name, size and `phalanx --version`.
#
#   scripts/image.sh                      compile inside the image's build stage: portable x86-64 + AVX-512 kernels
#   scripts/image.sh --prebuilt BINARY    package a phalanx binary already built on this Debian 12 machine
#   scripts/image.sh --tag NAME:TAG       the image's name (default localhost/phalanx:VERSION)
#   scripts/image.sh --save FILE.tar      also write it as an OCI archive, to load into a cluster's nodes or registry
#
# podman runs with scripts/containers.conf (runc, cgroupfs, explicit ulimits: ../shared/PLATFORM.md); set
# CONTAINERS_CONF to it for your own podman commands on the same storage.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD
export CONTAINERS_CONF=${CONTAINERS_CONF:-$repo/scripts/containers.conf}

usage() { sed -n '2,12p' "$0" | sed 's/^# \{0,1\}//'; }
prebuilt="" tag="" save=""
while [ $# -gt 0 ]; do
  case "$1" in
    --prebuilt) prebuilt=${2:?--prebuilt needs a BINARY}; shift 2 ;;
    --tag) tag=${2:?--tag needs NAME:TAG}; shift 2 ;;
    --save) save=${2:?--save needs FILE.tar}; shift 2 ;;
    -h|--help) usage; exit 0 ;;
    *) echo "image.sh: unknown argument '$1'" >&2; usage >&2; exit 2 ;;
  esac
done
version=$(sed -n 's/^project(phalanx VERSION \([0-9.]*\).*/\1/p' CMakeLists.txt)
commit=$(git rev-parse --short=12 HEAD 2>/dev/null || echo unknown)
tag=${tag:-localhost/phalanx:$version}
base=localhost/phalanx-base:bookworm
work=$repo/build-image
mkdir -p "$work"

# The base: a minimal Debian 12 with the release's updates and security sources, made once.
if ! podman image exists "$base"; then
  echo "image.sh: making $base with debootstrap"
  rootfs=$work/rootfs
  rm -rf "$rootfs"
  debootstrap --variant=minbase bookworm "$rootfs" http://deb.debian.org/debian >"$work/debootstrap.log"
  cat >"$rootfs/etc/apt/sources.list" <<'SOURCES'
deb http://deb.debian.org/debian bookworm main
deb http://deb.debian.org/debian bookworm-updates main
deb http://deb.debian.org/debian-security bookworm-security main
SOURCES
  rm -rf "$rootfs"/var/cache/apt/archives/*.deb
  tar -C "$rootfs" -c . | podman import --change 'ENV PATH=/usr/sbin:/usr/bin:/sbin:/bin' - "$base" >/dev/null
  rm -rf "$rootfs"
fi

build_args=(--build-arg "BASE=$base" --build-arg "PHX_VERSION=$version" --build-arg "PHX_COMMIT=$commit")
if [ -n "$prebuilt" ]; then
  # A context of just the binary and its runtime packages; the ISA label says what this binary was built for.
  [ -x "$prebuilt" ] || { echo "image.sh: --prebuilt $prebuilt is not an executable" >&2; exit 2; }
  context=$work/prebuilt-context
  rm -rf "$context" && mkdir -p "$context"
  cp "$prebuilt" "$context/phalanx"
  ./scripts/runtime-packages.sh "$prebuilt" >"$context/runtime-packages.txt"
  isa=$("$prebuilt" --version | sed -n 's/^build: //p')
  build_args+=(--build-arg PHALANX_BUILD=prebuilt --build-arg "PHX_ISA=$isa")
else
  # Named although it is the default: buildah finds the stages a build needs from the arguments it is given.
  build_args+=(--build-arg PHALANX_BUILD=source)
  context=$repo
fi

start=$(date +%s)
podman build --file "$repo/Containerfile" --target runtime --tag "$tag" "${build_args[@]}" "$context"
echo "image.sh: built $tag in $(( $(date +%s) - start )) s"
podman image inspect "$tag" --format 'image.sh: {{.Size}} bytes, labels {{.Labels}}'
podman run --rm "$tag" --version
if [ -n "$save" ]; then
  podman save --format oci-archive --output "$save" "$tag"
  echo "image.sh: saved $tag to $save"
fi
