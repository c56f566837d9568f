#!/usr/bin/env bash
# Engine throughput against transformers, side by side in one run, on the same
# random-weight models (`character init-model --preset small`, and the deep MoE
# of bench/make_deep_moe.py) and the same
# thread count; then `character train` against PEFT/TRL (bench/train_bench.py).
# The raw results go to bench/results/{engine,train}.jsonl (committed beside the
# tables), every line with the machine and commit it was measured on; the tables
# are written between the markers of docs/benchmarks.md from those files alone.
# Usage: bench/run.sh BUILD_DIR FIXTURES_DIR
#   BENCH_ROUNDS (5): alternated rounds per engine row; BENCH_TRAIN_REPEATS (5);
#   BENCH_THREADS (nproc); BENCH_MODELS; BENCH_TRAIN=0 skips the training bench.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${1:-build}
FIXTURES=${2:-$BUILD/fixtures}
PY=.venv/bin/python
THREADS=${BENCH_THREADS:-$(nproc)}
MODELS=$BUILD/bench-models
RESULTS_DIR=bench/results
RESULTS=$RESULTS_DIR/engine.jsonl
ROUNDS=${BENCH_ROUNDS:-5}
mkdir -p "$MODELS" "$RESULTS_DIR"
: > "$RESULTS.tmp"

# What and where: recorded in every result line (report.py prints it above the table).
dirty=$(git diff --quiet HEAD -- . ':!docs/benchmarks.md' ':!bench/results' 2>/dev/null || echo "+dirty")
export BENCH_MACHINE=$($PY -c "
import json, os, platform, subprocess, datetime
cpu = next((l.split(':', 1)[1].strip() for l in open('/proc/cpuinfo') if l.startswith('model name')), platform.processor())
print(json.dumps({'date': datetime.datetime.now(datetime.timezone.utc).strftime('%Y-%m-%d'),
                  'commit': subprocess.run(['git', 'rev-parse', '--short', 'HEAD'], capture_output=True, text=True).stdout.strip() + '$dirty',
                  'cpu': cpu, 'cores': os.cpu_count(), 'threads': int('$THREADS')}))")
echo "bench: $BENCH_MACHINE"

tokenizer_dir() {  # real tokenizer files, unpacked by the oracle
  echo "$FIXTURES/tokenizers/$1"
}
PYTHONPATH=tools/oracle $PY -c "
import oracle_common as o, pathlib
for f in ('qwen3', 'llama3_1'): o.unpacked_tokenizer(f, pathlib.Path('$FIXTURES'))"

# Tags each JSON result line with the model's preset (report.py keeps the small and
# deep qwen3_moe apart), the round and the machine.
tag() { $PY -c 'import json, os, sys; [print(json.dumps({**json.loads(l), "preset": sys.argv[1], "round": int(sys.argv[2]), "machine": json.loads(os.environ["BENCH_MACHINE"])})) for l in sys.stdin if l.strip()]' "$1" "$2"; }

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
    for round in $(seq 1 "$ROUNDS"); do
      "$BUILD/bench/engine_bench" "$dir" $shape --threads "$THREADS" --repeats 3 | tag "$preset" "$round" >> "$RESULTS.tmp"
      $PY bench/bench_transformers.py "$dir" $shape --threads "$THREADS" --repeats 3 | tag "$preset" "$round" >> "$RESULTS.tmp"
    done
  done
done
mv "$RESULTS.tmp" "$RESULTS"
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
      --threads "$THREADS" --repeats "${BENCH_TRAIN_REPEATS:-5}" > "$RESULTS_DIR/train.jsonl.tmp"
  mv "$RESULTS_DIR/train.jsonl.tmp" "$RESULTS_DIR/train.jsonl"
  $PY bench/train_report.py "$RESULTS_DIR/train.jsonl" docs/benchmarks.md
fi
