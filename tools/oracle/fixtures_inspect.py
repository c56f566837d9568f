"""Reference facts that `character inspect` reports about a model directory.

Writes under OUT/inspect/:
  tokenizers.json  for the project's real tokenizers (unpacked under OUT/tokenizers/<family>/
      by oracle_common), the vocabulary size with added tokens as HF `tokenizers` counts it.
  models/<type>/   a tiny random model of each architecture saved by transformers'
      save_pretrained (Hub layout), and expected.json: num_parameters() of the model,
      active parameters per token (total minus the unselected experts of each MoE layer,
      from the model's own expert modules), and which layers are MoE.
"""
import json

import torch
from tokenizers import Tokenizer
from transformers import AutoModelForCausalLM, AutoTokenizer
from transformers.models.auto.configuration_auto import CONFIG_MAPPING

from oracle_common import deterministic, parse_out_dir, unpacked_tokenizer, write_json_atomic

TINY = dict(vocab_size=48, hidden_size=16, intermediate_size=24, num_hidden_layers=3, num_attention_heads=4,
            num_key_value_heads=2)
TINY_MODELS = {
    "llama": dict(tie_word_embeddings=True),
    "qwen3": dict(head_dim=8),
    "qwen3_moe": dict(head_dim=8, num_experts=6, num_experts_per_tok=2, moe_intermediate_size=12,
                      decoder_sparse_step=1, mlp_only_layers=[1], norm_topk_prob=True),
    "mixtral": dict(num_local_experts=4, num_experts_per_tok=2),
    "olmoe": dict(num_experts=8, num_experts_per_tok=3),
}


def write_tiny_models(out):
    for model_type, extra in TINY_MODELS.items():
        config = CONFIG_MAPPING[model_type](**TINY, **extra)
        model = AutoModelForCausalLM.from_config(config, dtype=torch.bfloat16)
        target = out / "inspect" / "models" / model_type
        model.save_pretrained(str(target))
        total = model.num_parameters()
        moe_layers, inactive = [], 0
        for i, layer in enumerate(model.model.layers):
            if hasattr(layer.mlp, "experts"):
                moe_layers.append(i)
                experts = layer.mlp.experts
                count = getattr(config, "num_experts", None) or config.num_local_experts
                per_expert = sum(p.numel() for p in experts.parameters()) // count
                inactive += (count - config.num_experts_per_tok) * per_expert
        write_json_atomic(target / "expected.json",
                          {"num_parameters": total, "active": total - inactive, "moe_layers": moe_layers})


def main():
    out = parse_out_dir()
    deterministic(0)
    write_tiny_models(out)
    facts = {}
    for family in ("qwen3", "llama3_1"):
        directory = unpacked_tokenizer(family, out)
        tok = Tokenizer.from_file(str(directory / "tokenizer.json"))
        facts[family] = {
            "vocab_size": tok.get_vocab_size(with_added_tokens=True),
            "model_type": json.loads(tok.to_str())["model"]["type"],
            "len_auto_tokenizer": len(AutoTokenizer.from_pretrained(str(directory))),
        }
    write_json_atomic(out / "inspect" / "tokenizers.json", facts)


if __name__ == "__main__":
    main()
