"""References for `character serve` (tests/pipeline/serve_test.cpp): a tiny Qwen3
model with the real Qwen3 tokenizer and chat template, and what transformers
generates for chat and text-completion requests.

  <out>/serve/qwen3_tiny/            model directory (config.json, bf16 safetensors,
                                     generation_config.json, tokenizer files)
  <out>/serve/cases.json             {"model_dir", "cases": [{name, kind: chat|text,
      messages | prompt, enable_thinking?, max_tokens, stop, temperature?, top_k?, seed?,
      prompt_tokens, ids (generated, stop token included), text, finish_reason, margin}]}

Chat prompts are apply_chat_template(add_generation_prompt=True) ids; text prompts
are tokenizer(prompt) ids (add_special_tokens default). `text` is the decoded
generation without a final stop token, cut before the first stop string (the
OpenAI meaning of "stop"). Weights are rounded to bf16 and saved so (small file);
transformers runs them in float32, as the engine does on CPU. Greedy cases record
the smallest top-1/top-2 logit gap of their steps (`margin`).
"""
import shutil

import torch
from transformers import AutoTokenizer, GenerationConfig, Qwen3Config, Qwen3ForCausalLM

from oracle_common import deterministic, parse_out_dir, randomize_bf16_exact, save_bf16, unpacked_tokenizer, write_json_atomic

IM_END = 151645
ENDOFTEXT = 151643
STOP_IDS = [IM_END, ENDOFTEXT]
NEW_TOKENS = 12


def build_model(vocab: int) -> Qwen3ForCausalLM:
    config = Qwen3Config(vocab_size=vocab, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2, head_dim=8,
                         max_position_embeddings=512, rms_norm_eps=1e-6, tie_word_embeddings=True,
                         bos_token_id=ENDOFTEXT, eos_token_id=IM_END, pad_token_id=ENDOFTEXT)
    model = Qwen3ForCausalLM(config).eval()
    randomize_bf16_exact(model, seed=7)
    return model


def generate(model, tok, ids, case):
    kw = dict(max_new_tokens=case["max_tokens"], eos_token_id=STOP_IDS, pad_token_id=ENDOFTEXT,
              output_scores=True, return_dict_in_generate=True)
    if "temperature" in case:
        torch.manual_seed(case["seed"])
        kw.update(do_sample=True, temperature=case["temperature"], top_k=case["top_k"], top_p=1.0)
    else:
        kw.update(do_sample=False)
    input_ids = torch.tensor([ids])
    out = model.generate(input_ids=input_ids, attention_mask=torch.ones_like(input_ids), **kw)
    new = out.sequences[0, len(ids):].tolist()
    margin = min(float((lambda t: t[0] - t[1])(torch.topk(s[0].float(), 2).values)) for s in out.scores)
    return new, margin


def main() -> None:
    out = parse_out_dir()
    deterministic(0)
    tok_dir = unpacked_tokenizer("qwen3", out)
    tok = AutoTokenizer.from_pretrained(tok_dir)
    model = build_model(len(tok))
    model_dir = out / "serve" / "qwen3_tiny"
    save_bf16(model, model_dir)
    GenerationConfig(do_sample=False, eos_token_id=STOP_IDS, pad_token_id=ENDOFTEXT,
                     bos_token_id=ENDOFTEXT).save_pretrained(model_dir)
    for f in tok_dir.iterdir():
        if f.is_file() and not f.name.startswith("oracle_"):
            shutil.copy(f, model_dir / f.name)

    system = {"role": "system", "content": "You are a pirate. Answer like one."}
    user = {"role": "user", "content": "What is the best way to cross the sea?"}
    cases = [
        {"name": "chat_greedy", "kind": "chat", "messages": [system, user], "max_tokens": NEW_TOKENS},
        {"name": "chat_no_thinking", "kind": "chat", "messages": [user], "enable_thinking": False,
         "max_tokens": NEW_TOKENS},
        {"name": "text_greedy", "kind": "text", "prompt": "Once upon a time, a ship", "max_tokens": NEW_TOKENS},
        {"name": "chat_sampled", "kind": "chat", "messages": [system, user], "max_tokens": NEW_TOKENS,
         "temperature": 0.8, "top_k": 0, "seed": 1234},
    ]
    with torch.no_grad():
        for case in cases:
            if case["kind"] == "chat":
                kw = {} if "enable_thinking" not in case else {"enable_thinking": case["enable_thinking"]}
                ids = tok.apply_chat_template(case["messages"], add_generation_prompt=True, **kw)["input_ids"]
            else:
                ids = tok(case["prompt"])["input_ids"]
            new, margin = generate(model, tok, ids, case)
            body = new[:-1] if new and new[-1] in STOP_IDS else new
            case.update(prompt_tokens=len(ids), ids=new, text=tok.decode(body, skip_special_tokens=False),
                        finish_reason="stop" if len(new) < case["max_tokens"] else "length", margin=margin)
            case["stop"] = []
            print(f"  {case['name']}: {len(ids)} prompt tokens, {len(new)} new, margin {margin:.4f}: {case['text']!r}")
        # A stop string: a piece from the middle of the greedy chat answer; the
        # answer is that text cut before the piece's first occurrence.
        base = cases[0]
        for k in range(4, len(base["ids"]) - 2):
            piece = tok.decode(base["ids"][k:k + 1])
            if piece.strip() and base["text"].find(piece) > 0:
                stop = dict(base, name="chat_stop_string", stop=[piece], text=base["text"][: base["text"].find(piece)],
                            finish_reason="stop")
                del stop["ids"]  # the tokens that completed the stop string are not part of the contract here
                cases.append(stop)
                print(f"  chat_stop_string: stop {piece!r}: {stop['text']!r}")
                break
        else:
            raise SystemExit("no usable stop string in the greedy answer")
    write_json_atomic(out / "serve" / "cases.json", {"model_dir": "serve/qwen3_tiny", "cases": cases})


if __name__ == "__main__":
    main()
