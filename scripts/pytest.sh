#!/usr/bin/env bash
# pytest with a given Python; "no tests collected" (exit 5) is a failure, never a pass.
# Usage: scripts/pytest.sh PYTHON [pytest arguments...]
set -uo pipefail
python=$1
shift
"$python" -m pytest "$@"
code=$?
if [ "$code" -eq 5 ]; then
  echo "pytest collected no tests: failing" >&2
  exit 1
fi
exit "$code"
