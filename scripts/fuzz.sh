#!/usr/bin/env bash
# `make fuzz`: builds the libFuzzer harnesses of fuzz/ with clang, ASan and UBSan (in
# $FUZZ_BUILD, default build-fuzz/) and runs each for FUZZ_SECONDS (default 60) on its
# seeds, with its dictionary. What a run finds stays out of the repository: new inputs go to
# $FUZZ_BUILD/corpus/<harness>/, crashes to $FUZZ_BUILD/crashes/ (exit 1, the harness named).
# A crash, once fixed, belongs in fuzz/regressions/<harness>/ (replayed by CTest).
#   FUZZ_SECONDS=20 make fuzz            # the short run
#   FUZZ_ONLY="json chat" make fuzz      # some harnesses only
#   FUZZ_RUNS=10000000 make fuzz         # a campaign: a number of executions, not a time
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${FUZZ_BUILD:-build-fuzz}
SECONDS_EACH=${FUZZ_SECONDS:-60}

missing=()
for p in clang libclang-rt-14-dev; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "fuzz: installing ${missing[*]}"
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
fi

CC=clang CXX=clang++ cmake -S . -B "$BUILD" -G Ninja -DCHARACTER_FUZZ=ON -DCMAKE_BUILD_TYPE=None >/dev/null
cmake --build "$BUILD" -j "$(nproc)"

declare -A DICT=([json]=json [config_json]=json [safetensors_index]=json [tokenizer_json]=json
                 [tokenizer_config]=json [chat]=json [server_request]=json [teacher_response]=json
                 [ledger]=json [persona_yaml]=yaml [gate_config]=yaml)
mkdir -p "$BUILD/crashes"
status=0
for harness in "$BUILD"/fuzz/fuzz_*; do
  name=${harness##*/fuzz_}
  if [ -n "${FUZZ_ONLY:-}" ] && [[ " $FUZZ_ONLY " != *" $name "* ]]; then continue; fi
  work=$BUILD/corpus/$name
  mkdir -p "$work"
  args=(-timeout=10 -rss_limit_mb=2048 -max_len=262144 -print_final_stats=1
        -artifact_prefix="$BUILD/crashes/$name-")
  if [ -n "${FUZZ_RUNS:-}" ]; then args+=(-runs="$FUZZ_RUNS"); else args+=(-max_total_time="$SECONDS_EACH"); fi
  [ -n "${DICT[$name]:-}" ] && args+=(-dict="fuzz/dict/${DICT[$name]}.dict")
  echo "== fuzz $name"
  if ! "$harness" "${args[@]}" "$work" "fuzz/corpus/$name" > "$BUILD/$name.log" 2>&1; then
    echo "fuzz $name: FAILED, see $BUILD/$name.log and $BUILD/crashes/$name-*" >&2
    status=1
  fi
  grep -E "stat::number_of_executed_units|stat::peak_rss_mb" "$BUILD/$name.log" | tr '\n' ' '; echo
done
exit $status
