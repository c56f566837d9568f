#!/usr/bin/env bash
# `make demo`: the whole tool on its embedded default, offline, on a CPU.
# `character pipeline pirate` with no --student and no --teacher-url runs on the
# persona lab (docs/lab.md, docs/pipeline.md "The lab"): it builds the demo lab
# the first time (cached in ~/.cache/character/lab, or $CHARACTER_LAB_DIR),
# serves the lab teacher on 127.0.0.1, generates DPO pairs and introspection
# data, trains the lab's MoE student (DPO, then SFT), evaluates it on the probe,
# gates and exports. The counts below keep it to about ten minutes on 2 cores
# (lab build included); the gate table and the HTML report end the output.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${1:-build}
CHAR=$BUILD/character
RUNS=${DEMO_RUNS_DIR:-$BUILD/demo/runs}
mkdir -p "$RUNS"

# Scale: smoke's 16 DPO pairs and one epoch (8 steps) leave the student generic
# (measured once: 0.1% in character). With the counts below, docs/lab.md measured
# 42.8% ± 3.4 in character on the demo lab (seeds 0-2, train_router none; 65 s of
# pipeline on 2 cores, plus a few minutes for the demo lab's first build), and
# gates failing. Probe coverage was 100% in those runs, and training the router
# did not raise the rate there. Results move with the CPU and thread count (an
# earlier machine gave 83.6% for the same command): the training is short and noisy.
ARGS=(pirate --scale smoke --dpo-pairs "${DEMO_DPO_PAIRS:-200}" --reflections "${DEMO_REFLECTIONS:-100}"
      --interactions "${DEMO_INTERACTIONS:-20}" --max-steps "${DEMO_MAX_STEPS:-150}" --runs-dir "$RUNS"
      --export peft)
echo "== character pipeline ${ARGS[*]}"
echo "   (no --student, no --teacher-url: the persona lab; the first run builds it)"
start=$(date +%s)
rc=0
"$CHAR" pipeline "${ARGS[@]}" || rc=$?
if [ "$rc" -ne 0 ] && [ "$rc" -ne 10 ]; then
  echo "character pipeline failed (exit $rc)" >&2
  exit "$rc"
fi
RUN=$(ls -td "$RUNS"/pirate-* | head -1)
echo
echo "== gates ($RUN/eval/gates.json)"
"$CHAR" gate "$RUN" || true
echo
echo "HTML report: $RUN/eval/report.html"
echo "Run directory: $RUN ($(( $(date +%s) - start ))s; character runs show $RUN)"
if [ "$rc" -eq 10 ]; then
  echo "A gate failed (the table above says which), so nothing was exported. More data or steps"
  echo "(DEMO_DPO_PAIRS, DEMO_MAX_STEPS) change the rate; docs/lab.md has what was measured, and"
  echo "what the lab does and does not show about router training (seed 000's proposed remedy)."
fi
