// Test helpers for the LoRA suite: the oracle's cases (tools/oracle/fixtures_lora.py),
// a model with the oracle's adapter values attached, the SFT loss and comparisons.
#pragma once

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>

#include "base/atomic_file.h"
#include "lora/adapters.h"
#include "model/arch/causal_lm.h"
#include "tests/model/arch/arch_fixtures.h"

namespace character::testing {

struct LoraCase {
  std::string name;
  nlohmann::json meta;
  std::map<std::string, torch::Tensor> adapters;  // C++ names → values
  std::map<std::string, torch::Tensor> ref;
  model::CausalLM model;

  const torch::Tensor& at(const std::string& key) const {
    auto it = ref.find(key);
    if (it == ref.end()) throw std::runtime_error(name + ": reference tensor " + key + " missing");
    return it->second;
  }
  lora::LoraConfig config() const {
    lora::LoraConfig c;
    c.rank = meta.at("rank").get<int64_t>();
    c.alpha = meta.at("alpha").get<double>();
    c.train_attn = meta.at("train_attn").get<bool>();
    c.train_mlp = meta.at("train_mlp").get<bool>();
    c.train_unembed = meta.at("train_unembed").get<bool>();
    c.train_router = lora::parse_router_training(meta.at("train_router").get<std::string>());
    c.expert_lora = lora::parse_expert_lora(meta.at("expert_lora").get<std::string>());
    return c;
  }
};

// The case's base model, its metadata and reference tensors (no adapters yet).
inline LoraCase lora_case(const std::string& name, const model::LoadOptions& options = {}) {
  LoraCase c;
  c.name = name;
  const auto dir = fixture("lora/" + name);
  c.meta = nlohmann::json::parse(read_file(dir / "meta.json"));
  c.adapters = read_tensors(dir / "adapters.safetensors");
  c.ref = read_tensors(dir / "reference.safetensors");
  c.model = model::load_model(dir / "model", options);
  return c;
}

// The oracle's adapters attached to the case's model.
inline std::shared_ptr<lora::Adapters> attach_oracle_adapters(LoraCase& c) {
  auto adapters = lora::attach_adapters(c.model, c.config());
  adapters->load(c.adapters, c.name + "/adapters.safetensors");
  return adapters;
}

// Masked mean next-token cross-entropy, as the oracle's masked_ce:
// logits [B, T, V], ids [B, T], mask [B, T] (1 on positions whose token is a label).
inline torch::Tensor masked_ce(const torch::Tensor& logits, const torch::Tensor& ids, const torch::Tensor& mask) {
  const int64_t t = ids.size(1), v = logits.size(2);
  auto pred = logits.narrow(1, 0, t - 1).reshape({-1, v});         // [B*(T-1), V]
  auto labels = ids.narrow(1, 1, t - 1).reshape({-1});               // [B*(T-1)]
  auto weights = mask.narrow(1, 1, t - 1).reshape({-1}).to(torch::kFloat);
  auto ce = torch::nn::functional::cross_entropy(
      pred, labels, torch::nn::functional::CrossEntropyFuncOptions().reduction(torch::kNone));
  return (ce * weights).sum() / weights.sum();
}

// ‖a − b‖ / ‖b‖ (Frobenius), in double.
inline double relative_error(const torch::Tensor& a, const torch::Tensor& b) {
  EXPECT_EQ(a.sizes(), b.sizes());
  if (a.sizes() != b.sizes()) return INFINITY;
  auto ad = a.to(torch::kDouble), bd = b.to(torch::kDouble);
  return ((ad - bd).norm() / bd.norm()).item<double>();
}

inline model::ForwardOutput run(LoraCase& c, bool capture_router = false) {
  model::ForwardInput in;
  in.input_ids = c.at("input_ids");
  in.capture.router = capture_router;
  return c.model->forward(in);
}

}  // namespace character::testing
