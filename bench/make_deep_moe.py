"""Writes the `deep` MoE bench model: a random-weight qwen3_moe whose decoder
layers outweigh its vocabulary projection as they do in Qwen3-30B-A3B.

Qwen3-30B-A3B per token: 48 layers × (attention 4.5·D² + 8 active experts ×
3·0.375·D² = 13.5·D²) ≈ 2.72 G multiply-adds against 0.31 G for the 151,936 × 2048
lm_head, a ratio of ~8.8. The `small` presets (hidden 256, 4 layers, a real
151k vocabulary) have the opposite ratio (~0.05), so their decode is mostly one
GEMV and says little about the layers. This shape keeps Qwen3-30B-A3B's
proportions (q = 2·D, kv = 0.25·D, moe_intermediate = 0.375·D, 8 of 64 experts)
scaled down to fit a 2-core bench: hidden 512, 24 layers, vocabulary 16,384, so
layers : lm_head = 13.5·512·24 / 16,384 ≈ 10.

Usage: make_deep_moe.py OUT_DIR
"""
import pathlib
import sys

import torch
from transformers import Qwen3MoeConfig, Qwen3MoeForCausalLM


def main() -> None:
    out = pathlib.Path(sys.argv[1])
    torch.manual_seed(0)
    config = Qwen3MoeConfig(
        vocab_size=16384,
        hidden_size=512,
        intermediate_size=1024,  # unused: every layer is sparse
        moe_intermediate_size=192,
        num_hidden_layers=24,
        num_attention_heads=16,
        num_key_value_heads=2,
        head_dim=64,
        num_experts=64,
        num_experts_per_tok=8,
        norm_topk_prob=True,
        decoder_sparse_step=1,
        mlp_only_layers=[],
        max_position_embeddings=4096,
        rope_theta=1000000.0,
        rms_norm_eps=1e-6,
        tie_word_embeddings=False,
        bos_token_id=None,
        eos_token_id=0,
        pad_token_id=None,
    )
    model = Qwen3MoeForCausalLM(config).to(torch.float32)
    model.save_pretrained(out)


if __name__ == "__main__":
    main()
