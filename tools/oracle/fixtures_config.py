"""How transformers resolves config.json, for model/io/config.cpp.

Writes OUT/config/cases.json: for each case, the config.json text (Hub style as the
model repos publish it, transformers-5 style as save_pretrained writes it, and
minimal configs that lean on class defaults) and what transformers makes of it:
head_dim, kv heads, rope, eps, token ids, experts, which layers are MoE, and the
parameter counts of the model built from it (on the meta device, so 30B is free).
"""
import copy

import torch
from transformers import AutoConfig, AutoModelForCausalLM
from transformers.models.auto.configuration_auto import CONFIG_MAPPING

from oracle_common import parse_out_dir, write_json_atomic

# Shapes of the published config.json files (meta-llama/Llama-3.1-8B-Instruct,
# Qwen/Qwen3-0.6B, Qwen/Qwen3-30B-A3B, mistralai/Mixtral-8x7B-Instruct-v0.1,
# allenai/OLMoE-1B-7B-0924), trimmed of fields that do not change the model.
HUB = {
    "llama31_hub": {
        "architectures": ["LlamaForCausalLM"], "attention_bias": False, "attention_dropout": 0.0,
        "bos_token_id": 128000, "eos_token_id": [128001, 128008, 128009], "hidden_act": "silu",
        "hidden_size": 4096, "initializer_range": 0.02, "intermediate_size": 14336,
        "max_position_embeddings": 131072, "mlp_bias": False, "model_type": "llama",
        "num_attention_heads": 32, "num_hidden_layers": 32, "num_key_value_heads": 8,
        "pretraining_tp": 1, "rms_norm_eps": 1e-05,
        "rope_scaling": {"factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
                         "original_max_position_embeddings": 8192, "rope_type": "llama3"},
        "rope_theta": 500000.0, "tie_word_embeddings": False, "torch_dtype": "bfloat16",
        "transformers_version": "4.42.3", "use_cache": True, "vocab_size": 128256,
    },
    "qwen3_hub": {
        "architectures": ["Qwen3ForCausalLM"], "attention_bias": False, "attention_dropout": 0.0,
        "bos_token_id": 151643, "eos_token_id": 151645, "head_dim": 128, "hidden_act": "silu",
        "hidden_size": 1024, "initializer_range": 0.02, "intermediate_size": 3072,
        "max_position_embeddings": 40960, "max_window_layers": 28, "model_type": "qwen3",
        "num_attention_heads": 16, "num_hidden_layers": 28, "num_key_value_heads": 8,
        "rms_norm_eps": 1e-06, "rope_scaling": None, "rope_theta": 1000000, "sliding_window": None,
        "tie_word_embeddings": True, "torch_dtype": "bfloat16", "transformers_version": "4.51.0",
        "use_cache": True, "use_sliding_window": False, "vocab_size": 151936,
    },
    "qwen3_moe_hub": {
        "architectures": ["Qwen3MoeForCausalLM"], "attention_bias": False, "attention_dropout": 0.0,
        "bos_token_id": 151643, "decoder_sparse_step": 1, "eos_token_id": 151645, "head_dim": 128,
        "hidden_act": "silu", "hidden_size": 2048, "initializer_range": 0.02, "intermediate_size": 6144,
        "max_position_embeddings": 40960, "max_window_layers": 48, "mlp_only_layers": [],
        "model_type": "qwen3_moe", "moe_intermediate_size": 768, "norm_topk_prob": True,
        "num_attention_heads": 32, "num_experts": 128, "num_experts_per_tok": 8, "num_hidden_layers": 48,
        "num_key_value_heads": 4, "output_router_logits": False, "rms_norm_eps": 1e-06,
        "rope_scaling": None, "rope_theta": 1000000.0, "router_aux_loss_coef": 0.001,
        "sliding_window": None, "tie_word_embeddings": False, "torch_dtype": "bfloat16",
        "transformers_version": "4.51.0", "use_cache": True, "use_sliding_window": False,
        "vocab_size": 151936,
    },
    "mixtral_hub": {
        "architectures": ["MixtralForCausalLM"], "attention_dropout": 0.0, "bos_token_id": 1,
        "eos_token_id": 2, "hidden_act": "silu", "hidden_size": 4096, "initializer_range": 0.02,
        "intermediate_size": 14336, "max_position_embeddings": 32768, "model_type": "mixtral",
        "num_attention_heads": 32, "num_experts_per_tok": 2, "num_hidden_layers": 32,
        "num_key_value_heads": 8, "num_local_experts": 8, "output_router_logits": False,
        "rms_norm_eps": 1e-05, "rope_theta": 1000000.0, "router_aux_loss_coef": 0.02,
        "sliding_window": None, "tie_word_embeddings": False, "torch_dtype": "bfloat16",
        "transformers_version": "4.36.0.dev0", "use_cache": True, "vocab_size": 32000,
    },
    "olmoe_hub": {
        "architectures": ["OlmoeForCausalLM"], "attention_bias": False, "attention_dropout": 0.0,
        "clip_qkv": None, "eos_token_id": 50279, "hidden_act": "silu", "hidden_size": 2048,
        "initializer_range": 0.02, "intermediate_size": 1024, "max_position_embeddings": 4096,
        "model_type": "olmoe", "norm_topk_prob": False, "num_attention_heads": 16, "num_experts": 64,
        "num_experts_per_tok": 8, "num_hidden_layers": 16, "num_key_value_heads": 16,
        "output_router_logits": False, "pad_token_id": 1, "rms_norm_eps": 1e-05, "rope_scaling": None,
        "rope_theta": 10000.0, "router_aux_loss_coef": 0.01, "tie_word_embeddings": False,
        "torch_dtype": "bfloat16", "transformers_version": "4.43.0.dev0", "use_cache": True,
        "vocab_size": 50304,
    },
}

# Only the fields config.cpp requires: the rest comes from each class's defaults.
MINIMAL_BASE = {"vocab_size": 96, "hidden_size": 64, "num_hidden_layers": 4, "num_attention_heads": 4,
                "intermediate_size": 128}
MINIMAL = {
    "llama_minimal": {"model_type": "llama"},
    "qwen3_minimal": {"model_type": "qwen3", "num_key_value_heads": 2},
    "qwen3_moe_minimal": {"model_type": "qwen3_moe", "num_experts": 8, "num_experts_per_tok": 2,
                          "moe_intermediate_size": 32},
    "mixtral_minimal": {"model_type": "mixtral", "num_local_experts": 4, "num_experts_per_tok": 2,
                        "num_key_value_heads": 2},
    "olmoe_minimal": {"model_type": "olmoe", "num_experts": 8, "num_experts_per_tok": 2},
    "qwen3_moe_sparse_step": {"model_type": "qwen3_moe", "num_experts": 8, "num_experts_per_tok": 2,
                              "moe_intermediate_size": 32, "decoder_sparse_step": 2, "mlp_only_layers": [3],
                              "head_dim": 32, "num_key_value_heads": 2},
}


def resolved(config, model):
    rope = dict(config.rope_parameters)
    eos = config.eos_token_id
    is_moe = config.model_type in ("qwen3_moe", "mixtral", "olmoe")
    moe_layers = []
    per_expert = 0
    for i, layer in enumerate(model.model.layers):
        mlp = layer.mlp
        if hasattr(mlp, "experts"):
            moe_layers.append(i)
            experts = mlp.experts
            per_expert = sum(p.numel() for p in experts.parameters()) // config_experts(config)
    total = sum(p.numel() for p in model.parameters())
    top_k = config.num_experts_per_tok if is_moe else 0
    active = total - len(moe_layers) * (config_experts(config) - top_k) * per_expert if is_moe else total
    return {
        "model_type": config.model_type,
        "head_dim": getattr(config, "head_dim", None) or config.hidden_size // config.num_attention_heads,
        "num_key_value_heads": config.num_key_value_heads,
        "rope_theta": rope["rope_theta"],
        "rope_type": rope.get("rope_type", "default"),
        "rope_factor": rope.get("factor"),
        "rope_low_freq_factor": rope.get("low_freq_factor"),
        "rope_high_freq_factor": rope.get("high_freq_factor"),
        "rope_original_max_position_embeddings": rope.get("original_max_position_embeddings"),
        "rms_norm_eps": config.rms_norm_eps,
        "max_position_embeddings": config.max_position_embeddings,
        "tie_word_embeddings": config.tie_word_embeddings,
        "bos_token_id": config.bos_token_id,
        "eos_token_id": [] if eos is None else (eos if isinstance(eos, list) else [eos]),
        "pad_token_id": config.pad_token_id,
        "num_experts": config_experts(config) if is_moe else 0,
        "num_experts_per_tok": top_k,
        "norm_topk_prob": getattr(config, "norm_topk_prob", config.model_type == "mixtral"),
        "router_aux_loss_coef": getattr(config, "router_aux_loss_coef", 0.0),
        "moe_layers": moe_layers,
        "params_total": total,
        "params_active": active,
        "params_per_expert": per_expert,
    }


def config_experts(config):
    return getattr(config, "num_experts", None) or getattr(config, "num_local_experts", 0)


def build(config_json):
    d = copy.deepcopy(config_json)
    config = CONFIG_MAPPING[d.pop("model_type")].from_dict(d)
    with torch.device("meta"):
        model = AutoModelForCausalLM.from_config(config)
    return config, model


def main():
    out = parse_out_dir() / "config"
    cases = {}
    for name, config_json in HUB.items():
        config, model = build(config_json)
        cases[name] = {"config_json": config_json, "expected": resolved(config, model)}
        # The same model as transformers 5 writes it (rope_parameters, dtype, ...).
        saved = config.to_dict()
        saved["model_type"] = config.model_type
        config5, model5 = build(saved)
        cases[name + "_saved_by_v5"] = {"config_json": saved, "expected": resolved(config5, model5)}
    for name, extra in MINIMAL.items():
        config_json = {**MINIMAL_BASE, **extra}
        config, model = build(config_json)
        cases[name] = {"config_json": config_json, "expected": resolved(config, model)}
    write_json_atomic(out / "cases.json", cases)


if __name__ == "__main__":
    main()
