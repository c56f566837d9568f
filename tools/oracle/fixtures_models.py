"""Tiny random models of every supported architecture, run by transformers.

For each config below this builds a small model (hidden 64, 2-4 layers, vocab 512)
with transformers 5, gives it weights large enough that routing decisions are not
near-ties, saves it with save_pretrained, and records what transformers computes:

  <out>/models/<name>/model/           the model directory (config.json + safetensors)
  <out>/models/<name>/reference.safetensors
      batch_input_ids [2, T] / batch_attention_mask [2, T]   left-padded batch
      single_input_ids [1, T1]                                 one unpadded sequence
      {batch,single}_logits [B, T, V]
      {batch,single}_hidden_{i} [B, T, D]       i = 0..L (output_hidden_states)
      {batch,single}_router_logits_{l} [N, E]   raw gate logits (before softmax)
      {batch,single}_router_probs_{l} [N, E]    what transformers returns as router_logits
      {batch,single}_topk_ids_{l} / _topk_weights_{l} [N, K]
      {batch,single}_generated [B, 32]           greedy tokens from model.generate
      {batch,single}_logits_bf16 [B, T, V]       the model loaded in bfloat16 (BF16_MODELS)
  <out>/models/<name>/meta.json         layer lists, layout, min greedy margin

Positions follow generate(): cumsum(attention_mask) - 1 (pads at 0), passed
explicitly so plain forwards and generation agree for left padding.
Layouts: transformers 5 saves experts per expert (Hub layout); some configs are
rewritten by hand to the fused layout (mlp.experts.gate_up_proj [E, 2F, D],
mlp.experts.down_proj [E, D, F]) so both loaders are exercised; one is sharded.
"""
import json
import re
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from oracle_common import deterministic, parse_out_dir, write_json_atomic

VOCAB = 512
NEW_TOKENS = 32
PAD = 0
BF16_MODELS = {"llama3_tied_rope_sharded", "qwen3_moe_norm", "olmoe"}

COMMON = dict(
    vocab_size=VOCAB,
    hidden_size=64,
    num_attention_heads=4,
    num_key_value_heads=2,
    max_position_embeddings=256,
    rms_norm_eps=1e-6,
    bos_token_id=1,
    eos_token_id=2,
    pad_token_id=PAD,
)


def configs():
    from transformers import LlamaConfig, MixtralConfig, OlmoeConfig, Qwen3Config, Qwen3MoeConfig

    return [
        # name, config, layout ("hub" | "fused"), max_shard_size
        ("llama_gqa", LlamaConfig(**COMMON, intermediate_size=128, num_hidden_layers=2,
                                  tie_word_embeddings=False, rope_theta=10000.0), "hub", None),
        ("llama3_tied_rope_sharded", LlamaConfig(
            **COMMON, intermediate_size=128, num_hidden_layers=2, tie_word_embeddings=True,
            rope_theta=500000.0, attention_bias=True,
            rope_scaling=dict(rope_type="llama3", factor=8.0, low_freq_factor=1.0, high_freq_factor=4.0,
                              original_max_position_embeddings=32)), "hub", "60KB"),
        ("qwen3_tied", Qwen3Config(**COMMON, intermediate_size=128, num_hidden_layers=2, head_dim=32,
                                   tie_word_embeddings=True, rope_theta=1000000.0), "hub", None),
        ("qwen3_moe_norm", Qwen3MoeConfig(**COMMON, intermediate_size=96, moe_intermediate_size=32,
                                          num_hidden_layers=3, head_dim=16, num_experts=8,
                                          num_experts_per_tok=2, norm_topk_prob=True, mlp_only_layers=[1],
                                          decoder_sparse_step=1, tie_word_embeddings=False), "fused", None),
        ("qwen3_moe_sparse", Qwen3MoeConfig(**COMMON, intermediate_size=96, moe_intermediate_size=32,
                                            num_hidden_layers=3, head_dim=16, num_experts=8,
                                            num_experts_per_tok=3, norm_topk_prob=False,
                                            decoder_sparse_step=2, tie_word_embeddings=False), "hub", "80KB"),
        ("mixtral", MixtralConfig(**COMMON, intermediate_size=48, num_hidden_layers=2, num_local_experts=4,
                                  num_experts_per_tok=2, tie_word_embeddings=False), "hub", None),
        ("mixtral_fused", MixtralConfig(**COMMON, intermediate_size=48, num_hidden_layers=2, num_local_experts=4,
                                        num_experts_per_tok=2, tie_word_embeddings=False), "fused", None),
        ("olmoe", OlmoeConfig(**COMMON, intermediate_size=32, num_hidden_layers=2, num_experts=8,
                              num_experts_per_tok=2, norm_topk_prob=False, tie_word_embeddings=False), "hub", None),
        ("olmoe_fused_norm", OlmoeConfig(**COMMON, intermediate_size=32, num_hidden_layers=2, num_experts=8,
                                         num_experts_per_tok=2, norm_topk_prob=True,
                                         tie_word_embeddings=False), "fused", None),
    ]


def init_weights(model, seed):
    """Weights far from transformers' 0.02 default, so top-k choices are clear-cut."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("norm.weight"):
                p.copy_(1.0 + 0.2 * torch.randn(p.shape, generator=g))
            elif name.endswith("mlp.gate.weight"):
                p.copy_(0.5 * torch.randn(p.shape, generator=g))
            elif name.endswith("bias"):
                p.copy_(0.1 * torch.randn(p.shape, generator=g))
            elif "embed_tokens" in name:
                p.copy_(torch.randn(p.shape, generator=g))
            else:
                fan_in = p.shape[-1]
                p.copy_(torch.randn(p.shape, generator=g) * (1.5 / fan_in ** 0.5))


def inputs(seed):
    g = torch.Generator().manual_seed(seed)
    long_ids = torch.randint(3, VOCAB, (9,), generator=g)
    short_ids = torch.randint(3, VOCAB, (5,), generator=g)
    batch_ids = torch.full((2, 9), PAD, dtype=torch.long)
    batch_mask = torch.zeros((2, 9), dtype=torch.long)
    batch_ids[0] = long_ids
    batch_mask[0] = 1
    batch_ids[1, 4:] = short_ids
    batch_mask[1, 4:] = 1
    single_ids = torch.randint(3, VOCAB, (1, 6), generator=g)
    return batch_ids, batch_mask, single_ids


def positions(mask):
    # transformers generation/utils.py _prepare_position_ids_for_generation
    return (mask.long().cumsum(-1) - 1).masked_fill(mask == 0, 0)


def run(model, ids, mask, prefix, out, moe_layers):
    """One forward with every capture, plus greedy generation."""
    raw = {}
    hooks = []
    for l in moe_layers:
        gate = model.model.layers[l].mlp.gate

        def hook(module, args, output, l=l):
            x = args[0].reshape(-1, module.weight.shape[1])
            raw[l] = (torch.nn.functional.linear(x, module.weight).float(), output)

        hooks.append(gate.register_forward_hook(hook))
    res = model(input_ids=ids, attention_mask=mask, position_ids=positions(mask), output_hidden_states=True,
                output_router_logits=bool(moe_layers))
    for h in hooks:
        h.remove()
    out[f"{prefix}_logits"] = res.logits.float()
    for i, h in enumerate(res.hidden_states):
        out[f"{prefix}_hidden_{i}"] = h.float()
    for j, l in enumerate(moe_layers):
        logits, (probs, weights, idx) = raw[l]
        assert torch.allclose(res.router_logits[j], probs)
        out[f"{prefix}_router_logits_{l}"] = logits
        out[f"{prefix}_router_probs_{l}"] = probs.float()
        out[f"{prefix}_topk_ids_{l}"] = idx.long()
        out[f"{prefix}_topk_weights_{l}"] = weights.float()

    gen = model.generate(input_ids=ids, attention_mask=mask, max_new_tokens=NEW_TOKENS, min_new_tokens=NEW_TOKENS,
                         do_sample=False, eos_token_id=None, pad_token_id=PAD, output_scores=True,
                         return_dict_in_generate=True)
    out[f"{prefix}_generated"] = gen.sequences[:, ids.shape[1]:].contiguous()
    assert out[f"{prefix}_generated"].shape[1] == NEW_TOKENS
    margin = float("inf")
    for s in gen.scores:
        top2 = torch.topk(s.float(), 2, dim=-1).values
        margin = min(margin, float((top2[:, 0] - top2[:, 1]).min()))
    return margin


# Hub per-expert keys → fused transformers 5 parameters (mixtral: block_sparse_moe, w1/w3/w2).
def fuse_experts(state, model_type, num_layers, num_experts):
    prefix, gate_n, up_n, down_n = (("block_sparse_moe", "w1", "w3", "w2") if model_type == "mixtral"
                                    else ("mlp", "gate_proj", "up_proj", "down_proj"))
    out = {}
    for key, value in state.items():
        if re.search(r"\.experts\.\d+\.", key):
            continue
        out[key.replace(".block_sparse_moe.", ".mlp.")] = value
    for l in range(num_layers):
        base = f"model.layers.{l}.{prefix}.experts"
        if f"{base}.0.{gate_n}.weight" not in state:
            continue
        gate = torch.stack([state[f"{base}.{e}.{gate_n}.weight"] for e in range(num_experts)])
        up = torch.stack([state[f"{base}.{e}.{up_n}.weight"] for e in range(num_experts)])
        down = torch.stack([state[f"{base}.{e}.{down_n}.weight"] for e in range(num_experts)])
        out[f"model.layers.{l}.mlp.experts.gate_up_proj"] = torch.cat([gate, up], dim=1).contiguous()
        out[f"model.layers.{l}.mlp.experts.down_proj"] = down.contiguous()
    return out


def main():
    from transformers import AutoModelForCausalLM

    out_root = parse_out_dir() / "models"
    deterministic(0)
    index = []
    for n, (name, config, layout, shard) in enumerate(configs()):
        torch.manual_seed(n)
        model = AutoModelForCausalLM.from_config(config, attn_implementation="sdpa").eval()
        init_weights(model, seed=100 + n)
        model.generation_config.eos_token_id = None
        model.generation_config.pad_token_id = PAD
        dst = out_root / name
        model_dir = dst / "model"
        model.save_pretrained(model_dir, **({"max_shard_size": shard} if shard else {}))
        num_experts = getattr(config, "num_experts", None) or getattr(config, "num_local_experts", 0) or 0
        if layout == "fused":
            state = load_file(model_dir / "model.safetensors")
            save_file(fuse_experts(state, config.model_type, config.num_hidden_layers, num_experts),
                      model_dir / "model.safetensors", metadata={"format": "pt"})
        # Reload from disk so the reference is what the saved directory means.
        model = AutoModelForCausalLM.from_pretrained(model_dir, attn_implementation="sdpa").eval()
        moe_layers = [l for l, layer in enumerate(model.model.layers) if hasattr(layer.mlp, "experts")]

        batch_ids, batch_mask, single_ids = inputs(seed=200 + n)
        ref = {"batch_input_ids": batch_ids, "batch_attention_mask": batch_mask, "single_input_ids": single_ids}
        with torch.no_grad():
            m1 = run(model, batch_ids, batch_mask, "batch", ref, moe_layers)
            m2 = run(model, single_ids, torch.ones_like(single_ids), "single", ref, moe_layers)
            # The same forwards in bfloat16 (the CUDA default), logits only; a few
            # models only, bf16 matmuls are slow on CPUs without native support.
            if name in BF16_MODELS:
                model_bf16 = AutoModelForCausalLM.from_pretrained(model_dir, attn_implementation="sdpa",
                                                                  dtype=torch.bfloat16).eval()
                for prefix, ids, mask in (("batch", batch_ids, batch_mask),
                                          ("single", single_ids, torch.ones_like(single_ids))):
                    logits = model_bf16(input_ids=ids, attention_mask=mask, position_ids=positions(mask)).logits
                    ref[f"{prefix}_logits_bf16"] = logits.float()
        save_file({k: v.contiguous() for k, v in ref.items()}, dst / "reference.safetensors")
        files = sorted(p.name for p in model_dir.iterdir())
        meta = {
            "name": name,
            "model_type": config.model_type,
            "layout": layout,
            "sharded": "model.safetensors.index.json" in files,
            "num_hidden_layers": config.num_hidden_layers,
            "moe_layers": moe_layers,
            "num_experts": num_experts,
            "new_tokens": NEW_TOKENS,
            "min_greedy_margin": min(m1, m2),
            "files": files,
        }
        write_json_atomic(dst / "meta.json", meta)
        index.append(name)
        print(f"  {name}: layout={layout} files={len(files)} moe_layers={moe_layers} margin={min(m1, m2):.4f}")
    write_json_atomic(out_root / "index.json", {"models": index})


if __name__ == "__main__":
    main()
