#!/usr/bin/env bash
# `make conformance`: reference checks too heavy for `make test`'s 20-minute budget.
# Today: the whole test suite, `init-model` against transformers on the `small`
# presets of every architecture (bigger than the tiny models `make test` uses), and a
# whole `character pipeline` run whose exports PEFT, tinker-cookbook and transformers load.
set -euo pipefail
cd "$(dirname "$0")/../.."
BUILD=${1:-build}
FIXTURES=$(realpath "${2:-$BUILD/fixtures}")
(cd "$BUILD" && CHARACTER_FIXTURES=$FIXTURES ctest --output-on-failure -j "$(nproc)")
PYTHONPATH=tools/oracle .venv/bin/python tools/oracle/check_init_model.py \
  --character "$BUILD/character" --preset small
PYTHONPATH=tools/oracle .venv/bin/python tools/oracle/check_pipeline_exports.py --character "$BUILD/character"
