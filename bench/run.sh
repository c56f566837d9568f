#!/usr/bin/env bash
# Engine throughput against transformers, side by side in one run, on the same
# random-weight models (`character init-model --preset small`) and the same
# thread count. Prints the table and writes it between the markers of
# docs/benchmarks.md. Usage: bench/run.sh BUILD_DIR FIXTURES_DIR
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${1:-build}
FIXTURES=${2:-$BUILD/fixtures}
PY=.venv/bin/python
THREADS=${BENCH_THREADS:-$(nproc)}
MODELS=$BUILD/bench-models
RESULTS=$BUILD/bench-results.jsonl
mkdir -p "$MODELS"
: > "$RESULTS"

tokenizer_dir() {  # real tokenizer files, unpacked by the oracle
  echo "$FIXTURES/tokenizers/$1"
}
PYTHONPATH=tools/oracle $PY -c "
import oracle_common as o, pathlib
for f in ('qwen3', 'llama3_1'): o.unpacked_tokenizer(f, pathlib.Path('$FIXTURES'))"

declare -A TOKENIZER=([llama]=llama3_1 [qwen3]=qwen3 [qwen3_moe]=qwen3 [mixtral]=llama3_1 [olmoe]=qwen3)
for arch in ${BENCH_ARCHS:-llama qwen3_moe mixtral olmoe}; do
  dir=$MODELS/$arch-small
  [ -f "$dir/config.json" ] || "$BUILD/character" init-model --arch "$arch" --preset small \
      --tokenizer "$(tokenizer_dir "${TOKENIZER[$arch]}")" --seed 0 "$dir" >/dev/null
  for shape in "--batch 1 --prompt-len 128 --decode-steps 32" "--batch 4 --prompt-len 64 --decode-steps 16"; do
    # Alternate the two engines so that machine noise hits both alike.
    for round in 1 2; do
      "$BUILD/bench/engine_bench" "$dir" $shape --threads "$THREADS" --repeats 3 >> "$RESULTS"
      $PY bench/bench_transformers.py "$dir" $shape --threads "$THREADS" --repeats 3 >> "$RESULTS"
    done
  done
done
$PY bench/report.py "$RESULTS" docs/benchmarks.md
