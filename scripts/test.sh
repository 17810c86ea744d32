#!/usr/bin/env bash
# Set up if needed, then run the whole test suite. "No tests collected" is a failure.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
.venv/bin/ruff check .  # lint first: seconds, and a failure says where
exec bash scripts/pytest.sh .venv/bin/python "$@"
