#!/bin/sh
# make test (its last step): the Python package in a fresh virtual
# environment made from Debian's python3 with its numpy and pytest, installed
# offline exactly as MANUAL chapter 18 says, then its pytest tests.
# Skips (exit 0, with the reason) when no python3 has numpy, pytest and venv;
# a failing test fails make test. Usage: test_python.sh BUILD_DIR
B=${1:-build}
py=""
for cand in /usr/bin/python3 python3; do
    if command -v "$cand" >/dev/null 2>&1 &&
       "$cand" -c 'import numpy, pytest, venv, ensurepip' >/dev/null 2>&1; then
        py=$cand; break
    fi
done
if [ -z "$py" ]; then
    echo "SKIP: [python] no python3 with numpy, pytest and venv (scripts/setup.sh installs python3-numpy python3-pytest python3-venv)"
    exit 0
fi
venv="$B/pyvenv"
rm -rf "$venv"
"$py" -m venv --system-site-packages "$venv" || { echo "test_python: cannot make $venv" >&2; exit 1; }
"$venv/bin/pip" install -q --no-index --no-build-isolation ./python ||
    { echo "test_python: pip install ./python failed" >&2; exit 1; }
rm -rf python/build python/dcm.egg-info
# the installed package, not the source folder, is what the tests import
cd python/tests && exec "../../$venv/bin/python" -m pytest -q -p no:cacheprovider .
