#!/usr/bin/env bash
# Writes the reference fixtures that the C++ tests compare against, by running
# every tools/oracle/fixtures_*.py with the reference implementations in .venv.
# A script is rerun only when it (or an oracle script it imports, or the shared
# oracle code, or the pinned requirements) changed since its last successful run.
set -euo pipefail
cd "$(dirname "$0")/../.."
OUT=${1:-build/fixtures}
mkdir -p "$OUT"
PY=.venv/bin/python
shared_hash=$(cat tools/oracle/requirements.txt tools/oracle/oracle_common.py 2>/dev/null | sha256sum | cut -d' ' -f1)
shopt -s nullglob

# The fixtures_*.py files a script imports, directly or through each other.
oracle_imports() {
  local seen="" todo="$1" next file
  while [ -n "$todo" ]; do
    next=""
    for file in $todo; do
      for dep in $(sed -nE 's/^(from|import) +(fixtures_[a-z0-9_]+).*/tools\/oracle\/\2.py/p' "$file"); do
        case " $seen " in *" $dep "*) ;; *) seen="$seen $dep"; next="$next $dep" ;; esac
      done
    done
    todo=$next
  done
  echo "$seen" | tr ' ' '\n' | sort -u
}
for script in tools/oracle/fixtures_*.py; do
  name=$(basename "$script" .py)
  stamp="$OUT/.$name.stamp"
  # Oracle modules this script imports, transitively (fixtures_losses → fixtures_lora → fixtures_models).
  imported=$(oracle_imports "$script")
  want=$( (cat "$script" $imported; echo "$shared_hash") | sha256sum | cut -d' ' -f1)
  if [ "$(cat "$stamp" 2>/dev/null)" = "$want" ]; then
    continue
  fi
  echo "oracle: $name"
  start=$(date +%s)
  PYTHONPATH=tools/oracle "$PY" "$script" --out "$OUT"
  echo "$want" > "$stamp"
  echo "oracle: $name done in $(( $(date +%s) - start ))s"
done
