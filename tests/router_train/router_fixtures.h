// Test helpers for the router-training suite: the oracle's cases
// (tools/oracle/fixtures_router_train.py: tiny qwen3_moe, mixtral and olmoe
// models run by transformers on one right-padded batch with labels), the
// engine's forward of that batch, and relative errors.
#pragma once

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "base/atomic_file.h"
#include "model/arch/causal_lm.h"
#include "tests/model/arch/arch_fixtures.h"

namespace character::testing {

// Every case the oracle writes; a missing one fails the tests that use it.
inline const std::vector<std::string>& router_case_names() {
  static const std::vector<std::string> names{"qwen3_moe", "mixtral", "olmoe"};
  return names;
}

struct RouterCase {
  std::string name;
  nlohmann::json meta;
  std::map<std::string, torch::Tensor> ref;
  model::CausalLM model;

  const torch::Tensor& at(const std::string& key) const {
    auto it = ref.find(key);
    if (it == ref.end()) throw std::runtime_error(name + ": reference tensor " + key + " missing");
    return it->second;
  }
  std::vector<int64_t> moe_layers() const { return meta.at("moe_layers").get<std::vector<int64_t>>(); }
};

inline RouterCase router_case(const std::string& name) {
  RouterCase c;
  c.name = name;
  const auto dir = fixture("router_train/" + name);
  c.meta = nlohmann::json::parse(read_file(dir / "meta.json"));
  c.ref = read_tensors(dir / "reference.safetensors");
  c.model = model::load_model(dir / "model");
  return c;
}

// The engine's forward of the oracle's batch with routing captured.
inline model::ForwardOutput run_batch(RouterCase& c) {
  model::ForwardInput in;
  in.input_ids = c.at("input_ids");
  in.attention_mask = c.at("attention_mask");
  in.capture.router = true;
  return c.model->forward(in);
}

// |a − b| / |b| for scalars, ‖a − b‖ / ‖b‖ (Frobenius) for tensors, in double.
inline double rel_error(const torch::Tensor& a, const torch::Tensor& b) {
  EXPECT_EQ(a.sizes(), b.sizes());
  if (a.sizes() != b.sizes()) return INFINITY;
  auto ad = a.detach().to(torch::kDouble), bd = b.detach().to(torch::kDouble);
  return ((ad - bd).norm() / bd.norm()).item<double>();
}

}  // namespace character::testing
