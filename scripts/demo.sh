#!/usr/bin/env bash
# Set up if needed, then run camera -> depth node -> sink as a real ROS 2 graph for 30 s.
# Colorized depth lands in ./demo_out; the sink prints the frame rate. Extra arguments go to
# `depth-anything-ros demo` (e.g. --model depth_anything_v2_vits.onnx --seconds 60).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/depth-anything-ros demo "$@"
