"""References for `character eval` (tests/eval/eval_run_test.cpp): a tiny Qwen3-MoE
student with the real Qwen3 tokenizer and chat template, and what transformers
generates greedily for two chat prompts with thinking off, with the experts its
routers choose on the full sequence (prompt + generated).

  <out>/eval_run/qwen3_moe/          model directory (config.json, bf16 safetensors,
                                     generation_config.json, tokenizer files)
  <out>/eval_run/cases.json          {"model_dir", "moe_layers", "num_experts", "top_k",
      "max_new_tokens", "cases": [{prompt, prompt_ids, ids (generated, stop token
      included), text, finish_reason, margin, topk: [T][L][K] expert ids of every
      position of prompt_ids + ids[:-1], descending router weight}]}

Prompts are apply_chat_template([user], add_generation_prompt=True,
enable_thinking=False) ids, as the probe renders them. Weights are rounded to bf16
and saved so; transformers runs them in float32, as the engine does on CPU. `margin`
is the smallest top-1/top-2 logit gap of the greedy steps.
"""
import shutil

import torch
from transformers import AutoTokenizer, GenerationConfig, Qwen3MoeConfig, Qwen3MoeForCausalLM

from oracle_common import deterministic, parse_out_dir, randomize_bf16_exact, save_bf16, unpacked_tokenizer, write_json_atomic

IM_END = 151645
ENDOFTEXT = 151643
STOP_IDS = [IM_END, ENDOFTEXT]
NEW_TOKENS = 10
PROMPTS = ["Tell me more.", "Tell me more please."]


def build_model(vocab: int) -> Qwen3MoeForCausalLM:
    config = Qwen3MoeConfig(vocab_size=vocab, hidden_size=32, intermediate_size=64, moe_intermediate_size=16,
                            num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2, head_dim=8,
                            num_experts=8, num_experts_per_tok=2, norm_topk_prob=True, decoder_sparse_step=1,
                            mlp_only_layers=[], max_position_embeddings=512, rms_norm_eps=1e-6,
                            tie_word_embeddings=True, bos_token_id=ENDOFTEXT, eos_token_id=IM_END,
                            pad_token_id=ENDOFTEXT)
    model = Qwen3MoeForCausalLM(config).eval()
    randomize_bf16_exact(model, seed=11)
    return model


def main() -> None:
    out = parse_out_dir()
    deterministic(0)
    tok_dir = unpacked_tokenizer("qwen3", out)
    tok = AutoTokenizer.from_pretrained(tok_dir)
    model = build_model(len(tok))
    model_dir = out / "eval_run" / "qwen3_moe"
    save_bf16(model, model_dir)
    GenerationConfig(do_sample=True, temperature=0.7, top_p=0.8, top_k=20, eos_token_id=STOP_IDS,
                     pad_token_id=ENDOFTEXT, bos_token_id=ENDOFTEXT).save_pretrained(model_dir)
    for f in tok_dir.iterdir():
        if f.is_file() and not f.name.startswith("oracle_"):
            shutil.copy(f, model_dir / f.name)

    cases = []
    k = model.config.num_experts_per_tok
    with torch.no_grad():
        for prompt in PROMPTS:
            ids = tok.apply_chat_template([{"role": "user", "content": prompt}], add_generation_prompt=True,
                                          enable_thinking=False)["input_ids"]
            input_ids = torch.tensor([ids])
            gen = model.generate(input_ids=input_ids, attention_mask=torch.ones_like(input_ids),
                                 max_new_tokens=NEW_TOKENS, do_sample=False, eos_token_id=STOP_IDS,
                                 pad_token_id=ENDOFTEXT, output_scores=True, return_dict_in_generate=True)
            new = gen.sequences[0, len(ids):].tolist()
            margin = min(float((lambda t: t[0] - t[1])(torch.topk(s[0].float(), 2).values)) for s in gen.scores)
            body = new[:-1] if new and new[-1] in STOP_IDS else new
            full = torch.tensor([ids + new[:-1]])
            routed = model(input_ids=full, output_router_logits=True).router_logits  # per MoE layer [T, E]
            topk = torch.stack([torch.topk(r.float(), k, dim=-1).indices for r in routed], dim=1)  # [T, L, K]
            cases.append({"prompt": prompt, "prompt_ids": ids, "ids": new,
                          "text": tok.decode(body, skip_special_tokens=False),
                          "finish_reason": "stop" if new[-1] in STOP_IDS else "length", "margin": margin,
                          "topk": topk.tolist()})
            print(f"  {prompt!r}: {len(ids)} prompt tokens, {len(new)} new, margin {margin:.4f}: {cases[-1]['text']!r}")
    write_json_atomic(out / "eval_run" / "cases.json",
                      {"model_dir": "eval_run/qwen3_moe", "moe_layers": [0, 1], "num_experts": 8, "top_k": k,
                       "max_new_tokens": NEW_TOKENS, "cases": cases})


if __name__ == "__main__":
    main()
