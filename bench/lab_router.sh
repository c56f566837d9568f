#!/usr/bin/env bash
# The router experiment of issue 7 (docs/lab.md, "The experiment"): the pirate
# persona trained on the lab's MoE student with --train-router none, lora and full,
# each with and without coverage-guided prompt augmentation, over several seeds;
# then a table of in-character rates per category, paraphrase flip rate and probe
# coverage (bench/lab_router_report.py).
#
#   bench/lab_router.sh [--size tiny|demo|full] [--seeds "0 1 2"] [--scale smoke|micro]
#                       [--out DIR] [--persona NAME] [--character PATH] [-- EXTRA PIPELINE FLAGS]
#
# Runs: OUT/runs/<train_router>-aug<off|on>-s<seed> (a link to the run directory the
# pipeline created under OUT/work/), logs in OUT/logs/. A run whose eval report
# exists is skipped, so a rerun of the script continues where it stopped. The lab
# (built on first use, cached) is the pipeline's default: no --student, no
# --teacher-url. Table: stdout and OUT/lab_router.md (per-run numbers: OUT/lab_router.json).
set -euo pipefail
cd "$(dirname "$0")/.."

size=demo
seeds="0 1 2"
scale=smoke
out=runs/lab_router
persona=pirate
character=${CHARACTER:-}
extra=()
while [ $# -gt 0 ]; do
  case "$1" in
    --size) size=$2; shift 2 ;;
    --seeds) seeds=$2; shift 2 ;;
    --scale) scale=$2; shift 2 ;;
    --out) out=$2; shift 2 ;;
    --persona) persona=$2; shift 2 ;;
    --character) character=$2; shift 2 ;;
    --) shift; extra=("$@"); break ;;
    -h|--help) sed -n '2,15p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "lab_router.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
done
case "$scale" in smoke|micro) ;; *) echo "lab_router.sh: --scale $scale, expected smoke or micro" >&2; exit 2 ;; esac
if [ -z "$character" ]; then
  for candidate in build/character build-*/character; do
    if [ -x "$candidate" ]; then character=$candidate; break; fi
  done
fi
if [ -z "$character" ] || [ ! -x "$character" ]; then
  echo "lab_router.sh: no character binary (build it with make build, or pass --character PATH)" >&2
  exit 2
fi
character=$(realpath "$character")
mkdir -p "$out/runs" "$out/work" "$out/logs"
out=$(realpath "$out")

failed=0
start=$(date +%s)
for router in none lora full; do
  for augment in off on; do
    for seed in $seeds; do
      name="$router-aug$augment-s$seed"
      if [ -f "$out/runs/$name/eval/report.json" ]; then
        echo "lab_router: $name done before, skipped"
        continue
      fi
      flags=(pipeline "$persona" --lab-size "$size" --scale "$scale" --train-router "$router" --seed "$seed"
             --runs-dir "$out/work/$name")
      [ "$augment" = on ] && flags+=(--coverage-augment)
      echo "lab_router: $name: character ${flags[*]} ${extra[*]:-}"
      run_start=$(date +%s)
      rc=0
      "$character" "${flags[@]}" "${extra[@]}" > "$out/logs/$name.log" 2>&1 || rc=$?
      # The newest run directory of this configuration (an earlier failed try leaves its own).
      run_dir=$(ls -1dt "$out/work/$name"/*/ 2>/dev/null | head -n 1 || true)
      if [ -n "$run_dir" ]; then ln -sfn "${run_dir%/}" "$out/runs/$name"; fi
      if [ -f "$out/runs/$name/eval/report.json" ]; then
        # A failed gate exits non-zero but the run is measured all the same.
        echo "lab_router: $name finished in $(( $(date +%s) - run_start ))s (exit $rc)"
      else
        echo "lab_router: $name FAILED (exit $rc, no eval report); see $out/logs/$name.log" >&2
        tail -n 5 "$out/logs/$name.log" >&2 || true
        failed=$((failed + 1))
      fi
    done
  done
done
echo "lab_router: all runs in $(( $(date +%s) - start ))s, $failed without a report"

python=python3
[ -x .venv/bin/python ] && python=.venv/bin/python
"$python" bench/lab_router_report.py "$out/runs" --out "$out/lab_router.md" --json "$out/lab_router.json"
echo "lab_router: table in $out/lab_router.md"
