"""Conformance check for a built persona lab (run by CTest `lab_matches_transformers`).

For the lab's student (qwen3_moe) and teacher (qwen3): transformers'
AutoModelForCausalLM loads the directory with no missing, unexpected or mismatched
tensors and builds the expected class; on a few chat prompts taken from the lab
corpus (the teacher's with the pirate constitution system prompt), the ids of
transformers' apply_chat_template go through both transformers and the engine
(`character generate --dump-logits`, check_init_model.engine_logits) and the
logits agree; `character generate --messages --json --temperature 0` gives the
same ids as transformers' greedy generate. Exit status 0 only when all match.
"""
import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import torch

from check_init_model import engine_logits

# Trained weights give larger logits than a fresh init: compare relative to their scale.
RTOL = 1e-4
NEW_TOKENS = 16
EXPECTED_CLASS = {"student": "Qwen3MoeForCausalLM", "teacher": "Qwen3ForCausalLM"}


def corpus_conversations(lab: Path) -> list:
    """Two generic prompts (no system prompt) and two pirate ones (constitution system prompt)."""
    def rows(name):
        with open(lab / "corpus" / name, encoding="utf-8") as f:
            return [json.loads(line) for line in f if line.strip()]

    generic = [r["messages"] for r in rows("generic.jsonl")][:2]
    pirate = [r["messages"] for r in rows("persona.jsonl") if r.get("persona") == "pirate"][:2]
    if len(generic) < 2 or len(pirate) < 2:
        raise SystemExit(f"{lab}/corpus holds too few conversations to check (generic {len(generic)}, pirate {len(pirate)})")
    # The prompt: everything before the assistant's answer.
    return [[m for m in c if m["role"] != "assistant"] for c in generic + pirate]


def engine_greedy(character: str, model_dir: Path, messages: list, tmp: Path) -> list:
    file = tmp / "messages.json"
    file.write_text(json.dumps(messages), encoding="utf-8")
    run = subprocess.run([character, "generate", str(model_dir), "--messages", str(file), "--json",
                          "--temperature", "0", "--max-new-tokens", str(NEW_TOKENS)],
                         check=True, capture_output=True, text=True)
    return json.loads(run.stdout)["ids"]


def check_model(character: str, lab: Path, name: str, conversations: list, tmp: Path, failures: list) -> None:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model_dir = lab / name
    model, info = AutoModelForCausalLM.from_pretrained(model_dir, output_loading_info=True)
    model.eval()
    for kind in ("missing_keys", "unexpected_keys", "mismatched_keys"):
        if info.get(kind):
            failures.append(f"{name}: transformers reports {kind} {sorted(info[kind])[:5]}")
    if type(model).__name__ != EXPECTED_CLASS[name]:
        failures.append(f"{name}: transformers built {type(model).__name__}, expected {EXPECTED_CLASS[name]}")
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    if not tokenizer.chat_template:
        failures.append(f"{name}: the tokenizer has no chat template")
        return
    eos = tokenizer.convert_tokens_to_ids("<|im_end|>")
    for i, messages in enumerate(conversations):
        if name == "student" and messages[0]["role"] == "system":
            continue  # the student never saw a system prompt; the teacher gets both kinds
        ids = tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=True)
        ids = ids["input_ids"] if isinstance(ids, dict) or hasattr(ids, "keys") else ids
        with torch.no_grad():
            expected = model(torch.tensor([ids])).logits[0].float()  # [T, V]
        ours = engine_logits(character, model_dir, ids)
        err = float((ours - expected).abs().max()) if ours.shape == expected.shape else float("inf")
        scale = float(expected.abs().max())
        print(f"{name} prompt {i}: {len(ids)} tokens, logits max abs error {err:.3g} (max |logit| {scale:.3g})")
        if not err <= RTOL * max(scale, 1.0):
            failures.append(f"{name} prompt {i}: logits differ from transformers by {err:.3g} "
                            f"(tolerance {RTOL} x {scale:.3g})")
        with torch.no_grad():
            out = model.generate(torch.tensor([ids]), attention_mask=torch.ones(1, len(ids), dtype=torch.long),
                                 max_new_tokens=NEW_TOKENS, do_sample=False, eos_token_id=eos,
                                 pad_token_id=tokenizer.pad_token_id)
        expected_ids = out[0, len(ids):].tolist()
        ours_ids = engine_greedy(character, model_dir, messages, tmp)
        same = ours_ids == expected_ids
        print(f"{name} prompt {i}: greedy {len(ours_ids)} tokens, {'equal to' if same else 'DIFFERENT from'} "
              f"transformers: {tokenizer.decode(expected_ids)!r}")
        if not same:
            failures.append(f"{name} prompt {i}: greedy ids {ours_ids} != transformers {expected_ids}")


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--character", required=True)
    parser.add_argument("--lab-dir", required=True, type=Path)
    args = parser.parse_args()
    torch.set_num_threads(1)
    failures = []
    conversations = corpus_conversations(args.lab_dir)
    with tempfile.TemporaryDirectory(prefix="character-lab-check-") as tmp:
        for name in ("student", "teacher"):
            check_model(args.character, args.lab_dir, name, conversations, Path(tmp), failures)
    for f in failures:
        print("FAIL " + f, file=sys.stderr)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
