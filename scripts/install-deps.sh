#!/usr/bin/env bash
# install-deps.sh — install headscope's Debian build/test dependencies, idempotently.
# Called by `make demo`, `make deps` and .ci/run. Installs only what is missing, so a
# warm machine pays nothing. CUDA is not installed here: nvcc is optional (see docs/gpu.md).
set -euo pipefail
PKGS="build-essential pkg-config libsqlite3-dev sqlite3 libcjson-dev libopenblas-dev liblapacke-dev
      libpcre2-dev libsdl2-dev libsdl2-ttf-dev libsdl2-image-dev clang libclang-rt-14-dev python3
      fonts-dejavu-core xvfb xdotool"
missing=""
for p in $PKGS; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
if [ -z "$missing" ]; then
  echo "install-deps: all packages present"; exit 0
fi
echo "install-deps: installing:$missing"
SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
# shellcheck disable=SC2086
$SUDO apt-get install -y -qq --no-install-recommends $missing
