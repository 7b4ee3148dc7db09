#!/bin/sh
# Install the Debian packages dcm needs. As root it installs what is
# missing; otherwise it prints the exact apt-get line to run.
PKGS="build-essential pkg-config libgsl-dev libopenblas-dev libopenblas-pthread-dev libfftw3-dev libnifti2-dev libcunit1-dev libjansson-dev libmatio-dev zlib1g-dev valgrind libcairo2-dev fonts-dejavu-core chromium libopenmpi-dev openmpi-bin python3 python3-venv python3-pip python3-setuptools python3-numpy python3-pytest python3-nibabel"
missing=""
for p in $PKGS; do
    dpkg -s "$p" >/dev/null 2>&1 || missing="$missing $p"
done
[ -z "$missing" ] && exit 0
if [ "$(id -u)" -eq 0 ]; then
    echo "setup: installing$missing"
    export DEBIAN_FRONTEND=noninteractive
    { apt-get update -qq && apt-get install -y -qq $missing >/dev/null; } || {
        echo "setup: apt-get install failed; run: apt-get install -y$missing" >&2; exit 1; }
else
    echo "setup: missing packages; run as root:" >&2
    echo "  sudo apt-get install -y$missing" >&2
    exit 1
fi
