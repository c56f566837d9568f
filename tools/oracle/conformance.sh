#!/usr/bin/env bash
# `make conformance`: reference checks too heavy for `make test`'s 20-minute budget.
# Today: the whole test suite plus the engine against transformers on the `small`
# presets of every architecture (bigger than the tiny fixture models).
set -euo pipefail
cd "$(dirname "$0")/../.."
BUILD=${1:-build}
FIXTURES=${2:-$BUILD/fixtures}
(cd "$BUILD" && CHARACTER_FIXTURES=$(realpath "../$FIXTURES" 2>/dev/null || realpath "$FIXTURES") ctest --output-on-failure -j "$(nproc)")
CHECK_PRESET=small PYTHONPATH=tools/oracle .venv/bin/python tools/oracle/check_init_model.py \
  --character "$BUILD/character" --fixtures "$FIXTURES" --preset small
