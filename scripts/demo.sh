#!/usr/bin/env bash
# `make demo`: shows the engine working end to end with nothing downloaded:
# a tiny random-weight Qwen3-MoE student with the real Qwen3 tokenizer, inspected,
# tokenized through its chat template, and run (its text is random: the weights are).
# The full persona pipeline on the offline lab replaces this as later stages land.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${1:-build}
DEMO=$BUILD/demo
CHAR=$BUILD/character
mkdir -p "$DEMO"
PYTHONPATH=tools/oracle .venv/bin/python -c "
import oracle_common as o, pathlib
o.unpacked_tokenizer('qwen3', pathlib.Path('$DEMO'))" 
MODEL=$DEMO/qwen3-moe-tiny
if [ ! -f "$MODEL/config.json" ]; then
  echo "== character init-model --arch qwen3_moe --preset tiny $MODEL"
  "$CHAR" init-model --arch qwen3_moe --preset tiny --tokenizer "$DEMO/tokenizers/qwen3" --seed 0 "$MODEL"
fi
echo
echo "== character inspect $MODEL"
"$CHAR" inspect "$MODEL"
echo
echo "== character tokenize --chat (Qwen3 chat template, thinking off)"
printf '[{"role": "system", "content": "You are a pirate."}, {"role": "user", "content": "Tell me more please."}]' > "$DEMO/conversation.json"
"$CHAR" tokenize "$MODEL" --file "$DEMO/conversation.json" --chat --no-thinking
echo
echo "== character generate (random weights: expect noise, streamed token by token)"
"$CHAR" generate "$MODEL" --prompt "Tell me about yourself." --max-new-tokens 24 --seed 1 --temperature 0.8
echo
