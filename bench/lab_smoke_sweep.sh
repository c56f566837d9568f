#!/usr/bin/env bash
# How far the lab smoke test's rates move with the CPU: for each CPU code path
# (ATEN_CPU_CAPABILITY avx512 | avx2 | default, or MKL_CBWR=COMPATIBLE), build the
# tiny lab on that path, then run tests/lab/check_lab_pipeline.py (the CTest
# lab_pipeline_smoke) at 1 and 2 threads over several pipeline seeds. One JSON
# line per run goes to bench/results/lab_smoke.jsonl (committed; --out another
# file); bench/lab_smoke_report.py turns it into the table of docs/lab.md ("The
# smoke test"). Labs and logs go to $BUILD/lab-smoke-sweep/.
#
# Usage: bench/lab_smoke_sweep.sh [--out FILE] [--paths "avx512 avx2 default cbwr"]
#          [--threads "1 2"] [--seeds "0 1 2 3"] [-- extra check_lab_pipeline.py flags]
# About 45 s per run and a minute per lab on 2 cores. A run already in the JSONL is skipped.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
RESULTS=bench/results/lab_smoke.jsonl PATHS="avx512 avx2 default cbwr" THREADS="1 2" SEEDS="0 1 2 3"
while [ $# -gt 0 ]; do
  case $1 in
    --out) RESULTS=$2; shift 2 ;;
    --paths) PATHS=$2; shift 2 ;;
    --threads) THREADS=$2; shift 2 ;;
    --seeds) SEEDS=$2; shift 2 ;;
    --) shift; break ;;
    *) echo "unknown argument $1" >&2; exit 2 ;;
  esac
done
WORK=$BUILD/lab-smoke-sweep
mkdir -p "$WORK/labs" "$WORK/logs" "$(dirname "$RESULTS")"
touch "$RESULTS"
commit=$(git rev-parse --short HEAD)
cpu=$(grep -m1 "model name" /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')
for path in $PATHS; do
  case $path in
    cbwr) envs=(MKL_CBWR=COMPATIBLE) ;;
    *) envs=(ATEN_CPU_CAPABILITY="$path") ;;
  esac
  lab=$WORK/labs/$path
  if [ ! -f "$lab/lab.json" ]; then
    echo "lab: $path"
    env "${envs[@]}" "$BUILD/character" lab build --size tiny --dir "$lab" --force --threads 1 > "$WORK/logs/lab-$path.log" 2>&1
  fi
  for threads in $THREADS; do
    for seed in $SEEDS; do
      id="$path-t$threads-s$seed"
      if grep -q "\"id\": \"$id\"" "$RESULTS"; then continue; fi
      result=$WORK/logs/$id.json
      rm -f "$result"
      env "${envs[@]}" OMP_NUM_THREADS="$threads" .venv/bin/python tests/lab/check_lab_pipeline.py \
          --character "$BUILD/character" --lab-dir "$lab" --seed "$seed" --result "$result" "$@" \
          > "$WORK/logs/$id.log" 2>&1 || true
      [ -f "$result" ] || { echo "$id: no result, see $WORK/logs/$id.log" >&2; exit 1; }
      .venv/bin/python -c "
import json, sys
r = json.load(open(sys.argv[1]))
print(json.dumps({'id': sys.argv[2], 'path': sys.argv[3], 'threads': int(sys.argv[4]), **r,
                  'commit': sys.argv[5], 'cpu': sys.argv[6]}))" "$result" "$id" "$path" "$threads" "$commit" "$cpu" >> "$RESULTS"
      tail -1 "$RESULTS"
    done
  done
done
.venv/bin/python bench/lab_smoke_report.py "$RESULTS" docs/lab.md
