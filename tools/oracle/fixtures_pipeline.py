"""Reference numbers for the pipeline's learning-rate default (pipeline/learning_rate.h).

  <out>/pipeline/learning_rates.json
    hub: tinker_cookbook.hyperparam_utils.get_lr(name) (LoRA) for the Llama and Qwen
      ids of its hidden-size table, with the hidden size it used (_get_hidden_size).
    local: get_lr(dir) for model directories written here (config.json only, by
      transformers' config classes) whose names say their family, as a local
      student directory is passed: {"dir" (relative to <out>/pipeline), "model_type",
      "hidden_size", "lr"}.
"""
from pathlib import Path

from transformers import LlamaConfig, Qwen3Config, Qwen3MoeConfig
from tinker_cookbook import hyperparam_utils

from oracle_common import parse_out_dir, write_json_atomic

HUB = [
    "meta-llama/Llama-3.2-1B",
    "meta-llama/Llama-3.2-3B",
    "meta-llama/Llama-3.1-8B-Instruct",
    "meta-llama/Llama-3.3-70B-Instruct",
    "Qwen/Qwen3-235B-A22B-Instruct-2507",
    "Qwen/Qwen3-30B-A3B",
    "Qwen/Qwen3-32B",
    "Qwen/Qwen3-8B",
    "Qwen/Qwen3-4B-Instruct-2507",
    "Qwen/Qwen3-VL-30B-A3B-Instruct",
    "Qwen/Qwen3-30B-A3B-Instruct-2507:peft:262144",
]

LOCAL = [
    ("qwen3_moe_h48", Qwen3MoeConfig, 48),
    ("qwen3_h64", Qwen3Config, 64),
    ("qwen3_h2048", Qwen3Config, 2048),
    ("llama_h32", LlamaConfig, 32),
    ("llama_h4096", LlamaConfig, 4096),
]


def main():
    out = parse_out_dir() / "pipeline"
    hub = []
    for name in HUB:
        hub.append({"model_name": name, "hidden_size": hyperparam_utils._get_hidden_size(name),
                    "lr": hyperparam_utils.get_lr(name)})
    local = []
    for dirname, config_class, hidden in LOCAL:
        model_dir = out / "lr_models" / dirname
        config_class(hidden_size=hidden, num_attention_heads=4, num_key_value_heads=2, intermediate_size=64,
                     num_hidden_layers=2, vocab_size=256).save_pretrained(model_dir)
        local.append({"dir": str(Path("lr_models") / dirname), "model_type": config_class.model_type,
                      "hidden_size": hidden, "lr": hyperparam_utils.get_lr(str(model_dir))})
    write_json_atomic(out / "learning_rates.json", {"hub": hub, "local": local})


if __name__ == "__main__":
    main()
