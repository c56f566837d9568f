// The learning-rate default of a run without one: Tinker's recipe,
// tinker_cookbook.hyperparam_utils.get_lr (installed in .venv): a LoRA rate of
// 5e-5 × 10 scaled by (2000 / hidden_size)^e, with e = 0.781 for Llama models and
// 0.0775 for Qwen models, the family read from the model name. Other families
// have no calibrated rate there, so none here either: the run must set one.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>

namespace character::pipeline {

// get_lr(model_name, is_lora=True) for a model of `hidden_size`. The family is
// the first of "llama", "qwen" found in the lower-cased name (Tinker's suffix
// ":peft:…" is ignored); ConfigError naming the model otherwise.
double tinker_lora_learning_rate(const std::string& model_name, int64_t hidden_size);

// The default for a student directory: the family from config.json's model_type
// (llama, qwen3, qwen3_moe; else the directory's name), the width from its
// hidden_size. ConfigError for other families, naming training.learning_rate.
double default_learning_rate(const std::filesystem::path& model_dir);

}  // namespace character::pipeline
