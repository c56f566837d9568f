#!/usr/bin/env bash
# Engine throughput against transformers, side by side in one run, on the same
# random-weight models (`character init-model --preset small`, and the deep MoE
# of bench/make_deep_moe.py) and the same
# thread count; then `character train` against PEFT/TRL (bench/train_bench.py).
# Prints the tables and writes them between the markers of docs/benchmarks.md.
# Usage: bench/run.sh BUILD_DIR FIXTURES_DIR
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

# Tags each JSON result line with the model's preset, so report.py keeps the
# small and deep qwen3_moe apart.
tag() { $PY -c 'import json, sys; [print(json.dumps({**json.loads(l), "preset": sys.argv[1]})) for l in sys.stdin if l.strip()]' "$1"; }

declare -A TOKENIZER=([llama]=llama3_1 [qwen3]=qwen3 [qwen3_moe]=qwen3 [mixtral]=llama3_1 [olmoe]=qwen3)
# arch-small: `character init-model --preset small`. qwen3_moe-deep: layers that
# outweigh the lm_head ~10:1 as in Qwen3-30B-A3B (bench/make_deep_moe.py says why).
for model in ${BENCH_MODELS:-llama-small qwen3_moe-small mixtral-small olmoe-small qwen3_moe-deep}; do
  arch=${model%-*} preset=${model##*-}
  dir=$MODELS/$model
  if [ ! -f "$dir/config.json" ]; then
    if [ "$preset" = deep ]; then
      $PY bench/make_deep_moe.py "$dir" >/dev/null
    else
      "$BUILD/character" init-model --arch "$arch" --preset "$preset" \
          --tokenizer "$(tokenizer_dir "${TOKENIZER[$arch]}")" --seed 0 "$dir" >/dev/null
    fi
  fi
  for shape in "--batch 1 --prompt-len 128 --decode-steps 32" "--batch 4 --prompt-len 64 --decode-steps 16"; do
    # Alternate the two engines so that machine noise hits both alike.
    for round in 1 2; do
      "$BUILD/bench/engine_bench" "$dir" $shape --threads "$THREADS" --repeats 3 | tag "$preset" >> "$RESULTS"
      $PY bench/bench_transformers.py "$dir" $shape --threads "$THREADS" --repeats 3 | tag "$preset" >> "$RESULTS"
    done
  done
done
$PY bench/report.py "$RESULTS" docs/benchmarks.md

# Training: `character train` against PEFT + transformers (SFT) and TRL's
# DPOTrainer (DPO) on the same rows, adapters, steps and threads
# (bench/train_bench.py says how it measures). BENCH_TRAIN=0 skips it.
if [ "${BENCH_TRAIN:-1}" = 1 ]; then
  TRAIN_MODELS=()
  for arch in qwen3 qwen3_moe; do
    dir=$MODELS/$arch-small
    [ -f "$dir/config.json" ] || "$BUILD/character" init-model --arch "$arch" --preset small \
        --tokenizer "$(tokenizer_dir qwen3)" --seed 0 "$dir" >/dev/null
    TRAIN_MODELS+=(--model "$dir")
  done
  rm -rf "$BUILD/train-bench"
  $PY bench/train_bench.py --character "$BUILD/character" "${TRAIN_MODELS[@]}" --work "$BUILD/train-bench" \
      --threads "$THREADS" --repeats "${BENCH_TRAIN_REPEATS:-3}" > "$BUILD/train-bench-results.jsonl"
  $PY bench/train_report.py "$BUILD/train-bench-results.jsonl" docs/benchmarks.md
fi
