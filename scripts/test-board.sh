#!/usr/bin/env bash
# The tests that can run on the RDK S100's Python stack (Python 3.10, numpy 1.21.5, OpenCV 4.5.4,
# ROS 2 wheels), in ./.venv-board. Test models are built by the main environment first: run
# scripts/test.sh before this one with the same DEPTH_TEST_MODELS, or pass the folder holding them.
set -euo pipefail
cd "$(dirname "$0")/.."
: "${DEPTH_TEST_MODELS:?set DEPTH_TEST_MODELS to the folder where scripts/test.sh built the test models}"
export DEPTH_TEST_MODELS
VENV=${BOARD_VENV:-.venv-board}
PYTHON=${BOARD_PYTHON:-}
if [ -z "$PYTHON" ]; then
  for candidate in "$(pyenv root 2>/dev/null)/versions/3.10.13/bin/python3.10" "$HOME/.pyenv/versions/3.10.13/bin/python3.10" \
                   "$(command -v python3.10 || true)"; do
    if [ -n "$candidate" ] && [ -x "$candidate" ]; then PYTHON=$candidate; break; fi
  done
fi
if [ -z "$PYTHON" ]; then
  echo "test-board: no Python 3.10 found (looked for pyenv's 3.10.13 and python3.10 on PATH)." >&2
  echo "test-board: install it (pyenv install 3.10.13) or set BOARD_PYTHON=/path/to/python3.10" >&2
  exit 1
fi
stamp="$VENV/.depth_anything_ros-setup"
want=$(cat requirements/ros-jazzy.txt requirements/board-py310.txt "$0" | sha256sum | cut -d' ' -f1)
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
  echo "test-board: creating $VENV with $PYTHON (a few minutes the first time)..."
  rm -rf "$VENV"
  "$PYTHON" -m venv "$VENV"
  "$VENV/bin/pip" install -q --upgrade pip
  grep -v '^numpy' requirements/ros-jazzy.txt > "$VENV/ros-without-numpy.txt"
  "$VENV/bin/pip" install -q -r "$VENV/ros-without-numpy.txt" -r requirements/board-py310.txt
  "$VENV/bin/pip" install -q --no-deps onnxruntime==1.23.2
  echo "$want" > "$stamp"
fi
"$VENV/bin/python" - <<'PY'
import sys, numpy, cv2
assert sys.version_info[:2] == (3, 10), sys.version
assert numpy.__version__ == '1.21.5' and cv2.__version__.startswith('4.5.4'), (numpy.__version__, cv2.__version__)
print(f'test-board: Python {sys.version.split()[0]}, numpy {numpy.__version__}, OpenCV {cv2.__version__}')
PY
# The compiled kernels for this Python, in place beside the main job's (each .so is named for its Python).
"$VENV/bin/python" setup.py -q build_ext --inplace
status=0
bash scripts/pytest.sh "$VENV/bin/python" -m "not dev_tools" "$@" || status=$?
# The per-stage CPU table on the board's library versions (printed, never asserted), with the
# dynamic test model the main job built, so the Arm figure can be estimated before a board exists.
# The folder test/helpers/models.py keeps them in: the hash of the builders (its BUILDERS).
builders=$(cat depth_anything_ros/torch_models/build.py depth_anything_ros/torch_models/da3_build.py | sha256sum | cut -c1-12)
model="$DEPTH_TEST_MODELS/$builders/tiny_dynamic.onnx"
if [ -f "$model" ]; then
  for encoding in bgr8 nv12; do
    PYTHONPATH=. "$VENV/bin/python" -m depth_anything_ros.cli bench --model "$model" --what stages \
      --camera-size 1920x1080 --encoding "$encoding" --frames 20 || status=1
  done
else
  echo "test-board: no $model for the stage table: run scripts/test.sh with the same DEPTH_TEST_MODELS" >&2
fi
exit "$status"
