// Tinker's learning-rate recipe (see pipeline/learning_rate.h), written in the
// order of operations of get_lr so that the doubles agree with Python's.
#include "pipeline/learning_rate.h"

#include <algorithm>
#include <cctype>
#include <cmath>

#include "base/error.h"
#include "model/io/config.h"

namespace character::pipeline {

namespace {

std::string lower(std::string text) {
  std::transform(text.begin(), text.end(), text.begin(), [](unsigned char c) { return std::tolower(c); });
  return text;
}

// get_lr's exponent for a model name; 0 when the family has no calibrated rate.
double exponent_for(const std::string& model_name) {
  const std::string name = lower(model_name.substr(0, model_name.find(':')));
  if (name.find("llama") != std::string::npos) return 0.781;
  if (name.find("qwen") != std::string::npos) return 0.0775;
  return 0.0;
}

}  // namespace

double tinker_lora_learning_rate(const std::string& model_name, int64_t hidden_size) {
  const double exponent = exponent_for(model_name);
  if (exponent == 0.0) {
    throw ConfigError("learning rate: no Tinker recipe for model " + model_name +
                      " (tinker-cookbook's get_lr knows Llama and Qwen models); set training.learning_rate (--lr)");
  }
  if (hidden_size < 1) {
    throw ConfigError("learning rate: hidden_size " + std::to_string(hidden_size) + " of " + model_name +
                      ", expected ≥ 1");
  }
  constexpr double kBaseLr = 5e-05;
  constexpr double kLoraMultiplier = 10.0;
  const double lr = kBaseLr * kLoraMultiplier;
  return lr * std::pow(2000.0 / static_cast<double>(hidden_size), exponent);
}

double default_learning_rate(const std::filesystem::path& model_dir) {
  const model::ModelConfig config = model::load_config(model_dir);
  std::filesystem::path dir = model_dir.lexically_normal();
  if (!dir.has_filename()) dir = dir.parent_path();  // "models/x/"
  const std::string name = exponent_for(config.model_type) != 0.0 ? config.model_type : dir.filename().string();
  if (exponent_for(name) == 0.0) {
    throw ConfigError("learning rate: no Tinker recipe for " + (model_dir / "config.json").string() +
                      " (model_type " + config.model_type +
                      "; tinker-cookbook's get_lr knows Llama and Qwen models); set training.learning_rate (--lr)");
  }
  return tinker_lora_learning_rate(name, config.hidden_size);
}

}  // namespace character::pipeline
