// Test helpers for the architecture suites: the oracle's tiny models
// (tools/oracle/fixtures_models.py), their reference tensors, and comparisons.
#pragma once

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "base/atomic_file.h"
#include "model/arch/causal_lm.h"
#include "model/arch/tensor_io.h"
#include "model/io/safetensors.h"
#include "tests/test_support.h"

namespace character::testing {

// Every model the oracle writes; a missing one fails the tests that use it.
inline const std::vector<std::string>& oracle_model_names() {
  static const std::vector<std::string> names{
      "llama_gqa",      "llama3_tied_rope_sharded", "qwen3_tied", "qwen3_moe_norm", "qwen3_moe_sparse",
      "mixtral",        "mixtral_fused",            "olmoe",      "olmoe_fused_norm"};
  return names;
}

struct OracleModel {
  std::string name;
  std::filesystem::path model_dir;
  nlohmann::json meta;
  std::map<std::string, torch::Tensor> ref;

  const torch::Tensor& at(const std::string& key) const {
    auto it = ref.find(key);
    if (it == ref.end()) throw std::runtime_error(name + ": reference tensor " + key + " missing");
    return it->second;
  }
  bool has(const std::string& key) const { return ref.count(key) > 0; }
};

inline std::map<std::string, torch::Tensor> read_tensors(const std::filesystem::path& path) {
  auto file = model::SafetensorsFile::open(path);
  std::map<std::string, torch::Tensor> out;
  for (const auto& name : file->names()) out[name] = model::to_tensor(file->view(name));
  return out;
}

inline OracleModel oracle_model(const std::string& name) {
  OracleModel m;
  m.name = name;
  const auto dir = fixture("models/" + name);
  m.model_dir = dir / "model";
  m.meta = nlohmann::json::parse(read_file(dir / "meta.json"));
  m.ref = read_tensors(dir / "reference.safetensors");
  return m;
}

// max |a - b| over the rows where `keep` ([N] bool) is true; shapes must agree.
inline double max_abs_diff(const torch::Tensor& a, const torch::Tensor& b) {
  EXPECT_EQ(a.sizes(), b.sizes());
  if (a.sizes() != b.sizes()) return INFINITY;
  return (a.to(torch::kDouble) - b.to(torch::kDouble)).abs().max().item<double>();
}

}  // namespace character::testing
